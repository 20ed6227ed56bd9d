#include "session/text_assembler.h"

#include <algorithm>

#include "core/error.h"

namespace rwkvrt {

TextAssembler::TextAssembler(std::vector<std::string> stop_strings)
    : stops_(std::move(stop_strings)) {
  for (size_t i = 0; i < stops_.size(); ++i)
    if (stops_[i].empty()) fail(RWKVRT_ERR_INVALID_ARGUMENT, "stop string {} is empty", i);
}

size_t TextAssembler::held_suffix_length() const {
  size_t best = 0;
  for (const std::string& stop : stops_) {
    const size_t max_len = std::min(stop.size() - 1, pending_.size());
    for (size_t len = max_len; len > best; --len)
      if (pending_.compare(pending_.size() - len, len, stop, 0, len) == 0) {
        best = len;
        break;
      }
  }
  return best;
}

TextAssembler::Piece TextAssembler::push(std::string_view token_bytes) {
  Piece piece;
  if (stopped_) return piece;
  pending_ += utf8_.push(token_bytes);
  // The earliest complete stop string wins (the earliest start; the longer one on a tie).
  size_t cut = std::string::npos;
  for (const std::string& stop : stops_) cut = std::min(cut, pending_.find(stop));
  if (cut != std::string::npos) {
    piece.text = pending_.substr(0, cut);
    piece.stopped = stopped_ = true;
    pending_.clear();
    return piece;
  }
  const size_t keep = held_suffix_length();
  piece.text = pending_.substr(0, pending_.size() - keep);
  pending_.erase(0, pending_.size() - keep);
  return piece;
}

std::string TextAssembler::finish() {
  if (stopped_) return {};
  std::string text = std::move(pending_) + utf8_.flush();
  pending_.clear();
  return text;
}

}  // namespace rwkvrt
