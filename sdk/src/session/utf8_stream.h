// Turns a stream of token bytes into displayable UTF-8 text, piece by piece.  A token may end in
// the middle of a character (World tokens such as e4 b8 hold partial characters); those bytes are
// held back until the character completes.  Malformed bytes become U+FFFD, one per maximal invalid
// subpart (Unicode §3.9), exactly as Python's bytes.decode('utf-8', errors='replace') does over
// the whole stream, however the stream is cut into pushes.
#pragma once

#include <string>
#include <string_view>

namespace rwkvrt {

class Utf8Stream {
 public:
  // Appends `bytes` to the stream and returns the text that is now final: valid UTF-8, with
  // replacements made.  Holds back a trailing sequence that is well-formed so far but incomplete
  // (at most 3 bytes).
  std::string push(std::string_view bytes);

  // Ends the stream: returns U+FFFD if bytes were held back (a truncated character), else "".
  // The stream is then empty and may be reused.
  std::string flush();

  // The number of bytes held back (0..3).
  size_t pending() const { return held_.size(); }

 private:
  std::string held_;
};

}  // namespace rwkvrt
