#include "session/utf8_stream.h"

#include <cstdint>

#include "tokenizer/utf8.h"

namespace rwkvrt {

std::string Utf8Stream::push(std::string_view bytes) {
  std::string out;
  out.reserve(held_.size() + bytes.size() + 2);
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  const size_t n = bytes.size();
  size_t i = 0;

  // First finish the held sequence: decode it with up to 3 new bytes after it.  The held bytes
  // are a valid prefix, so whatever completes or breaks the sequence lies in the new bytes.
  if (!held_.empty()) {
    const size_t held = held_.size();
    const size_t take = n < 3 ? n : 3;
    held_.append(bytes.data(), take);
    const Utf8Sequence seq =
        decode_utf8(reinterpret_cast<const uint8_t*>(held_.data()), held_.size());
    if (seq.kind == Utf8Sequence::Kind::kIncomplete) {
      return out;  // every new byte (fewer than needed) extends the held sequence
    }
    if (seq.kind == Utf8Sequence::Kind::kValid) {
      out.append(held_, 0, seq.length);
    } else {
      out += kUtf8Replacement;
    }
    i = seq.length - held;
    held_.clear();
  }

  while (i < n) {
    if (p[i] < 0x80) {
      out += static_cast<char>(p[i++]);
      continue;
    }
    const Utf8Sequence seq = decode_utf8(p + i, n - i);
    switch (seq.kind) {
      case Utf8Sequence::Kind::kValid:
        out.append(bytes.data() + i, seq.length);
        break;
      case Utf8Sequence::Kind::kInvalid:
        out += kUtf8Replacement;
        break;
      case Utf8Sequence::Kind::kIncomplete:
        held_.assign(bytes.data() + i, seq.length);
        break;
    }
    i += seq.length;
  }
  return out;
}

std::string Utf8Stream::flush() {
  if (held_.empty()) return {};
  held_.clear();
  return kUtf8Replacement;
}

}  // namespace rwkvrt
