#include "tokenizer/model_tokenizer.h"

#include <filesystem>
#include <vector>

#include "core/error.h"

namespace rwkvrt {

TokenizerSearch find_model_tokenizer(const std::string& model_path, uint32_t n_vocab,
                                     const std::map<std::string, std::string>& metadata,
                                     const std::string& explicit_path) {
  TokenizerSearch result;
  if (!explicit_path.empty()) {
    result.tokenizer = load_tokenizer(explicit_path);
    result.source = explicit_path;
    return result;
  }
  auto kind = metadata.find("rwkvrt.tokenizer");
  if ((kind != metadata.end() && kind->second == "byte") || n_vocab == 256) {
    result.tokenizer = make_byte_tokenizer();
    result.source = "byte";
    return result;
  }

  namespace fs = std::filesystem;
  const fs::path model(model_path);
  const fs::path dir = model.has_parent_path() ? model.parent_path() : fs::path(".");
  const std::string stem = model.stem().string();
  std::vector<fs::path> candidates = {dir / (stem + ".tokenizer.json"), dir / (stem + ".vocab.txt"),
                                      dir / "tokenizer.json"};
  if (n_vocab == 65536) candidates.push_back(dir / "rwkv_vocab_v20230424.txt");
  if (n_vocab == 50277 || n_vocab == 50304) candidates.push_back(dir / "20B_tokenizer.json");

  std::string tried;
  for (const fs::path& c : candidates) {
    std::error_code ec;
    if (fs::is_regular_file(c, ec)) {
      result.tokenizer = load_tokenizer(c.string());
      result.source = c.string();
      return result;
    }
    tried += (tried.empty() ? "" : ", ") + c.string();
  }
  result.failure = fmt::format(
      "no tokenizer found for this model (vocabulary {}); tried {}.  Pass the tokenizer file "
      "(a World vocabulary .txt or a Hugging Face tokenizer.json) as tokenizer_path / --tokenizer",
      n_vocab, tried);
  return result;
}

}  // namespace rwkvrt
