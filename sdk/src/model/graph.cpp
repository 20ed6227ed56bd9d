#include "model/graph.h"

#include <cmath>

#include "core/error.h"
#include "dtype_convert.h"

namespace rwkvrt {

VectorArena::Ref VectorArena::add(const std::vector<float>& values) {
  // Keep every vector 64-byte aligned on the device.
  while (host_.size() % 16 != 0) host_.push_back(0.0f);
  Ref r{host_.size()};
  host_.insert(host_.end(), values.begin(), values.end());
  return r;
}

void VectorArena::upload(const std::shared_ptr<Device>& device, Stream& stream) {
  device_ = DeviceBuffer(device, host_.size() * sizeof(float));
  stream.upload(device_.get(), host_.data(), host_.size() * sizeof(float));
}

Workspace::Workspace(const std::shared_ptr<Device>& device, const ModelConfig& c, uint64_t rows)
    : device_(device), rows_(rows), c_(c.n_embd), vocab_(c.n_vocab) {
  const uint64_t C = c.n_embd, A = c.n_att;
  uint64_t lora_width = 1;
  for (uint64_t w : {uint64_t(c.d_mix) * 5, uint64_t(c.d_decay), uint64_t(c.d_w), uint64_t(c.d_a),
                     uint64_t(c.d_v), uint64_t(c.d_g)})
    lora_width = std::max(lora_width, w);
  const uint64_t f = sizeof(float);
  x_ = DeviceBuffer(device, rows * C * f);
  xhat_ = DeviceBuffer(device, rows * C * f);
  prev_ = DeviceBuffer(device, rows * C * f);
  mixes_ = DeviceBuffer(device, 8 * rows * C * f);
  act_ = DeviceBuffer(device, kActSlots * rows * std::max(C, A) * f);
  lora_width_ = lora_width;
  lora_ = DeviceBuffer(device, kLoraSlots * rows * lora_width * f);
  lora_out_ = DeviceBuffer(device, (c.version == RwkvVersion::V6 ? 5 * rows * C : 1) * f);
  hidden_ = DeviceBuffer(device, rows * std::max<uint64_t>(c.n_ffn, A) * f);
  ids_ = DeviceBuffer(device, rows * sizeof(int32_t));
}

float* Workspace::logits(uint64_t n) {
  if (n > logits_rows_) {
    logits_ = DeviceBuffer(device_, n * vocab_ * sizeof(float));
    logits_rows_ = n;
  }
  return logits_.f32();
}

void** Workspace::bases(uint64_t n) {
  if (n > bases_cap_) {
    bases_ = DeviceBuffer(device_, n * sizeof(void*));
    bases_cap_ = n;
  }
  return static_cast<void**>(bases_.get());
}

std::unique_ptr<Graph> Graph::create(const ModelConfig& config, const TensorSet& tensors,
                                     const std::shared_ptr<Device>& device,
                                     const WeightPolicy& weights,
                                     const std::function<bool(float)>& progress) {
  switch (config.version) {
    case RwkvVersion::V4:
      return make_graph_v4(config, tensors, device, weights, progress);
    case RwkvVersion::V5_0:
    case RwkvVersion::V5_1:
    case RwkvVersion::V5_2:
      return make_graph_v5(config, tensors, device, weights, progress);
    case RwkvVersion::V6:
      return make_graph_v6(config, tensors, device, weights, progress);
    case RwkvVersion::V7:
      return make_graph_v7(config, tensors, device, weights, progress);
  }
  fail(RWKVRT_ERR_UNSUPPORTED, "RWKV version {} has no graph", version_name(config.version));
}

void Graph::begin_load(const TensorSet& t, const std::function<bool(float)>& progress) {
  tensors_ = &t;
  progress_ = progress;
  matrices_total_ = 0;
  for (const Tensor& x : t.tensors())
    if (x.shape.size() >= 2 && x.numel() >= 4096) ++matrices_total_;
  load_common();
}

std::vector<float> Graph::f32(const std::string& name) const {
  const Tensor* t = tensors_->find(name);
  if (!t) fail(RWKVRT_ERR_FORMAT, "missing tensor '{}'", name);
  std::vector<float> out(t->numel());
  if (!convert_to_f32(static_cast<rwkvrt_bk_dtype>(t->dtype), t->data, out.data(), out.size()))
    fail(RWKVRT_ERR_UNSUPPORTED, "tensor '{}' has dtype {} which cannot be converted", name,
         dtype_name(t->dtype));
  return out;
}

std::vector<float> Graph::one_minus(const std::string& name) const {
  std::vector<float> v = f32(name);
  for (float& x : v) x = 1.0f - x;
  return v;
}

std::vector<float> Graph::concat(const std::vector<std::vector<float>>& parts) {
  std::vector<float> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

GatedFfn Graph::load_gated_ffn(const std::string& block, bool v6_mix) {
  const std::string ff = block + "ffn.";
  GatedFfn f;
  f.ln2_w = vec(block + "ln2.weight");
  f.ln2_b = vec(block + "ln2.bias");
  // v4/v5 store μ (weight of x̂); v6 stores maa = 1 − μ (RWKV-MATH.md pitfall 6).
  f.mix = v6_mix ? vec(concat({f32(ff + "time_maa_k"), f32(ff + "time_maa_r")}))
                 : vec(concat({one_minus(ff + "time_mix_k"), one_minus(ff + "time_mix_r")}));
  f.key = matrix(ff + "key.weight");
  f.receptance = matrix(ff + "receptance.weight");
  f.value = matrix(ff + "value.weight");
  return f;
}

void Graph::gated_ffn(const PassContext& p, const GatedFfn& f, uint32_t layer,
                      uint64_t shift_offset_floats) const {
  Stream& s = p.s;
  Workspace& ws = p.ws;
  const uint64_t M = p.M, C = cfg_.n_embd;
  const VectorArena& V = vectors_;
  s.norm_shift_mix({ws.x(), p.B, p.T, C, V(f.ln2_w), V(f.ln2_b), cfg_.layer_norm_eps,
                    state_at(p, layer, shift_offset_floats), 2, V(f.mix), ws.mixes()},
                   ws.xhat(), ws.prev());
  const float* xk = ws.mixes();
  const float* xr = ws.mixes() + M * C;
  float* gate = ws.act(0);
  float* out = ws.act(1);
  // σ(x_r·W_r) and relu²(x_k·W_k) as one group (one launch in decode on a GPU).
  using Item = Stream::MatmulItem;
  s.matmul_group({Item{xr, M, &f.receptance, gate, nullptr, RWKVRT_BK_SIGMOID},
                  Item{xk, M, &f.key, ws.hidden(), nullptr, RWKVRT_BK_RELU_SQUARE}});
  s.matmul(ws.hidden(), M, f.value, out);
  s.binary(RWKVRT_BK_MUL, out, gate, out, M, C, false);
  s.binary(RWKVRT_BK_ADD, ws.x(), out, ws.x(), M, C, false);
}

void Graph::track(const PreparedWeight& w) {
  const rwkvrt_bk_weight_info info = w.info();
  common_dtype_ =
      common_dtype_ == RWKVRT_BK_SAME || common_dtype_ == info.dtype ? info.dtype : RWKVRT_BK_F32;
  weight_bytes_ += info.bytes;
  bytes_per_token_ += info.bytes_read_per_matmul;
  ++matrices_done_;
  if (progress_ && matrices_total_ > 0 &&
      !progress_(std::min(1.0f, float(matrices_done_) / float(matrices_total_))))
    fail(RWKVRT_ERR_CANCELLED, "model load cancelled");
}

rwkvrt_bk_dtype Graph::activation_dtype(uint64_t M) const {
  const uint32_t from = device_->half_activation_rows();
  const bool half = common_dtype_ == RWKVRT_BK_F16 || common_dtype_ == RWKVRT_BK_BF16;
  return half && weights_.precision == RWKVRT_BK_MATMUL_ROUNDED_ACTIVATIONS && from > 0 && M >= from
             ? common_dtype_
             : RWKVRT_BK_F32;
}

PreparedWeight Graph::matrix(const std::string& name) {
  const Tensor* t = tensors_->find(name);
  if (!t || t->shape.size() < 2) fail(RWKVRT_ERR_FORMAT, "missing matrix '{}'", name);
  rwkvrt_bk_weight_desc d{};
  d.struct_size = sizeof(d);
  d.name = t->name.c_str();
  d.rows = uint64_t(t->shape[0]);
  d.cols = t->numel() / d.rows;
  d.src_dtype = static_cast<rwkvrt_bk_dtype>(t->dtype);
  d.src = t->data;
  d.want_dtype = weights_.dtype;
  d.matmul_precision = weights_.precision;
  PreparedWeight w(device_, d);
  track(w);
  return w;
}

PreparedWeight Graph::lora(const std::string& name) {
  const Tensor* t = tensors_->find(name);
  if (!t || t->shape.size() != 2) fail(RWKVRT_ERR_FORMAT, "missing LoRA matrix '{}'", name);
  const std::vector<float> src = f32(name);
  return lora_values(name, src.data(), uint64_t(t->shape[0]), uint64_t(t->shape[1]),
                     lora_dtype(name));
}

rwkvrt_bk_dtype Graph::lora_dtype(const std::string& name) const {
  const Tensor* t = tensors_->find(name);
  const auto file = t ? static_cast<rwkvrt_bk_dtype>(t->dtype) : RWKVRT_BK_F32;
  const bool half = file == RWKVRT_BK_F16 || file == RWKVRT_BK_BF16;
  return half && (weights_.dtype == RWKVRT_BK_SAME || weights_.dtype == file) ? file
                                                                              : RWKVRT_BK_F32;
}

PreparedWeight Graph::lora_values(const std::string& label, const float* src, uint64_t in,
                                  uint64_t out, rwkvrt_bk_dtype stored) {
  std::vector<float> transposed(in * out);
  for (uint64_t i = 0; i < in; ++i)
    for (uint64_t o = 0; o < out; ++o) transposed[o * in + i] = src[i * out + o];
  rwkvrt_bk_weight_desc d{};
  d.struct_size = sizeof(d);
  d.name = label.c_str();
  d.rows = out;
  d.cols = in;
  d.src_dtype = RWKVRT_BK_F32;
  d.src = transposed.data();
  d.want_dtype = stored;
  d.matmul_precision = weights_.precision;
  PreparedWeight w(device_, d);
  track(w);
  return w;
}

void Graph::load_common() {
  const uint64_t V = cfg_.n_vocab, C = cfg_.n_embd;
  // Fold ln0 into the embedding once, in fp32 (RWKV-MATH.md §2.1).
  std::vector<float> emb = f32("emb.weight");
  const std::vector<float> g = f32("blocks.0.ln0.weight"), b = f32("blocks.0.ln0.bias");
  for (uint64_t r = 0; r < V; ++r) {
    float* row = emb.data() + r * C;
    double mean = 0.0, var = 0.0;
    for (uint64_t c = 0; c < C; ++c) mean += row[c];
    mean /= double(C);
    for (uint64_t c = 0; c < C; ++c) var += (row[c] - mean) * (row[c] - mean);
    var /= double(C);
    const double inv = 1.0 / std::sqrt(var + double(cfg_.layer_norm_eps));
    for (uint64_t c = 0; c < C; ++c) row[c] = float((row[c] - mean) * inv) * g[c] + b[c];
  }
  emb_ = DeviceBuffer(device_, emb.size() * sizeof(float));
  {
    Stream s(device_);
    s.upload(emb_.get(), emb.data(), emb.size() * sizeof(float));
    s.synchronize();
  }
  bytes_per_token_ += C * sizeof(float);
  weight_bytes_ += emb.size() * sizeof(float);
  ln_out_w_ = vec("ln_out.weight");
  ln_out_b_ = vec("ln_out.bias");
  head_ = matrix("head.weight");
  matrix_dtype_ = head_.info().dtype;
}

void Graph::finish_load(Stream& s) {
  vectors_.upload(device_, s);
  s.synchronize();
  weight_bytes_ += vectors_.host().size() * sizeof(float);
  tensors_ = nullptr;
  progress_ = nullptr;
}

void Graph::embed(const PassContext& p, const int32_t* ids) const {
  p.s.gather_rows(emb_.f32(), cfg_.n_embd, ids, p.M, p.ws.x());
}

void Graph::head(const PassContext& p, const float* x_rows, uint64_t n, float* out) const {
  p.s.layer_norm(x_rows, p.ws.xhat(), n, cfg_.n_embd, vectors_(ln_out_w_), vectors_(ln_out_b_),
                 cfg_.layer_norm_eps);
  p.s.matmul(p.ws.xhat(), n, head_, out);
}

}  // namespace rwkvrt
