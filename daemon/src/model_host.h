// A model the daemon serves: the loaded checkpoint, its tokenizer and what clients see of it.
#pragma once

#include "config.h"
#include "sdk.h"

#include <cstdint>
#include <string>
#include <vector>

namespace rwkvrtd {

struct HostedModel {
  std::string id;
  std::string file_name;
  ModelPtr model;
  const rwkvrt_tokenizer* tokenizer = nullptr;  // owned by the model; null if none was found
  std::string tokenizer_kind;                   // "" if none
  int32_t eos_id = -1;
  rwkvrt_model_info info{};                     // strings owned by `model`
  uint64_t state_blob_bytes = 0;                // size of one session's state blob
};

struct LoadOptions {
  std::string backend;
  int32_t device = 0;
  int32_t threads = 0;
  rwkvrt_matmul_precision matmul_precision = RWKVRT_MATMUL_EXACT;
};

// Loads `config`'s checkpoint.  Throws std::runtime_error with the library's message on failure.
HostedModel load_model(const ModelConfig& config, const LoadOptions& options);

// Encodes text with the model's tokenizer.  FAILED_PRECONDITION if the model has none.
grpc::Status tokenize(const HostedModel& model, const std::string& text, std::vector<int32_t>* out);

// INVALID_ARGUMENT naming the first id outside [0, n_vocab).
grpc::Status check_token_ids(const HostedModel& model, const int32_t* ids, size_t n);

}  // namespace rwkvrtd
