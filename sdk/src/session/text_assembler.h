// Turns the bytes of generated tokens into the text a generation reports: valid UTF-8 only (bytes
// of an incomplete character are held back, see Utf8Stream), cut before the first stop string,
// with text that may be the beginning of a stop string held back until the next token decides.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "session/utf8_stream.h"

namespace rwkvrt {

class TextAssembler {
 public:
  // Throws Error(INVALID_ARGUMENT) for an empty stop string.
  explicit TextAssembler(std::vector<std::string> stop_strings = {});

  struct Piece {
    std::string text;      // final text, safe to show
    bool stopped = false;  // a stop string completed; nothing after it is ever reported
  };
  // Appends a token's bytes.  After a stop, returns empty pieces.
  Piece push(std::string_view token_bytes);
  // Ends the stream: the text held back (and U+FFFD for a truncated character), unless stopped.
  std::string finish();

 private:
  // Length of the longest suffix of pending_ that is a proper prefix of a stop string.
  size_t held_suffix_length() const;

  std::vector<std::string> stops_;
  Utf8Stream utf8_;
  std::string pending_;  // decoded, not yet reported
  bool stopped_ = false;
};

}  // namespace rwkvrt
