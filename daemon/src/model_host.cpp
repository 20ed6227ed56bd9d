#include "model_host.h"

#include <stdexcept>

namespace rwkvrtd {

HostedModel load_model(const ModelConfig& config, const LoadOptions& options) {
  HostedModel hosted;
  hosted.id = config.id;
  const auto slash = config.path.find_last_of('/');
  hosted.file_name = slash == std::string::npos ? config.path : config.path.substr(slash + 1);

  rwkvrt_model_params params = rwkvrt_model_params_default();
  params.backend = options.backend.c_str();
  params.device = options.device;
  params.n_threads = options.threads;
  params.matmul_precision = options.matmul_precision;
  rwkvrt_model* raw = nullptr;
  if (rwkvrt_status s = rwkvrt_model_load(config.path.c_str(), &params, &raw); s != RWKVRT_OK) {
    throw std::runtime_error(sdk_error("cannot load model " + config.path, s));
  }
  hosted.model.reset(raw);

  hosted.info.struct_size = sizeof hosted.info;
  if (rwkvrt_status s = rwkvrt_model_get_info(raw, &hosted.info); s != RWKVRT_OK) {
    throw std::runtime_error(sdk_error("model info of " + config.path, s));
  }
  // A model without a tokenizer still serves token-id prompts.
  const rwkvrt_tokenizer* tokenizer = nullptr;
  if (rwkvrt_model_get_tokenizer(raw, &tokenizer) == RWKVRT_OK && tokenizer) {
    rwkvrt_tokenizer_info tinfo{};
    tinfo.struct_size = sizeof tinfo;
    if (rwkvrt_tokenizer_get_info(tokenizer, &tinfo) == RWKVRT_OK) {
      hosted.tokenizer = tokenizer;
      hosted.tokenizer_kind = tinfo.kind ? tinfo.kind : "";
      hosted.eos_id = tinfo.eos_id;
    }
  }

  // The size of a state blob is the same for every session of a model: measure one.
  rwkvrt_session* probe = nullptr;
  if (rwkvrt_status s = rwkvrt_session_create(raw, &probe); s != RWKVRT_OK) {
    throw std::runtime_error(sdk_error("cannot create a session of " + config.path, s));
  }
  SessionPtr probe_owner(probe);
  size_t blob_size = 0;
  if (rwkvrt_status s = rwkvrt_session_save_state(probe, nullptr, 0, &blob_size); s != RWKVRT_OK) {
    throw std::runtime_error(sdk_error("cannot size the state of " + config.path, s));
  }
  hosted.state_blob_bytes = blob_size;
  return hosted;
}

grpc::Status tokenize(const HostedModel& model, const std::string& text, std::vector<int32_t>* out) {
  if (!model.tokenizer) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "model " + model.id + " has no tokenizer; send token ids");
  }
  size_t needed = 0;
  rwkvrt_status s = rwkvrt_tokenizer_encode(model.tokenizer, text.data(), text.size(), nullptr, 0, &needed);
  if (s != RWKVRT_OK && s != RWKVRT_ERR_BUFFER_TOO_SMALL) return client_data_status("tokenize", s);
  std::vector<int32_t> ids(needed);
  size_t count = 0;
  if (needed > 0) {
    s = rwkvrt_tokenizer_encode(model.tokenizer, text.data(), text.size(), ids.data(), ids.size(), &count);
    if (s != RWKVRT_OK) return client_data_status("tokenize", s);
  }
  ids.resize(count);
  *out = std::move(ids);
  return grpc::Status::OK;
}

grpc::Status check_token_ids(const HostedModel& model, const int32_t* ids, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (ids[i] < 0 || static_cast<uint32_t>(ids[i]) >= model.info.n_vocab) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "token id " + std::to_string(ids[i]) + " at position " + std::to_string(i) +
                              " is outside the vocabulary [0, " +
                              std::to_string(model.info.n_vocab) + ") of model " + model.id);
    }
  }
  return grpc::Status::OK;
}

}  // namespace rwkvrtd
