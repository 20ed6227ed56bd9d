// UTF-8 decoding one sequence at a time, shared by the tokenizers and the streaming text decoder
// (session/utf8_stream.h), so that both treat malformed input the same way.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace rwkvrt {

// The outcome of decoding the sequence at the start of a byte range.
struct Utf8Sequence {
  enum class Kind : uint8_t {
    kValid,       // a well-formed sequence; code_point is its scalar value
    kInvalid,     // a maximal invalid subpart, to be replaced by one U+FFFD
    kIncomplete,  // the range ends inside a sequence that is well-formed so far
  };
  Kind kind;
  // kValid: the sequence length (1..4).  kInvalid: the maximal subpart, 1..3 bytes (a lead byte and
  // the continuation bytes it accepted before the byte that broke it).  kIncomplete: every byte
  // of the range (1..3).
  size_t length;
  char32_t code_point;  // kValid only; 0 otherwise
};

// Decodes the sequence that starts at bytes[0]; n >= 1.  The rules are those of the Unicode
// standard (Table 3-7, well-formed byte sequences) with the "maximal subpart" practice for errors
// (Unicode §3.9 U+FFFD substitution), which is what Python's bytes.decode('utf-8', 'replace') does:
// overlong forms (C0, C1, E0 80..9F, F0 80..8F), surrogates (ED A0..BF) and code points above
// U+10FFFF (F4 90.., F5..FF) are invalid at the byte where they become so.
Utf8Sequence decode_utf8(const uint8_t* bytes, size_t n);

// Appends the UTF-8 encoding of a Unicode scalar value (not a surrogate, at most U+10FFFF).
void append_utf8(std::string& out, char32_t code_point);

// The UTF-8 encoding of U+FFFD REPLACEMENT CHARACTER.
inline constexpr const char kUtf8Replacement[] = "\xEF\xBF\xBD";

}  // namespace rwkvrt
