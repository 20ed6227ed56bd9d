// TextAssembler: UTF-8 hold-back and stop strings across token boundaries.
#include "session/text_assembler.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace rwkvrt {
namespace {

// Feeds `chunks` one by one; returns everything reported and whether a stop was seen.
std::pair<std::string, bool> run(TextAssembler& a, const std::vector<std::string>& chunks) {
  std::string out;
  for (const std::string& c : chunks) {
    TextAssembler::Piece p = a.push(c);
    out += p.text;
    if (p.stopped) return {out, true};
  }
  return {out + a.finish(), false};
}

TEST(TextAssembler, MultibyteCharacterSplitAcrossTokensIsHeldBack) {
  TextAssembler a;
  // "é" = c3 a9, "中" = e4 b8 ad, each split over two pushes.
  EXPECT_EQ(a.push("a\xc3").text, "a");
  EXPECT_EQ(a.push("\xa9\xe4").text, "\xc3\xa9");
  EXPECT_EQ(a.push("\xb8").text, "");
  EXPECT_EQ(a.push("\xad!").text, "\xe4\xb8\xad!");
  EXPECT_EQ(a.finish(), "");
}

TEST(TextAssembler, TruncatedCharacterBecomesReplacementAtTheEnd) {
  TextAssembler a;
  EXPECT_EQ(a.push("x\xe4\xb8").text, "x");
  EXPECT_EQ(a.finish(), "\xef\xbf\xbd");
}

TEST(TextAssembler, StopStringSplitAcrossTokensCutsBeforeIt) {
  TextAssembler a({"\n\nUser:"});
  EXPECT_EQ(a.push("Hello").text, "Hello");
  EXPECT_EQ(a.push("\n").text, "");  // may begin the stop string: held
  EXPECT_EQ(a.push("\nUs").text, "");
  TextAssembler::Piece p = a.push("er: more");
  EXPECT_TRUE(p.stopped);
  EXPECT_EQ(p.text, "");
  EXPECT_EQ(a.push("ignored").text, "");
  EXPECT_EQ(a.finish(), "");
}

TEST(TextAssembler, HeldTextIsReleasedWhenTheStopStringDoesNotComplete) {
  TextAssembler a({"\n\n"});
  EXPECT_EQ(a.push("one\n").text, "one");
  EXPECT_EQ(a.push("two").text, "\ntwo");
  EXPECT_EQ(a.push("\n").text, "");
  EXPECT_EQ(a.finish(), "\n");
}

TEST(TextAssembler, EarliestOfSeveralStopStringsWins) {
  TextAssembler a({"END", "ND!"});
  auto [text, stopped] = run(a, {"abc E", "ND!"});
  EXPECT_TRUE(stopped);
  EXPECT_EQ(text, "abc ");
}

TEST(TextAssembler, StopStringInsideOneTokenKeepsTheTextBeforeIt) {
  TextAssembler a({"stop"});
  auto [text, stopped] = run(a, {"go", "on, then stop here"});
  EXPECT_TRUE(stopped);
  EXPECT_EQ(text, "goon, then ");
}

TEST(TextAssembler, MultibyteStopStringMatchesAcrossSplitCharacters) {
  TextAssembler a({"\xe4\xb8\xad"});
  auto [text, stopped] = run(a, {"a\xe4", "\xb8", "\xad", "b"});
  EXPECT_TRUE(stopped);
  EXPECT_EQ(text, "a");
}

TEST(TextAssembler, EmptyStopStringIsRefused) {
  EXPECT_THROW(TextAssembler({"ok", ""}), Error);
}

}  // namespace
}  // namespace rwkvrt
