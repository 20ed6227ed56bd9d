#include "model/model.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "core/error.h"
#include "core/log.h"
#include "dtype_convert.h"
#include "loaders/checkpoint_readers.h"
#include "model/graph.h"

namespace rwkvrt {

uint64_t StateTensor::numel() const {
  uint64_t n = 1;
  for (uint64_t d : shape) n *= d;
  return n;
}

Model::~Model() = default;

rwkvrt_bk_dtype Model::activation_dtype(uint64_t rows) const {
  return graph_->activation_dtype(rows);
}

std::shared_ptr<Model> Model::load(const std::string& path, const LoadOptions& options) {
  if (options.progress && !options.progress(0.0f, "reading"))
    fail(RWKVRT_ERR_CANCELLED, "model load cancelled");
  const TensorSet tensors = read_checkpoint(path);
  try {
    return from_tensors(tensors, options);
  } catch (const Error& e) {
    // Name the file in every load error, however deep it was raised.
    if (e.status() == RWKVRT_ERR_CANCELLED) throw;
    throw Error(e.status(), fmt::format("{}: {}", path, e.what()));
  }
}

std::shared_ptr<Model> Model::from_tensors(const TensorSet& tensors, const LoadOptions& options) {
  std::shared_ptr<Model> m(new Model());
  m->prepare(tensors, options);
  return m;
}

namespace {

// FNV-1a, 64 bit: stable across platforms and releases (state blobs store the result).
struct Fnv64 {
  uint64_t h = 1469598103934665603ull;
  void bytes(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    for (size_t i = 0; i < n; ++i) {
      h ^= b[i];
      h *= 1099511628211ull;
    }
  }
  void u64(uint64_t v) { bytes(&v, sizeof(v)); }
};

float parse_eps(const std::string& text, const char* what) {
  char* end = nullptr;
  const float v = std::strtof(text.c_str(), &end);
  if (end == text.c_str() || *end != '\0' || !(v > 0.0f) || v > 1.0f)
    fail(RWKVRT_ERR_FORMAT, "{} '{}' is not a valid GroupNorm eps", what, text);
  return v;
}

}  // namespace

void Model::prepare(const TensorSet& tensors, const LoadOptions& options) {
  config_ = detect_config(tensors);
  auto fmt_it = tensors.metadata.find("format");
  file_format_ = fmt_it != tensors.metadata.end() ? fmt_it->second : "memory";
  if (options.group_norm_eps > 0.0f) {
    config_.group_norm_eps = options.group_norm_eps;
  } else if (auto it = tensors.metadata.find("rwkvrt.group_norm_eps");
             it != tensors.metadata.end()) {
    config_.group_norm_eps = parse_eps(it->second, "metadata rwkvrt.group_norm_eps");
  }

  const BackendEntry backend = BackendRegistry::instance().select(options.backend);
  device_ = std::make_shared<Device>(backend, options.device, options.n_threads);
  {
    rwkvrt_bk_device_desc desc{};
    desc.struct_size = sizeof(desc);
    if (backend.api->device_describe(options.device, &desc) == RWKVRT_BK_OK &&
        desc.preferred_pass_rows > 0)
      max_rows_ = std::min<uint64_t>(desc.preferred_pass_rows, 1u << 16);
  }
  log(RWKVRT_LOG_INFO, "loading RWKV {} L{} C{} V{} on backend '{}'", version_name(config_.version),
      config_.n_layer, config_.n_embd, config_.n_vocab, backend.name);

  std::function<bool(float)> progress;
  if (options.progress)
    progress = [&](float f) { return options.progress(f, "preparing"); };
  graph_ = Graph::create(config_, tensors, device_,
                         WeightPolicy{options.weight_dtype, options.matmul_precision}, progress);
  if (progress && !progress(1.0f)) fail(RWKVRT_ERR_CANCELLED, "loading cancelled");
  weight_bytes_ = graph_->weight_bytes();
  bytes_per_token_ = graph_->bytes_per_token();
  weight_dtype_ = graph_->matrix_dtype();

  // Canonical state layout and initial values (RWKV-MATH.md §3.5).
  const uint64_t C = config_.n_embd, A = config_.n_att, H = config_.n_head, N = config_.head_size;
  initial_state_.assign(config_.state_floats(), 0.0f);
  uint64_t off = 0;
  for (uint32_t i = 0; i < config_.n_layer; ++i) {
    const std::string b = "blocks." + std::to_string(i) + ".att.";
    const std::string f = "blocks." + std::to_string(i) + ".ffn.";
    state_layout_.push_back({b + "shift", off, {C}});
    off += C;
    if (config_.version == RwkvVersion::V4) {
      state_layout_.push_back({b + "aa", off, {A}});
      state_layout_.push_back({b + "bb", off + A, {A}});
      state_layout_.push_back({b + "pp", off + 2 * A, {A}});
      // pp holds a log-space maximum and starts at "log 0".
      std::fill(initial_state_.begin() + off + 2 * A, initial_state_.begin() + off + 3 * A, -1e30f);
      off += 3 * A;
    } else {
      state_layout_.push_back({b + "wkv", off, {H, N, N}});
      off += H * N * N;
    }
    state_layout_.push_back({f + "shift", off, {C}});
    off += C;
  }

  if (config_.has_time_state) copy_time_state(tensors, initial_state_);
  metadata_ = tensors.metadata;

  Fnv64 fp;
  fp.u64(uint64_t(config_.version));
  for (uint64_t d : {config_.n_layer, config_.n_embd, config_.n_att, config_.n_ffn,
                     config_.n_head, config_.head_size, config_.n_vocab})
    fp.u64(d);
  const auto& host_vectors = graph_->vectors().host();
  fp.bytes(host_vectors.data(), host_vectors.size() * sizeof(float));
  fp.bytes(initial_state_.data(), initial_state_.size() * sizeof(float));
  fingerprint_ = fp.h;
}

void Model::forward(Stream& stream, Workspace& ws, uint64_t B, uint64_t T, const int32_t* ids,
                    void* const* bases, LogitRows rows) const {
  const uint64_t M = B * T, C = config_.n_embd, V = config_.n_vocab;
  if (M > ws.rows())
    fail(RWKVRT_ERR_INTERNAL, "forward pass of {} rows exceeds the workspace ({})", M, ws.rows());
  const PassContext p{stream, ws, B, T, M, bases};
  graph_->embed(p, ids);
  graph_->layers(p);
  switch (rows) {
    case LogitRows::None:
      break;
    case LogitRows::All:
      graph_->head(p, ws.x(), M, ws.logits(M));
      break;
    case LogitRows::LastOfEachSequence:
      if (T == 1) {
        graph_->head(p, ws.x(), B, ws.logits(B));
      } else {
        float* out = ws.logits(B);
        for (uint64_t b = 0; b < B; ++b)
          graph_->head(p, ws.x() + (b * T + T - 1) * C, 1, out + b * V);
      }
      break;
  }
}

}  // namespace rwkvrt

namespace rwkvrt {

void Model::copy_time_state(const TensorSet& tensors, std::vector<float>& state) const {
  const uint64_t H = config_.n_head, N = config_.head_size;
  for (const StateTensor& st : state_layout_) {
    const std::string suffix = ".att.wkv";
    if (st.name.size() <= suffix.size() ||
        st.name.compare(st.name.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    const std::string key = st.name.substr(0, st.name.size() - 3) + "time_state";
    const Tensor* ts = tensors.find(key);
    if (!ts) fail(RWKVRT_ERR_FORMAT, "state file has no tensor '{}'", key);
    if (ts->numel() != H * N * N)
      fail(RWKVRT_ERR_STATE_MISMATCH, "tensor '{}' has {} values, the model's heads need {}x{}x{}",
           key, ts->numel(), H, N, N);
    std::vector<float> v(H * N * N);
    convert_to_f32(static_cast<rwkvrt_bk_dtype>(ts->dtype), ts->data, v.data(), v.size());
    // The file stores [h][value][key]; the v5/v6 state is [h][key][value] (RWKV-MATH.md §3.5).
    float* dst = state.data() + st.offset;
    for (uint64_t h = 0; h < H; ++h)
      for (uint64_t vi = 0; vi < N; ++vi)
        for (uint64_t ki = 0; ki < N; ++ki) dst[h * N * N + ki * N + vi] = v[h * N * N + vi * N + ki];
  }
}

std::vector<float> Model::state_from_time_state(const TensorSet& tensors) const {
  if (config_.version != RwkvVersion::V5_0 && config_.version != RwkvVersion::V5_1 &&
      config_.version != RwkvVersion::V5_2 && config_.version != RwkvVersion::V6)
    fail(RWKVRT_ERR_UNSUPPORTED,
         "state-tuning files (time_state tensors) apply to RWKV v5 and v6 models; this model is "
         "RWKV {}",
         version_name(config_.version));
  std::vector<float> state(config_.state_floats(), 0.0f);
  copy_time_state(tensors, state);
  return state;
}

}  // namespace rwkvrt
