// Finding the tokenizer that belongs to a model file.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "tokenizer/tokenizer.h"

namespace rwkvrt {

// The outcome of a search: the tokenizer, or why none was found (the files tried and what to do).
struct TokenizerSearch {
  std::shared_ptr<const Tokenizer> tokenizer;
  std::string source;   // "byte (vocabulary 256)", the file it was read from, ...
  std::string failure;  // set when tokenizer is null
};

// Looks, in order, at: `explicit_path` (errors loading it are thrown, not reported); the
// metadata entry "rwkvrt.tokenizer" = "byte"; a vocabulary of 256 (byte-level model); files beside
// the model: "<stem>.tokenizer.json", "<stem>.vocab.txt", "tokenizer.json", and by vocabulary size
// "rwkv_vocab_v20230424.txt" (65536) or "20B_tokenizer.json" (50277).  A candidate file that
// exists but fails to load makes the search fail with its error (a broken tokenizer is never
// skipped silently).
TokenizerSearch find_model_tokenizer(const std::string& model_path, uint32_t n_vocab,
                                     const std::map<std::string, std::string>& metadata,
                                     const std::string& explicit_path);

}  // namespace rwkvrt
