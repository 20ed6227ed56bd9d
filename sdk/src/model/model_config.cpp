#include "model/model_config.h"

#include <algorithm>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"

namespace rwkvrt {

const char* version_name(RwkvVersion v) {
  switch (v) {
    case RwkvVersion::V4:
      return "4";
    case RwkvVersion::V5_0:
      return "5.0";
    case RwkvVersion::V5_1:
      return "5.1";
    case RwkvVersion::V5_2:
      return "5.2";
    case RwkvVersion::V6:
      return "6.0";
    case RwkvVersion::V7:
      return "7.0";
  }
  return "?";
}

uint64_t ModelConfig::state_floats_per_layer() const {
  if (version == RwkvVersion::V4) return 2ull * n_embd + 3ull * n_att;
  return 2ull * n_embd + uint64_t(n_head) * head_size * head_size;
}

namespace {

// Limits far above any published model; they keep a hostile header from asking for absurd
// allocations before the tensor data is ever looked at.
constexpr int64_t kMaxDim = int64_t(1) << 24;
constexpr uint32_t kMaxLayers = 4096;
// Published v5-v7 models use heads of 64 values.  The wkv state holds N x N values per head, so a
// head size is bounded on its own as well as through the state limit below.
constexpr uint32_t kMaxHeadSize = 4096;
// The recurrent state is allocated whole (per session and per batch slot) before anything runs.
// A file pays for its weights value by value, but a v5-v7 layer's state is H*N*N = A*N values:
// the attention width times the head size, which a file with a few huge heads gets almost for
// free (an 8 KB file asked for a 1 GiB state).  Published models' states are well under 1% of
// their parameter count, so a state larger than the whole checkpoint is refused; tiny models
// always get this many values.
constexpr uint64_t kMinStateLimit = uint64_t(1) << 20;

class Checker {
 public:
  explicit Checker(const TensorSet& t) : t_(t) {}

  const Tensor& need(const std::string& name) const {
    const Tensor* p = t_.find(name);
    if (!p) fail(RWKVRT_ERR_FORMAT, "missing tensor '{}'", name);
    return *p;
  }
  bool has(const std::string& name) const { return t_.find(name) != nullptr; }

  // An exact shape.
  const Tensor& shape(const std::string& name, std::vector<int64_t> dims) const {
    const Tensor& t = need(name);
    if (t.shape != dims) {
      Tensor expected;
      expected.shape = dims;
      fail(RWKVRT_ERR_FORMAT, "tensor '{}' has shape {}, expected {}", name, t.shape_string(),
           expected.shape_string());
    }
    return t;
  }

  // A vector of n values, stored with any number of leading/trailing unit dims: (n), (1,1,n).
  // Readers accept any shape whose element count fits in 64 bits, e.g. (2^40, 2^23, 0), so each
  // dimension is bounded before the product is formed.
  const Tensor& vector(const std::string& name, int64_t n) const {
    const Tensor& t = need(name);
    int64_t non_unit = 0;
    uint64_t prod = 1;
    for (int64_t d : t.shape) {
      if (d < 0 || d > kMaxDim)
        fail(RWKVRT_ERR_FORMAT,
             "tensor '{}' has shape {} with an implausible dimension {}, expected a vector of {} "
             "values",
             name, t.shape_string(), d, n);
      // prod <= 2^24 + 1 before each step, so the product stays far from overflow; saturating
      // keeps it unequal to any n <= kMaxDim.
      prod = std::min(prod * uint64_t(d), uint64_t(kMaxDim) + 1);
      if (d != 1) ++non_unit;
    }
    if (prod != uint64_t(n) || non_unit > 1)
      fail(RWKVRT_ERR_FORMAT, "tensor '{}' has shape {}, expected a vector of {} values", name,
           t.shape_string(), n);
    return t;
  }

  // A tensor holding exactly `n` values in the given number of dims or fewer (e.g. (H,N) or (C)).
  const Tensor& numel(const std::string& name, uint64_t n) const {
    const Tensor& t = need(name);
    if (t.numel() != n)
      fail(RWKVRT_ERR_FORMAT, "tensor '{}' has shape {} ({} values), expected {} values", name,
           t.shape_string(), t.numel(), n);
    return t;
  }

  int64_t dim(const std::string& name, size_t axis) const {
    const Tensor& t = need(name);
    if (t.shape.size() <= axis)
      fail(RWKVRT_ERR_FORMAT, "tensor '{}' has shape {}, expected at least {} dimensions", name,
           t.shape_string(), axis + 1);
    const int64_t d = t.shape[axis];
    if (d <= 0 || d > kMaxDim)
      fail(RWKVRT_ERR_FORMAT, "tensor '{}' has an implausible dimension {}", name, d);
    return d;
  }

 private:
  const TensorSet& t_;
};

bool any_key_contains(const TensorSet& t, const char* needle) {
  return std::any_of(t.tensors().begin(), t.tensors().end(),
                     [&](const Tensor& x) { return x.name.find(needle) != std::string::npos; });
}

// 1 + the largest i of the keys "blocks.{i}.*".
uint32_t count_layers(const TensorSet& t) {
  int64_t max_index = -1;
  for (const Tensor& x : t.tensors()) {
    if (x.name.rfind("blocks.", 0) != 0) continue;
    const char* p = x.name.c_str() + 7;
    char* end = nullptr;
    const long i = std::strtol(p, &end, 10);
    if (end == p || *end != '.' || i < 0)
      fail(RWKVRT_ERR_FORMAT, "tensor name '{}' does not follow 'blocks.<layer>.'", x.name);
    if (i >= long(kMaxLayers))
      fail(RWKVRT_ERR_FORMAT, "tensor '{}': layer index too large", x.name);
    max_index = std::max<int64_t>(max_index, i);
  }
  if (max_index < 0)
    fail(RWKVRT_ERR_FORMAT, "no 'blocks.<layer>.*' tensors: not an RWKV checkpoint");
  return uint32_t(max_index + 1);
}

RwkvVersion detect_version(const TensorSet& t) {
  // Order-independent form of the reference package's scan (RWKV-MATH.md §1).
  if (t.find("blocks.0.att.r_k")) return RwkvVersion::V7;
  if (any_key_contains(t, "time_maa")) return RwkvVersion::V6;
  if (any_key_contains(t, "ln_x")) {
    if (!any_key_contains(t, "gate.weight")) return RwkvVersion::V5_0;
    const Tensor* td = t.find("blocks.0.att.time_decay");
    if (td && td->shape.size() == 2 && td->shape[1] > 1) return RwkvVersion::V5_2;
    return RwkvVersion::V5_1;
  }
  return RwkvVersion::V4;
}

}  // namespace

ModelConfig detect_config(const TensorSet& t) {
  if (t.find("_strategy"))
    fail(RWKVRT_ERR_UNSUPPORTED,
         "this file was pre-converted by the rwkv package's convert_model.py (it has a "
         "'_strategy' entry); load the original checkpoint instead");
  Checker ck(t);
  if (!t.find("emb.weight"))
    fail(RWKVRT_ERR_FORMAT, "missing tensor 'emb.weight': not an RWKV checkpoint");

  ModelConfig c;
  c.version = detect_version(t);
  c.n_layer = count_layers(t);
  c.n_vocab = uint32_t(ck.dim("emb.weight", 0));
  c.n_embd = uint32_t(ck.dim("emb.weight", 1));
  ck.shape("emb.weight", {c.n_vocab, c.n_embd});
  const std::string a0 = "blocks.0.att.";
  c.n_att = uint32_t(ck.dim(a0 + "key.weight", 0));
  c.n_ffn = uint32_t(ck.dim("blocks.0.ffn.key.weight", 0));
  const int64_t C = c.n_embd, A = c.n_att, F = c.n_ffn, V = c.n_vocab;

  switch (c.version) {
    case RwkvVersion::V4:
      break;
    case RwkvVersion::V5_0:
    case RwkvVersion::V5_1:
    case RwkvVersion::V5_2:
      c.n_head = uint32_t(ck.dim(a0 + "time_decay", 0));
      break;
    case RwkvVersion::V6:
      c.n_head = uint32_t(ck.dim(a0 + "time_faaaa", 0));
      c.d_mix = uint32_t(ck.dim(a0 + "time_maa_w1", 1) / 5);
      c.d_decay = uint32_t(ck.dim(a0 + "time_decay_w1", 1));
      break;
    case RwkvVersion::V7:
      c.n_head = uint32_t(ck.dim(a0 + "r_k", 0));
      c.head_size = uint32_t(ck.dim(a0 + "r_k", 1));
      c.d_w = uint32_t(ck.dim(a0 + "w1", 1));
      c.d_a = uint32_t(ck.dim(a0 + "a1", 1));
      c.d_g = uint32_t(ck.dim(a0 + "g1", 1));
      // Layer 0's v-LoRA is unused and may be absent; read the rank from a later layer.
      c.d_v = c.n_layer > 1 ? uint32_t(ck.dim("blocks.1.att.v1", 1)) : 0;
      break;
  }
  if (c.version != RwkvVersion::V4) {
    if (c.head_size == 0) {
      if (A % c.n_head != 0)
        fail(RWKVRT_ERR_FORMAT, "attention width {} is not a multiple of the head count {}", A,
             c.n_head);
      c.head_size = uint32_t(A / c.n_head);
    }
    if (int64_t(c.n_head) * c.head_size != A)
      fail(RWKVRT_ERR_FORMAT, "{} heads of size {} do not make the attention width {}", c.n_head,
           c.head_size, A);
    if (c.head_size > kMaxHeadSize)
      fail(RWKVRT_ERR_UNSUPPORTED,
           "{} head(s) of size {} (attention width {}): head sizes above {} are not supported "
           "(the state holds size x size values per head; published models use 64)",
           c.n_head, c.head_size, A, kMaxHeadSize);
  }
  if (c.version == RwkvVersion::V7 && A != C)
    fail(RWKVRT_ERR_FORMAT, "RWKV-7 needs the attention width {} to equal the model width {}", A,
         C);
  const int64_t H = c.n_head, N = c.head_size;

  // Shared tensors.
  ck.vector("blocks.0.ln0.weight", C);
  ck.vector("blocks.0.ln0.bias", C);
  ck.vector("ln_out.weight", C);
  ck.vector("ln_out.bias", C);
  ck.shape("head.weight", {V, C});
  c.time_faaaa = any_key_contains(t, ".time_faaaa");
  c.has_time_state = any_key_contains(t, ".time_state");

  for (uint32_t i = 0; i < c.n_layer; ++i) {
    const std::string b = "blocks." + std::to_string(i) + ".";
    const std::string at = b + "att.", ff = b + "ffn.";
    for (const char* ln : {"ln1", "ln2"}) {
      ck.vector(b + ln + ".weight", C);
      ck.vector(b + ln + ".bias", C);
    }
    switch (c.version) {
      case RwkvVersion::V4:
      case RwkvVersion::V5_0:
      case RwkvVersion::V5_1:
      case RwkvVersion::V5_2: {
        const bool v5 = c.version != RwkvVersion::V4;
        const bool gated = c.version == RwkvVersion::V5_1 || c.version == RwkvVersion::V5_2;
        for (const char* m : {"time_mix_k", "time_mix_v", "time_mix_r"}) ck.vector(at + m, C);
        if (gated) ck.vector(at + "time_mix_g", C);
        if (!v5) {
          ck.vector(at + "time_decay", A);
          ck.vector(at + "time_first", A);
        } else {
          if (c.version == RwkvVersion::V5_2)
            ck.shape(at + "time_decay", {H, N});
          else
            ck.numel(at + "time_decay", uint64_t(H));
          if (c.time_faaaa)
            ck.numel(at + "time_faaaa", uint64_t(H * N));
          else
            ck.numel(at + "time_first", uint64_t(H));
          ck.vector(at + "ln_x.weight", A);
          ck.vector(at + "ln_x.bias", A);
          if (gated) ck.shape(at + "gate.weight", {A, C});
          if (c.has_time_state) ck.numel(at + "time_state", uint64_t(H * N * N));
        }
        for (const char* w : {"key.weight", "value.weight", "receptance.weight"})
          ck.shape(at + w, {A, C});
        ck.shape(at + "output.weight", {C, A});
        ck.vector(ff + "time_mix_k", C);
        ck.vector(ff + "time_mix_r", C);
        ck.shape(ff + "key.weight", {F, C});
        ck.shape(ff + "receptance.weight", {C, C});
        ck.shape(ff + "value.weight", {C, F});
        break;
      }
      case RwkvVersion::V6: {
        for (const char* m :
             {"time_maa_x", "time_maa_w", "time_maa_k", "time_maa_v", "time_maa_r", "time_maa_g"})
          ck.vector(at + m, C);
        ck.shape(at + "time_maa_w1", {C, 5 * int64_t(c.d_mix)});
        ck.shape(at + "time_maa_w2", {5, c.d_mix, C});
        ck.vector(at + "time_decay", A);
        ck.shape(at + "time_decay_w1", {C, c.d_decay});
        ck.shape(at + "time_decay_w2", {c.d_decay, A});
        ck.numel(at + "time_faaaa", uint64_t(H * N));
        for (const char* w : {"key.weight", "value.weight", "receptance.weight", "gate.weight"})
          ck.shape(at + w, {A, C});
        ck.shape(at + "output.weight", {C, A});
        ck.vector(at + "ln_x.weight", A);
        ck.vector(at + "ln_x.bias", A);
        if (c.has_time_state) ck.numel(at + "time_state", uint64_t(H * N * N));
        ck.vector(ff + "time_maa_k", C);
        ck.vector(ff + "time_maa_r", C);
        ck.shape(ff + "key.weight", {F, C});
        ck.shape(ff + "receptance.weight", {C, C});
        ck.shape(ff + "value.weight", {C, F});
        break;
      }
      case RwkvVersion::V7: {
        for (const char* m : {"x_r", "x_w", "x_k", "x_v", "x_a", "x_g", "w0", "a0", "k_k", "k_a"})
          ck.vector(at + m, C);
        ck.shape(at + "w1", {C, c.d_w});
        ck.shape(at + "w2", {c.d_w, C});
        ck.shape(at + "a1", {C, c.d_a});
        ck.shape(at + "a2", {c.d_a, C});
        ck.shape(at + "g1", {C, c.d_g});
        ck.shape(at + "g2", {c.d_g, C});
        if (i > 0) {
          ck.vector(at + "v0", C);
          ck.shape(at + "v1", {C, c.d_v});
          ck.shape(at + "v2", {c.d_v, C});
        }
        ck.numel(at + "r_k", uint64_t(C));
        for (const char* w : {"receptance.weight", "key.weight", "value.weight", "output.weight"})
          ck.shape(at + w, {C, C});
        ck.vector(at + "ln_x.weight", C);
        ck.vector(at + "ln_x.bias", C);
        ck.vector(ff + "x_k", C);
        ck.shape(ff + "key.weight", {F, C});
        ck.shape(ff + "value.weight", {C, F});
        break;
      }
    }
  }

  c.matrix_dtype = ck.need(a0 + "key.weight").dtype;
  for (const Tensor& x : t.tensors()) c.n_params += x.numel();
  // Every dimension is <= 2^24, the head size <= 2^12 and the layers <= 2^12, so this is exact.
  const uint64_t state = c.state_floats();
  if (state > std::max(c.n_params, kMinStateLimit))
    fail(RWKVRT_ERR_UNSUPPORTED,
         "the recurrent state would hold {} values ({} layers, {} head(s) of size {}), more than "
         "the checkpoint's {} parameters: the head size is implausible for the model's width {}",
         state, c.n_layer, c.n_head, c.head_size, c.n_params, C);
  return c;
}

}  // namespace rwkvrt
