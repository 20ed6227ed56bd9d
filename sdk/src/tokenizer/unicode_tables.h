// Unicode property tables generated from the Unicode Character Database (through Python's
// unicodedata) by gen/gen_unicode_tables.py into unicode_tables.cpp.  Every table is sorted by code
// point so that lookups are binary searches; unicode.h is the interface the tokenizers use.
#pragma once

#include <cstddef>
#include <cstdint>

namespace rwkvrt::unicode {

// The general-category classes the GPT-2 pre-tokenizer regex distinguishes (\p{L} and \p{N}).
enum class GeneralClass : uint8_t { kLetter = 1, kNumber = 2 };

// A run of code points [first, last] sharing one property value.
struct CodePointRange {
  char32_t first;
  char32_t last;
  uint8_t value;
};

// The full canonical decomposition of `code_point`: kDecompositionData[offset, offset + length).
struct Decomposition {
  char32_t code_point;
  uint16_t offset;
  uint8_t length;
};

// A primary composite: NFC composes <first, second> into `composite`.  Sorted by (first, second).
struct Composition {
  char32_t first;
  char32_t second;
  char32_t composite;
};

// value: a GeneralClass.  Code points in no range are neither letters nor numbers.
extern const CodePointRange kGeneralClassRanges[];
extern const size_t kGeneralClassRangesSize;
// value: the canonical combining class.  Code points in no range have class 0.
extern const CodePointRange kCombiningClassRanges[];
extern const size_t kCombiningClassRangesSize;
// Code points that NFC may change in some context (value unused).  Text with none of them is
// already in NFC.
extern const CodePointRange kNfcUnstableRanges[];
extern const size_t kNfcUnstableRangesSize;

// Hangul syllables are not listed: they decompose and compose algorithmically.
extern const char32_t kDecompositionData[];
extern const Decomposition kDecompositions[];
extern const size_t kDecompositionsSize;
extern const Composition kCompositions[];
extern const size_t kCompositionsSize;

}  // namespace rwkvrt::unicode
