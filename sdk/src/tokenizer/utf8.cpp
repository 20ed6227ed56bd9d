#include "tokenizer/utf8.h"

namespace rwkvrt {

Utf8Sequence decode_utf8(const uint8_t* bytes, size_t n) {
  using Kind = Utf8Sequence::Kind;
  const uint8_t lead = bytes[0];
  if (lead < 0x80) return {Kind::kValid, 1, lead};

  // Continuation bytes needed, and the range allowed for the first one: narrower than 80..BF
  // after E0/ED/F0/F4, which is how overlongs, surrogates and values past U+10FFFF are excluded.
  size_t needed;
  uint8_t low = 0x80, high = 0xBF;
  char32_t cp;
  if (lead >= 0xC2 && lead <= 0xDF) {
    needed = 1;
    cp = lead & 0x1F;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    needed = 2;
    cp = lead & 0x0F;
    if (lead == 0xE0) low = 0xA0;
    if (lead == 0xED) high = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    needed = 3;
    cp = lead & 0x07;
    if (lead == 0xF0) low = 0x90;
    if (lead == 0xF4) high = 0x8F;
  } else {
    return {Kind::kInvalid, 1, 0};  // a stray continuation byte, C0, C1 or F5..FF
  }

  for (size_t i = 1; i <= needed; ++i) {
    if (i == n) return {Kind::kIncomplete, n, 0};
    const uint8_t b = bytes[i];
    if (b < low || b > high) return {Kind::kInvalid, i, 0};
    cp = (cp << 6) | (b & 0x3F);
    low = 0x80;
    high = 0xBF;
  }
  return {Kind::kValid, needed + 1, cp};
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

}  // namespace rwkvrt
