// The model graph: what runs, in which order, for each RWKV generation.  The core owns the graph
// and drives a backend through its ops (core/device.h); a backend never learns which generation
// runs except through the WKV kernel called.
//
// Shared structure of every generation (RWKV-MATH.md §2): x = E'[token] (ln0 folded into the
// embedding at load), then per layer x += TMix(LN1(x)), x += CMix(LN2(x)), then
// logits = head · LN_out(x).  Subclasses implement the two mixes.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/device.h"
#include "loaders/tensor_set.h"
#include "model/model_config.h"

namespace rwkvrt {

// Host-side fp32 vectors collected during load and uploaded in one buffer.  References are
// offsets until upload, so layer structs can be filled before the device buffer exists.
class VectorArena {
 public:
  struct Ref {
    uint64_t offset = ~uint64_t(0);
  };
  Ref add(const std::vector<float>& values);
  void upload(const std::shared_ptr<Device>& device, Stream& stream);
  // The device address of a vector; null for a Ref never filled (e.g. the value-residual
  // vectors of v7's layer 0), so building an op's arguments never forms an invalid pointer.
  const float* operator()(Ref r) const {
    return r.offset == ~uint64_t(0) ? nullptr : device_.f32(r.offset);
  }
  const std::vector<float>& host() const { return host_; }

 private:
  std::vector<float> host_;
  DeviceBuffer device_;
};

// Scratch memory of one forward pass of up to `rows` rows.  Owned by a session (or a batch), never
// shared between threads.
class Workspace {
 public:
  Workspace(const std::shared_ptr<Device>& device, const ModelConfig& config, uint64_t rows);
  uint64_t rows() const { return rows_; }

  // Activations [rows][C] unless stated.
  float* x() const { return x_.f32(); }
  float* xhat() const { return xhat_.f32(); }
  float* prev() const { return prev_.f32(); }
  float* mixes() const { return mixes_.f32(); }                           // [8][rows][C]
  float* act(int i) const { return act_.f32(uint64_t(i) * rows_ * c_); }  // 12 slots
  // LoRA hidden states [rows][lora_width], kLoraSlots of them (independent chains side by side).
  float* lora(int slot = 0) const { return lora_.f32(uint64_t(slot) * rows_ * lora_width_); }
  float* lora_out() const { return lora_out_.f32(); }  // [5][rows][C] (v6 token-shift LoRA)
  float* hidden() const { return hidden_.f32(); }      // [rows][max(F, A)]
  int32_t* ids() const { return static_cast<int32_t*>(ids_.get()); }  // [rows]
  // Logits [n][V], grown on demand.
  float* logits(uint64_t n);
  // A device array of `n` state addresses, grown on demand.
  void** bases(uint64_t n);

  static constexpr int kActSlots = 12;
  static constexpr int kLoraSlots = 4;

 private:
  std::shared_ptr<Device> device_;
  uint64_t rows_, c_, vocab_, lora_width_ = 1;
  DeviceBuffer x_, xhat_, prev_, mixes_, act_, lora_, lora_out_, hidden_, ids_, logits_, bases_;
  uint64_t logits_rows_ = 0, bases_cap_ = 0;
};

// How the matrices are prepared: the storage precision asked of the backend, and how their
// matmuls may compute.
struct WeightPolicy {
  rwkvrt_bk_dtype dtype = RWKVRT_BK_SAME;  // matrices: SAME keeps the file's precision
  rwkvrt_bk_matmul_precision precision = RWKVRT_BK_MATMUL_EXACT;
};

// The per-pass context a graph's layers see.
struct PassContext {
  Stream& s;
  Workspace& ws;
  uint64_t B, T, M;    // M = B*T rows
  void* const* bases;  // device array of B state blocks
};

// Weights of the v4-v6 channel mix: x += σ(W_r x_r) ⊙ W_v relu²(W_k x_k), with x_k, x_r the two
// mixes of LN2(x) and its token-shifted copy.
struct GatedFfn {
  VectorArena::Ref ln2_w, ln2_b;
  VectorArena::Ref mix;  // [2][C]: k, r coefficients in the x̂ + (s − x̂)·m form
  PreparedWeight key, receptance, value;
};

class Graph {
 public:
  virtual ~Graph() = default;

  // Builds the graph for `tensors` (validated official layout) on `device`, preparing every
  // matrix; `progress` is called after each matrix with the fraction done.
  static std::unique_ptr<Graph> create(const ModelConfig& config, const TensorSet& tensors,
                                       const std::shared_ptr<Device>& device,
                                       const WeightPolicy& weights,
                                       const std::function<bool(float)>& progress);

  // Runs all layers on ws.x() (the embedded input) in place.
  virtual void layers(const PassContext& p) const = 0;

  // Embeds ids (device [M]) into ws.x().
  void embed(const PassContext& p, const int32_t* ids) const;
  // ln_out + head on `n` rows starting at `x_rows` (device [n][C]); logits to `out` [n][V].
  void head(const PassContext& p, const float* x_rows, uint64_t n, float* out) const;

  uint64_t weight_bytes() const { return weight_bytes_; }
  uint64_t bytes_per_token() const { return bytes_per_token_; }
  // The precision the backend keeps the large matrices in (as reported for head.weight).
  rwkvrt_bk_dtype matrix_dtype() const { return matrix_dtype_; }
  // The type in which a pass of M rows hands the matmuls their inputs: the matrices' f16 or bf16
  // where the backend would round the inputs to it anyway (fast matmul precision, M at least
  // Device::half_activation_rows(), every prepared matrix kept in that one type), so that their
  // producers write them rounded (Stream's *_half calls) with the same results; else F32.
  rwkvrt_bk_dtype activation_dtype(uint64_t M) const;
  const VectorArena& vectors() const { return vectors_; }

 protected:
  Graph(const ModelConfig& config, const std::shared_ptr<Device>& device,
        const WeightPolicy& weights)
      : cfg_(config), device_(device), weights_(weights) {}

  // Loading helpers for subclasses.
  void begin_load(const TensorSet& t, const std::function<bool(float)>& progress);
  // fp32 copy of any float tensor, with its values unchanged.
  std::vector<float> f32(const std::string& name) const;
  VectorArena::Ref vec(const std::string& name) { return vectors_.add(f32(name)); }
  VectorArena::Ref vec(const std::vector<float>& v) { return vectors_.add(v); }
  // A matrix used as stored ([N][K]: torch Linear weights, y = W x).
  PreparedWeight matrix(const std::string& name);
  // A LoRA matrix stored [in][out] (used as x·W): transposed to [out][in] at load.  Kept in the
  // checkpoint's f16/bf16 when the matrices keep that type (exact either way; half the bytes,
  // and tensor-core GEMMs on GPUs), else fp32.
  PreparedWeight lora(const std::string& name);
  // The same for `in`×`out` fp32 values at `src` (a slice of a larger tensor), kept as `stored`
  // (values that are exact in it).
  PreparedWeight lora_values(const std::string& label, const float* src, uint64_t in, uint64_t out,
                             rwkvrt_bk_dtype stored);
  // The precision lora() keeps tensor `name` in.
  rwkvrt_bk_dtype lora_dtype(const std::string& name) const;
  void finish_load(Stream& s);

  // Mixing coefficient for v4/v5 "time_mix" μ: x̂ + (s − x̂)·(1 − μ) = μ·x̂ + (1 − μ)·s.
  std::vector<float> one_minus(const std::string& name) const;
  // Concatenates vectors (e.g. several mixing coefficients into one [n][C] block).
  static std::vector<float> concat(const std::vector<std::vector<float>>& parts);

  // The v4-v6 channel mix (GatedFfn).
  GatedFfn load_gated_ffn(const std::string& block, bool v6_mix);
  void gated_ffn(const PassContext& p, const GatedFfn& f, uint32_t layer,
                 uint64_t shift_offset_floats) const;

  const ModelConfig cfg_;
  std::shared_ptr<Device> device_;
  WeightPolicy weights_;
  VectorArena vectors_;

  // State addressing within one layer's block of the canonical state (bytes).
  uint64_t layer_state_bytes() const { return cfg_.state_floats_per_layer() * 4; }
  rwkvrt_bk_state_ref state_at(const PassContext& p, uint32_t layer, uint64_t float_offset) const {
    return rwkvrt_bk_state_ref{p.bases, layer * layer_state_bytes() + float_offset * 4};
  }

 private:
  void track(const PreparedWeight& w);
  void load_common();

  const TensorSet* tensors_ = nullptr;
  std::function<bool(float)> progress_;
  uint64_t matrices_total_ = 0, matrices_done_ = 0;
  uint64_t weight_bytes_ = 0, bytes_per_token_ = 0;

  DeviceBuffer emb_;  // [V][C] fp32, LN(emb; ln0) folded
  VectorArena::Ref ln_out_w_, ln_out_b_;
  PreparedWeight head_;
  rwkvrt_bk_dtype matrix_dtype_ = RWKVRT_BK_F32;
  // The one type every prepared matrix is kept in (RWKVRT_BK_SAME before the first; F32 also
  // when they differ).
  rwkvrt_bk_dtype common_dtype_ = RWKVRT_BK_SAME;
};

std::unique_ptr<Graph> make_graph_v4(const ModelConfig&, const TensorSet&,
                                     const std::shared_ptr<Device>&, const WeightPolicy&,
                                     const std::function<bool(float)>&);
std::unique_ptr<Graph> make_graph_v5(const ModelConfig&, const TensorSet&,
                                     const std::shared_ptr<Device>&, const WeightPolicy&,
                                     const std::function<bool(float)>&);
std::unique_ptr<Graph> make_graph_v6(const ModelConfig&, const TensorSet&,
                                     const std::shared_ptr<Device>&, const WeightPolicy&,
                                     const std::function<bool(float)>&);
std::unique_ptr<Graph> make_graph_v7(const ModelConfig&, const TensorSet&,
                                     const std::shared_ptr<Device>&, const WeightPolicy&,
                                     const std::function<bool(float)>&);

}  // namespace rwkvrt
