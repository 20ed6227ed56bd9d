// The streaming UTF-8 decoder: output independent of how the stream is cut, replacements exactly
// as Python's bytes.decode('utf-8', errors='replace') (expected values computed with it), and
// lossless for valid text.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "session/utf8_stream.h"
#include "tokenizer/utf8.h"

namespace rwkvrt {
namespace {

const std::string R = kUtf8Replacement;

std::string decode_whole(const std::string& bytes) {
  Utf8Stream s;
  std::string out = s.push(bytes);
  return out + s.flush();
}

// Every way of cutting `bytes` into two or three pushes gives the same text.
void expect_cut_invariant(const std::string& bytes, const std::string& expected) {
  EXPECT_EQ(decode_whole(bytes), expected);
  for (size_t a = 0; a <= bytes.size(); ++a) {
    for (size_t b = a; b <= bytes.size(); ++b) {
      Utf8Stream s;
      std::string out = s.push(bytes.substr(0, a));
      out += s.push(bytes.substr(a, b - a));
      out += s.push(bytes.substr(b));
      out += s.flush();
      ASSERT_EQ(out, expected) << "cut at " << a << ", " << b;
    }
  }
}

TEST(Utf8Stream, MultiByteCharactersSplitAtEveryPoint) {
  const std::string text = "a\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80z";  // a é 中 😀 z
  expect_cut_invariant(text, text);
  // One byte at a time: each character appears once complete, never before.
  Utf8Stream s;
  std::vector<std::string> pieces;
  for (char c : text) pieces.push_back(s.push(std::string(1, c)));
  EXPECT_EQ(pieces, (std::vector<std::string>{"a", "", "\xC3\xA9", "", "", "\xE4\xB8\xAD", "", "",
                                              "", "\xF0\x9F\x98\x80", "z"}));
  EXPECT_EQ(s.flush(), "");
}

TEST(Utf8Stream, HoldsBackAnIncompleteTail) {
  Utf8Stream s;
  EXPECT_EQ(s.push("ok\xE4\xB8"), "ok");  // World token 3025 ends inside a character
  EXPECT_EQ(s.pending(), 2u);
  EXPECT_EQ(s.push("\xAD!"), "\xE4\xB8\xAD!");
  EXPECT_EQ(s.pending(), 0u);
  EXPECT_EQ(s.push("\xF0\x9F"), "");
  EXPECT_EQ(s.flush(), R);      // the stream ended inside a character
  EXPECT_EQ(s.push("x"), "x");  // reusable after flush
}

TEST(Utf8Stream, InvalidSequencesLikePythonReplace) {
  struct Case {
    std::string in;
    std::string out;
  };
  const Case cases[] = {
      {"\xC0\xAF", R + R},                  // overlong lead C0
      {"\xE0\x80\xAF", R + R + R},          // overlong 3-byte
      {"\xF0\x80\x80\xAF", R + R + R + R},  // overlong 4-byte
      {"\xED\xA0\x80", R + R + R},          // surrogate U+D800
      {"\xED\xBF\xBF", R + R + R},          // surrogate U+DFFF
      {"\xF4\x90\x80\x80", R + R + R + R},  // U+110000
      {"\xF5\x80\x80\x80", R + R + R + R},  // lead past F4
      {"\x80", R},                          // stray continuation
      {"\xBF\x80"
       "a",
       R + R + "a"},
      {"\xE2\x82", R},  // truncated at the end
      {"\xE2\x82"
       "a",
       R + "a"},  // truncated before ASCII: one U+FFFD
      {"\xF0\x9F\x98", R},
      {"a\xFF"
       "b",
       "a" + R + "b"},
      {"\xE1\x80\xE2\xF0\x91\x92\xF1\xBF\x41", R + R + R + R + "A"},
      {"\xF8\x88\x80\x80\x80", R + R + R + R + R},
      {"\xDF\x7F", R + "\x7F"},
      {"\xF0\x9F\x98\x80", "\xF0\x9F\x98\x80"},
      {"\xEF\xBF\xBD", R},  // a real U+FFFD is just text
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(testing::PrintToString(c.in));
    expect_cut_invariant(c.in, c.out);
  }
}

TEST(Utf8Stream, EveryTwoByteSequenceIsCutInvariant) {
  for (int a = 0; a < 256; ++a) {
    for (int b = 0; b < 256; ++b) {
      const std::string bytes = {static_cast<char>(a), static_cast<char>(b)};
      const std::string whole = decode_whole(bytes);
      Utf8Stream s;
      std::string split = s.push(bytes.substr(0, 1));
      split += s.push(bytes.substr(1));
      split += s.flush();
      ASSERT_EQ(split, whole) << a << " " << b;
    }
  }
}

TEST(Utf8Stream, RoundTripsValidText) {
  std::string text;
  for (char32_t cp = 0; cp < 0x110000; cp += (cp < 0x800 ? 1 : 97)) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    append_utf8(text, cp);
  }
  Utf8Stream s;
  std::string out;
  for (size_t i = 0; i < text.size(); i += 7) out += s.push(text.substr(i, 7));
  out += s.flush();
  EXPECT_EQ(out, text);
}

TEST(Utf8Stream, DecodeReportsSequenceKinds) {
  using Kind = Utf8Sequence::Kind;
  auto decode = [](const std::string& s) {
    return decode_utf8(reinterpret_cast<const uint8_t*>(s.data()), s.size());
  };
  EXPECT_EQ(decode("\xE4\xB8\xAD").kind, Kind::kValid);
  EXPECT_EQ(decode("\xE4\xB8\xAD").code_point, U'\u4E2D');
  EXPECT_EQ(decode("\xE4\xB8").kind, Kind::kIncomplete);
  EXPECT_EQ(decode("\xE4\xB8\x41").kind, Kind::kInvalid);
  EXPECT_EQ(decode("\xE4\xB8\x41").length, 2u);
  EXPECT_EQ(decode("\xF4\x8F\xBF\xBF").code_point, U'\U0010FFFF');
}

}  // namespace
}  // namespace rwkvrt
