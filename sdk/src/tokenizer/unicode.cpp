#include "tokenizer/unicode.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "tokenizer/unicode_tables.h"
#include "tokenizer/utf8.h"

namespace rwkvrt::unicode {
namespace {

// Raw bytes of malformed UTF-8 travel through normalisation as these out-of-range values.
constexpr char32_t kRawByteBase = 0x110000;

// Hangul syllable arithmetic (Unicode §3.12).
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28;
constexpr char32_t kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

const CodePointRange* find_range(const CodePointRange* table, size_t size, char32_t cp) {
  const CodePointRange* end = table + size;
  const CodePointRange* it = std::upper_bound(
      table, end, cp, [](char32_t c, const CodePointRange& r) { return c < r.first; });
  if (it == table) return nullptr;
  --it;
  return cp <= it->last ? it : nullptr;
}

bool nfc_unstable(char32_t cp) {
  return find_range(kNfcUnstableRanges, kNfcUnstableRangesSize, cp) != nullptr;
}

void decompose(char32_t cp, std::u32string& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const char32_t s = cp - kSBase;
    out += kLBase + s / kNCount;
    out += kVBase + (s % kNCount) / kTCount;
    if (s % kTCount != 0) out += kTBase + s % kTCount;
    return;
  }
  const Decomposition* end = kDecompositions + kDecompositionsSize;
  const Decomposition* it =
      std::lower_bound(kDecompositions, end, cp,
                       [](const Decomposition& d, char32_t c) { return d.code_point < c; });
  if (it != end && it->code_point == cp) {
    out.append(kDecompositionData + it->offset, it->length);
  } else {
    out += cp;
  }
}

// The primary composite of <first, second>, or 0 if there is none.
char32_t compose(char32_t first, char32_t second) {
  if (first >= kLBase && first < kLBase + kLCount && second >= kVBase &&
      second < kVBase + kVCount) {
    return kSBase + ((first - kLBase) * kVCount + (second - kVBase)) * kTCount;
  }
  if (first >= kSBase && first < kSBase + kSCount && (first - kSBase) % kTCount == 0 &&
      second > kTBase && second < kTBase + kTCount) {
    return first + (second - kTBase);
  }
  const Composition* end = kCompositions + kCompositionsSize;
  const Composition* it =
      std::lower_bound(kCompositions, end, std::make_pair(first, second),
                       [](const Composition& c, const std::pair<char32_t, char32_t>& key) {
                         return std::make_pair(c.first, c.second) < key;
                       });
  return it != end && it->first == first && it->second == second ? it->composite : 0;
}

}  // namespace

CharClass char_class(char32_t cp) {
  if (cp < 0x80) {
    if ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') return CharClass::kLetter;
    if (cp >= '0' && cp <= '9') return CharClass::kNumber;
    if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D)) return CharClass::kWhitespace;
    return CharClass::kOther;
  }
  // White_Space (PropList.txt) beyond ASCII; this set has not changed since Unicode 6.3.
  if (cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
      cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000) {
    return CharClass::kWhitespace;
  }
  const CodePointRange* r = find_range(kGeneralClassRanges, kGeneralClassRangesSize, cp);
  if (r == nullptr) return CharClass::kOther;
  return r->value == static_cast<uint8_t>(GeneralClass::kLetter) ? CharClass::kLetter
                                                                 : CharClass::kNumber;
}

uint8_t combining_class(char32_t cp) {
  if (cp < 0x300) return 0;
  const CodePointRange* r = find_range(kCombiningClassRanges, kCombiningClassRangesSize, cp);
  return r != nullptr ? r->value : 0;
}

std::string to_nfc(std::string_view text) {
  const auto* bytes = reinterpret_cast<const uint8_t*>(text.data());
  const size_t n = text.size();

  std::u32string decoded;
  decoded.reserve(n);
  bool stable = true;
  for (size_t i = 0; i < n;) {
    if (bytes[i] < 0x80) {  // ASCII is always stable
      decoded += bytes[i++];
      continue;
    }
    const Utf8Sequence seq = decode_utf8(bytes + i, n - i);
    if (seq.kind == Utf8Sequence::Kind::kValid) {
      stable = stable && !nfc_unstable(seq.code_point);
      decoded += seq.code_point;
    } else {
      for (size_t k = 0; k < seq.length; ++k) decoded += kRawByteBase + bytes[i + k];
    }
    i += seq.length;
  }
  if (stable) return std::string(text);

  std::u32string full;
  full.reserve(decoded.size() + decoded.size() / 2);
  for (char32_t cp : decoded) decompose(cp, full);

  // Canonical ordering: a stable sort by combining class of every run of non-starters.
  std::vector<uint8_t> ccc(full.size());
  for (size_t i = 0; i < full.size(); ++i) ccc[i] = combining_class(full[i]);
  for (size_t i = 1; i < full.size(); ++i) {
    for (size_t j = i; j > 0 && ccc[j] != 0 && ccc[j - 1] > ccc[j]; --j) {
      std::swap(full[j], full[j - 1]);
      std::swap(ccc[j], ccc[j - 1]);
    }
  }

  // Canonical composition.  A character combines with the last starter unless a character between
  // them blocks it: one of class 0, or of a class not below its own.  After canonical ordering the
  // class of the character just before it is the largest of those in between.
  constexpr size_t kNone = static_cast<size_t>(-1);
  size_t starter = kNone;
  uint8_t last_ccc = 0;
  size_t w = 0;
  for (size_t i = 0; i < full.size(); ++i) {
    const char32_t cp = full[i];
    const uint8_t cc = ccc[i];
    if (starter != kNone && (starter + 1 == w || (last_ccc != 0 && last_ccc < cc))) {
      if (const char32_t composite = compose(full[starter], cp); composite != 0) {
        full[starter] = composite;
        continue;
      }
    }
    if (cc == 0) starter = w;
    last_ccc = cc;
    full[w++] = cp;
  }
  full.resize(w);

  std::string out;
  out.reserve(n + n / 4);
  for (char32_t cp : full) {
    if (cp >= kRawByteBase) {
      out += static_cast<char>(cp - kRawByteBase);
    } else {
      append_utf8(out, cp);
    }
  }
  return out;
}

}  // namespace rwkvrt::unicode
