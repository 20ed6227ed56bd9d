// The Unicode support of the BPE tokenizer: character classes of the pre-tokenizer regex and NFC.
// Expected NFC forms are Python's unicodedata.normalize('NFC', ...).
#include <gtest/gtest.h>

#include <string>

#include "tokenizer/unicode.h"

namespace rwkvrt::unicode {
namespace {

TEST(TokenizerUnicode, CharacterClasses) {
  for (char32_t cp : {U'a', U'Z', U'\u00E9', U'\u4E2D', U'\u0416', U'\u02B0', U'\U00020000'}) {
    EXPECT_EQ(char_class(cp), CharClass::kLetter) << std::hex << cp;
  }
  for (char32_t cp : {U'0', U'9', U'\u00B2', U'\u0660', U'\u2160', U'\U0001D7CE'}) {
    EXPECT_EQ(char_class(cp), CharClass::kNumber) << std::hex << cp;
  }
  for (char32_t cp : {U' ', U'\t', U'\n', U'\r', U'\v', U'\f', U'\u0085', U'\u00A0', U'\u2003',
                      U'\u2028', U'\u3000'}) {
    EXPECT_EQ(char_class(cp), CharClass::kWhitespace) << std::hex << cp;
  }
  for (char32_t cp : {U'!', U'\'', U'_', U'\u200D', U'\u0301', U'\u2014', U'\U0001F9A2',
                      static_cast<char32_t>(0x110041), U'\u180E', U'\u001C'}) {
    EXPECT_EQ(char_class(cp), CharClass::kOther) << std::hex << cp;
  }
}

TEST(TokenizerUnicode, CombiningClasses) {
  EXPECT_EQ(combining_class(U'a'), 0);
  EXPECT_EQ(combining_class(U'\u0301'), 230);
  EXPECT_EQ(combining_class(U'\u0323'), 220);
  EXPECT_EQ(combining_class(U'\u0327'), 202);
}

TEST(TokenizerUnicode, NfcMatchesPython) {
  struct Case {
    const char* in;
    const char* nfc;
  };
  const Case cases[] = {
      {"e\xCC\x81", "\xC3\xA9"},                                 // compose
      {"\xE2\x84\xAB", "\xC3\x85"},                              // singleton U+212B
      {"\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8", "\xEA\xB0\x81"},  // Hangul L V T
      {"\xEA\xB0\x80\xE1\x86\xA8", "\xEA\xB0\x81"},              // Hangul LV + T
      {"\xE1\x84\x80\xE1\x84\x80\xE1\x85\xA1", "\xE1\x84\x80\xEA\xB0\x80"},
      {"q\xCC\x87\xCC\xA3", "q\xCC\xA3\xCC\x87"},  // reorder, nothing composes
      {"a\xCC\xA3\xCC\x81\xCC\x82", "\xE1\xBA\xA1\xCC\x81\xCC\x82"},
      {"\xE0\xA5\x98", "\xE0\xA4\x95\xE0\xA4\xBC"},  // composition exclusion
      {"\xCD\x84", "\xCC\x88\xCC\x81"},              // non-starter decomposition
      {"a\xCC\x81\xCC\x81", "\xC3\xA1\xCC\x81"},     // the second mark is blocked
      {"\xCC\x81"
       "a",
       "\xCC\x81"
       "a"},                                         // no starter before the mark
      {"A\xCC\x80\xCC\xA7", "\xC3\x80\xCC\xA7"},     // reorder, then compose past
      {"\xE0\xAD\x87\xE0\xAC\xBE", "\xE0\xAD\x8B"},  // two starters compose
      {"A\xCC\x8A\xCC\x81", "\xC7\xBA"},             // compose twice
      {"s\xCC\xA3\xCC\x87", "\xE1\xB9\xA9"},
      {"plain ASCII", "plain ASCII"},
      {"\xC3\x80\xE4\xB8\xAD", "\xC3\x80\xE4\xB8\xAD"},  // already NFC
      {"\xFF"
       "e\xCC\x81\xE4\xB8",
       "\xFF\xC3\xA9\xE4\xB8"},  // malformed bytes pass through
  };
  for (const Case& c : cases) EXPECT_EQ(to_nfc(c.in), c.nfc) << c.in;
}

}  // namespace
}  // namespace rwkvrt::unicode
