// The Unicode properties and the normalisation form the byte-level BPE tokenizer needs: the
// character classes of the GPT-2 pre-tokenizer regex and NFC.  Backed by the generated tables of
// unicode_tables.cpp, whose first lines name the Unicode version they describe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace rwkvrt::unicode {

// The classes of the GPT-2 pre-tokenizer regex: \p{L} (general category L*), \p{N} (N*), \s (the
// White_Space property, which is what Oniguruma's \s matches in Unicode mode), and everything else.
// Values past U+10FFFF are kOther.
enum class CharClass : uint8_t { kLetter, kNumber, kWhitespace, kOther };
CharClass char_class(char32_t code_point);

// The canonical combining class (0 for starters and for values past U+10FFFF).
uint8_t combining_class(char32_t code_point);

// Returns `text` in Normalization Form C (UAX #15: full canonical decomposition, canonical
// ordering, canonical composition with the composition exclusions, Hangul included).  Malformed
// UTF-8 is passed through unchanged, byte for byte, each malformed byte acting as a starter that
// composes with nothing.  Text made only of characters that no context changes is returned as is
// without decomposing it, which is the common case and costs one scan.
std::string to_nfc(std::string_view text);

}  // namespace rwkvrt::unicode
