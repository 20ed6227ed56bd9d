// The C ABI (rwkvrt.h) over the C++ core.  Every entry point catches every exception, sets the
// calling thread's message and returns a status; out-parameters are written only on success.
#include <algorithm>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "core/backend_registry.h"
#include "core/c_api_support.h"
#include "core/error.h"
#include "core/log.h"
#include "model/model.h"
#include "rwkvrt/rwkvrt.h"
#include "session/session.h"
#include "session/state_blob.h"
#include "tokenizer/model_tokenizer.h"

#ifndef RWKVRT_VERSION_STRING
#define RWKVRT_VERSION_STRING "0.0.0"
#endif

namespace {

using namespace rwkvrt::capi;

rwkvrt_dtype public_dtype(rwkvrt_bk_dtype t) {
  switch (t) {
    case RWKVRT_BK_F16:
      return RWKVRT_DTYPE_F16;
    case RWKVRT_BK_BF16:
      return RWKVRT_DTYPE_BF16;
    case RWKVRT_BK_Q4_0:
      return RWKVRT_DTYPE_Q4_0;
    case RWKVRT_BK_Q4_1:
      return RWKVRT_DTYPE_Q4_1;
    case RWKVRT_BK_Q5_0:
      return RWKVRT_DTYPE_Q5_0;
    case RWKVRT_BK_Q5_1:
      return RWKVRT_DTYPE_Q5_1;
    case RWKVRT_BK_Q8_0:
      return RWKVRT_DTYPE_Q8_0;
    default:
      return RWKVRT_DTYPE_F32;
  }
}

}  // namespace

extern "C" {

const char* rwkvrt_last_error(void) {
  return t_last_error.c_str();
}

const char* rwkvrt_status_name(rwkvrt_status status) {
  // C callers may pass any int (the C test passes 999): see c_enum_value.
  switch (c_enum_value(status)) {
    case RWKVRT_OK:
      return "RWKVRT_OK";
    case RWKVRT_ERR_INVALID_ARGUMENT:
      return "RWKVRT_ERR_INVALID_ARGUMENT";
    case RWKVRT_ERR_IO:
      return "RWKVRT_ERR_IO";
    case RWKVRT_ERR_FORMAT:
      return "RWKVRT_ERR_FORMAT";
    case RWKVRT_ERR_UNSUPPORTED:
      return "RWKVRT_ERR_UNSUPPORTED";
    case RWKVRT_ERR_BACKEND:
      return "RWKVRT_ERR_BACKEND";
    case RWKVRT_ERR_NO_BACKEND:
      return "RWKVRT_ERR_NO_BACKEND";
    case RWKVRT_ERR_OUT_OF_MEMORY:
      return "RWKVRT_ERR_OUT_OF_MEMORY";
    case RWKVRT_ERR_STATE_MISMATCH:
      return "RWKVRT_ERR_STATE_MISMATCH";
    case RWKVRT_ERR_CORRUPT:
      return "RWKVRT_ERR_CORRUPT";
    case RWKVRT_ERR_BUFFER_TOO_SMALL:
      return "RWKVRT_ERR_BUFFER_TOO_SMALL";
    case RWKVRT_ERR_CANCELLED:
      return "RWKVRT_ERR_CANCELLED";
    case RWKVRT_ERR_INTERNAL:
      return "RWKVRT_ERR_INTERNAL";
    case RWKVRT_ERR_ABI_MISMATCH:
      return "RWKVRT_ERR_ABI_MISMATCH";
  }
  return "RWKVRT_UNKNOWN_STATUS";
}

uint32_t rwkvrt_abi_version(void) {
  return RWKVRT_ABI_VERSION;
}

const char* rwkvrt_version_string(void) {
  return RWKVRT_VERSION_STRING;
}

void rwkvrt_set_log_callback(rwkvrt_log_fn fn, void* user_data, rwkvrt_log_level level) {
  rwkvrt::log_set_callback(fn, user_data, level);
}

rwkvrt_status rwkvrt_backend_count(size_t* out_count) {
  return guarded([&] {
    require(out_count, "out_count");
    *out_count = rwkvrt::BackendRegistry::instance().count();
  });
}

rwkvrt_status rwkvrt_backend_get_info(size_t index, rwkvrt_backend_info* out_info) {
  return guarded([&] {
    check_out_struct(out_info, "out_info");
    // Entries are copied out of the registry, but their strings must outlive the call: the
    // registry keeps one stable copy per entry for the C ABI.
    static std::mutex mutex;
    static std::vector<std::unique_ptr<rwkvrt::BackendEntry>> stable;
    const rwkvrt::BackendEntry e = rwkvrt::BackendRegistry::instance().entry(index);
    std::lock_guard<std::mutex> lock(mutex);
    if (stable.size() <= index) stable.resize(index + 1);
    if (!stable[index]) stable[index] = std::make_unique<rwkvrt::BackendEntry>(e);
    const rwkvrt::BackendEntry& s = *stable[index];
    rwkvrt_backend_info info{};
    info.name = s.name.c_str();
    info.description = s.description.c_str();
    info.path = s.path.c_str();
    info.abi_version = s.abi_version;
    info.score = s.score;
    info.device_count = s.device_count;
    info.unavailable_reason = s.unavailable_reason.c_str();
    copy_out(out_info, info);
  });
}

rwkvrt_status rwkvrt_backend_get_device(size_t index, int32_t device,
                                        rwkvrt_device_info* out_info) {
  return guarded([&] {
    check_out_struct(out_info, "out_info");
    const rwkvrt::BackendEntry e = rwkvrt::BackendRegistry::instance().entry(index);
    if (!e.usable())
      rwkvrt::fail(RWKVRT_ERR_NO_BACKEND, "backend '{}' is unavailable: {}", e.name,
                   e.unavailable_reason);
    if (device < 0 || device >= e.device_count)
      rwkvrt::fail(RWKVRT_ERR_INVALID_ARGUMENT, "backend '{}' has {} device(s); {} is out of range",
                   e.name, e.device_count, device);
    rwkvrt_bk_device_desc desc{};
    desc.struct_size = sizeof(desc);
    if (e.api->device_describe(device, &desc) != RWKVRT_BK_OK)
      rwkvrt::fail(RWKVRT_ERR_BACKEND, "backend '{}' cannot describe device {}: {}", e.name, device,
                   e.api->last_error());
    // Device names are kept for the life of the process (the ABI promises that).
    static std::mutex mutex;
    static std::vector<std::unique_ptr<std::string>> names;
    std::lock_guard<std::mutex> lock(mutex);
    names.push_back(std::make_unique<std::string>(desc.name));
    rwkvrt_device_info info{};
    info.name = names.back()->c_str();
    info.memory_total = desc.memory_total;
    info.memory_free = desc.memory_free;
    copy_out(out_info, info);
  });
}

rwkvrt_status rwkvrt_backend_load(const char* path, size_t* out_index) {
  return guarded([&] {
    require(path, "path");
    require(out_index, "out_index");
    *out_index = rwkvrt::BackendRegistry::instance().load(path);
  });
}

rwkvrt_model_params rwkvrt_model_params_default(void) {
  rwkvrt_model_params p{};
  p.struct_size = sizeof(p);
  p.backend = nullptr;
  p.device = 0;
  p.n_threads = 0;
  p.weights = RWKVRT_WEIGHTS_AUTO;
  p.group_norm_eps = 0.0f;
  p.progress = nullptr;
  p.progress_user_data = nullptr;
  p.tokenizer_path = nullptr;
  p.matmul_precision = RWKVRT_MATMUL_EXACT;
  return p;
}

rwkvrt_status rwkvrt_model_load(const char* path, const rwkvrt_model_params* params,
                                rwkvrt_model** out_model) {
  return guarded([&] {
    require(path, "path");
    require(out_model, "out_model");
    const rwkvrt_model_params p = read_params(params, rwkvrt_model_params_default(), "params");
    rwkvrt::LoadOptions o;
    o.backend = p.backend ? p.backend : "";
    o.device = p.device;
    o.n_threads = p.n_threads;
    switch (c_enum_value(p.weights)) {
      case RWKVRT_WEIGHTS_AUTO:
        o.weight_dtype = RWKVRT_BK_SAME;
        break;
      case RWKVRT_WEIGHTS_F32:
        o.weight_dtype = RWKVRT_BK_F32;
        break;
      case RWKVRT_WEIGHTS_BF16:
        o.weight_dtype = RWKVRT_BK_BF16;
        break;
      case RWKVRT_WEIGHTS_F16:
        o.weight_dtype = RWKVRT_BK_F16;
        break;
      default:
        rwkvrt::fail(RWKVRT_ERR_INVALID_ARGUMENT, "params.weights {} is not a weight type",
                     c_enum_value(p.weights));
    }
    switch (c_enum_value(p.matmul_precision)) {
      case RWKVRT_MATMUL_EXACT:
        o.matmul_precision = RWKVRT_BK_MATMUL_EXACT;
        break;
      case RWKVRT_MATMUL_FAST:
        o.matmul_precision = RWKVRT_BK_MATMUL_ROUNDED_ACTIVATIONS;
        break;
      default:
        rwkvrt::fail(RWKVRT_ERR_INVALID_ARGUMENT,
                     "params.matmul_precision {} is not a matmul precision (0 exact, 1 fast)",
                     c_enum_value(p.matmul_precision));
    }
    if (p.group_norm_eps < 0.0f || p.group_norm_eps > 1.0f)
      rwkvrt::fail(RWKVRT_ERR_INVALID_ARGUMENT, "params.group_norm_eps {} is out of range",
                   p.group_norm_eps);
    o.group_norm_eps = p.group_norm_eps;
    if (p.progress) {
      const rwkvrt_progress_fn fn = p.progress;
      void* user = p.progress_user_data;
      o.progress = [fn, user](float f, const char* stage) { return fn(user, f, stage) == 0; };
    }
    auto handle = std::make_unique<rwkvrt_model>();
    handle->model = rwkvrt::Model::load(path, o);
    handle->version_name = rwkvrt::version_name(handle->model->config().version);
    handle->file_format = handle->model->file_format();
    handle->backend = handle->model->device()->backend_name();
    handle->layout = handle->model->state_layout();
    rwkvrt::TokenizerSearch found = rwkvrt::find_model_tokenizer(
        path, handle->model->config().n_vocab, handle->model->metadata(),
        p.tokenizer_path ? p.tokenizer_path : "");
    handle->tokenizer.tokenizer = std::move(found.tokenizer);
    handle->tokenizer_failure = std::move(found.failure);
    if (handle->tokenizer.tokenizer)
      rwkvrt::log(RWKVRT_LOG_INFO, "tokenizer: {} ({})", handle->tokenizer.tokenizer->kind(),
                  found.source);
    *out_model = handle.release();
  });
}

void rwkvrt_model_free(rwkvrt_model* model) {
  delete model;
}

rwkvrt_status rwkvrt_model_get_info(const rwkvrt_model* model, rwkvrt_model_info* out_info) {
  return guarded([&] {
    require(model, "model");
    check_out_struct(out_info, "out_info");
    const rwkvrt::Model& m = *model->model;
    const rwkvrt::ModelConfig& c = m.config();
    rwkvrt_model_info info{};
    info.rwkv_version = uint32_t(c.version);
    info.version_name = model->version_name.c_str();
    info.file_format = model->file_format.c_str();
    info.n_layer = c.n_layer;
    info.n_embd = c.n_embd;
    info.n_att = c.n_att;
    info.n_ffn = c.n_ffn;
    info.n_head = c.n_head;
    info.head_size = c.head_size;
    info.n_vocab = c.n_vocab;
    info.file_dtype = public_dtype(static_cast<rwkvrt_bk_dtype>(c.matrix_dtype));
    info.weight_dtype = public_dtype(m.weight_dtype());
    info.n_params = c.n_params;
    info.weight_bytes = m.weight_bytes();
    info.state_floats = m.state_floats();
    info.group_norm_eps = c.version == rwkvrt::RwkvVersion::V4 ? 0.0f : c.group_norm_eps;
    info.backend = model->backend.c_str();
    info.device = m.device()->index();
    info.has_initial_state = c.has_time_state ? 1 : 0;
    copy_out(out_info, info);
  });
}

rwkvrt_status rwkvrt_model_state_tensor_count(const rwkvrt_model* model, size_t* out_count) {
  return guarded([&] {
    require(model, "model");
    require(out_count, "out_count");
    *out_count = model->layout.size();
  });
}

rwkvrt_status rwkvrt_model_state_tensor_info(const rwkvrt_model* model, size_t index,
                                             rwkvrt_state_tensor_info* out_info) {
  return guarded([&] {
    require(model, "model");
    check_out_struct(out_info, "out_info");
    if (index >= model->layout.size())
      rwkvrt::fail(RWKVRT_ERR_INVALID_ARGUMENT, "state tensor index {} out of range (there are {})",
                   index, model->layout.size());
    const rwkvrt::StateTensor& t = model->layout[index];
    rwkvrt_state_tensor_info info{};
    info.name = t.name.c_str();
    info.offset = t.offset;
    info.n_dims = uint32_t(t.shape.size());
    for (size_t i = 0; i < t.shape.size() && i < 4; ++i) info.shape[i] = t.shape[i];
    copy_out(out_info, info);
  });
}

rwkvrt_status rwkvrt_session_create(rwkvrt_model* model, rwkvrt_session** out_session) {
  return guarded([&] {
    require(model, "model");
    require(out_session, "out_session");
    auto s = std::make_unique<rwkvrt_session>();
    s->generator = std::make_unique<rwkvrt::Generator>(model->model, model->tokenizer.tokenizer);
    *out_session = s.release();
  });
}

void rwkvrt_session_free(rwkvrt_session* session) {
  delete session;
}

rwkvrt_status rwkvrt_session_reset(rwkvrt_session* session) {
  return guarded([&] {
    require(session, "session");
    session->generator->reset();
  });
}

rwkvrt_status rwkvrt_session_feed(rwkvrt_session* session, const int32_t* tokens, size_t n_tokens,
                                  rwkvrt_logits_mode mode, float* logits, size_t logits_capacity) {
  return guarded([&] {
    require(session, "session");
    require(tokens, "tokens");
    if (n_tokens == 0) rwkvrt::fail(RWKVRT_ERR_INVALID_ARGUMENT, "n_tokens is 0");
    const uint64_t V = session->session().model().config().n_vocab;
    rwkvrt::LogitsMode m = rwkvrt::LogitsMode::None;
    uint64_t needed = 0;
    switch (c_enum_value(mode)) {
      case RWKVRT_LOGITS_NONE:
        break;
      case RWKVRT_LOGITS_LAST:
        m = rwkvrt::LogitsMode::Last;
        needed = V;
        break;
      case RWKVRT_LOGITS_ALL:
        m = rwkvrt::LogitsMode::All;
        needed = V * n_tokens;
        break;
      default:
        rwkvrt::fail(RWKVRT_ERR_INVALID_ARGUMENT, "mode {} is not a logits mode",
                     c_enum_value(mode));
    }
    if (needed > 0) {
      require(logits, "logits");
      if (logits_capacity < needed)
        rwkvrt::fail(RWKVRT_ERR_BUFFER_TOO_SMALL, "logits holds {} floats, {} are needed",
                     logits_capacity, needed);
    }
    session->generator->feed(tokens, n_tokens, m, logits);
  });
}

rwkvrt_status rwkvrt_session_step(rwkvrt_session* session, int32_t token, float* logits,
                                  size_t logits_capacity) {
  return rwkvrt_session_feed(session, &token, 1, logits ? RWKVRT_LOGITS_LAST : RWKVRT_LOGITS_NONE,
                             logits, logits_capacity);
}

rwkvrt_status rwkvrt_session_export_state(rwkvrt_session* session, float* dst, size_t capacity) {
  return guarded([&] {
    require(session, "session");
    require(dst, "dst");
    const uint64_t n = session->session().model().state_floats();
    if (capacity < n)
      rwkvrt::fail(RWKVRT_ERR_BUFFER_TOO_SMALL, "buffer holds {} floats, the state has {}",
                   capacity, n);
    session->session().export_state(dst);
  });
}

rwkvrt_status rwkvrt_session_import_state(rwkvrt_session* session, const float* src,
                                          size_t n_floats) {
  return guarded([&] {
    require(session, "session");
    require(src, "src");
    const uint64_t n = session->session().model().state_floats();
    if (n_floats != n)
      rwkvrt::fail(RWKVRT_ERR_STATE_MISMATCH, "{} floats given, the state of this model has {}",
                   n_floats, n);
    session->generator->import_state(src);
  });
}

rwkvrt_status rwkvrt_session_save_state(rwkvrt_session* session, void* buffer, size_t capacity,
                                        size_t* out_size) {
  return guarded([&] {
    require(session, "session");
    require(out_size, "out_size");
    const size_t needed = rwkvrt::state_blob_size(session->session().model());
    if (!buffer) {
      *out_size = needed;
      return;
    }
    if (capacity < needed) {
      *out_size = needed;
      rwkvrt::fail(RWKVRT_ERR_BUFFER_TOO_SMALL, "buffer holds {} bytes, the state blob needs {}",
                   capacity, needed);
    }
    const std::vector<uint8_t> blob = session->session().save_state();
    std::memcpy(buffer, blob.data(), blob.size());
    *out_size = blob.size();
  });
}

rwkvrt_status rwkvrt_session_load_state(rwkvrt_session* session, const void* blob, size_t size) {
  return guarded([&] {
    require(session, "session");
    require(blob, "blob");
    session->generator->load_state(blob, size);
  });
}

}  // extern "C"
