#include "tokenizer/tokenizer.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

#include "core/error.h"

namespace rwkvrt {

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) fail(RWKVRT_ERR_IO, "cannot open tokenizer file {}: {}", path, std::strerror(errno));
  std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  if (file.bad()) fail(RWKVRT_ERR_IO, "cannot read tokenizer file {}", path);

  size_t start = text.compare(0, 3, "\xEF\xBB\xBF") == 0 ? 3 : 0;  // a UTF-8 byte order mark
  while (start < text.size() && (text[start] == ' ' || text[start] == '\t' || text[start] == '\r' ||
                                 text[start] == '\n')) {
    ++start;
  }
  if (start < text.size() && text[start] == '{') return make_bpe_tokenizer_from_json(text, path);
  if (start == 0 && !text.empty() && text[0] >= '0' && text[0] <= '9') {
    return make_world_tokenizer_from_text(text, path);
  }
  fail(RWKVRT_ERR_FORMAT,
       "{} is neither a Hugging Face tokenizer.json (a JSON object) nor a World vocabulary (lines "
       "`<id> <literal> <nbytes>`)",
       path);
}

}  // namespace rwkvrt
