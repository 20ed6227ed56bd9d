// RWKV-7 "Goose" (RWKV-MATH.md §3.4): token-shift mixes, the w/a/v/g LoRAs, the generalised delta
// rule WKV with state [H][value][key], GroupNorm, the r·k̃ bonus, and a squared-ReLU FFN.
#include <string>
#include <vector>

#include "model/graph.h"

namespace rwkvrt {
namespace {

struct LayerV7 {
  VectorArena::Ref ln1_w, ln1_b, ln2_w, ln2_b;
  VectorArena::Ref att_mix;  // [6][C]: r, w, k, v, a, g
  VectorArena::Ref w0, a0, v0, k_k, k_a, r_k, lnx_w, lnx_b, ffn_mix;
  PreparedWeight Wr, Wk, Wv, Wo, w1, w2, a1, a2, v1, v2, g1, g2, ffn_key, ffn_value;
};

class GraphV7 final : public Graph {
 public:
  GraphV7(const ModelConfig& c, const TensorSet& t, const std::shared_ptr<Device>& device,
          const WeightPolicy& weights, const std::function<bool(float)>& progress)
      : Graph(c, device, weights) {
    begin_load(t, progress);
    layers_.resize(c.n_layer);
    for (uint32_t i = 0; i < c.n_layer; ++i) {
      const std::string b = "blocks." + std::to_string(i) + ".", at = b + "att.", ff = b + "ffn.";
      LayerV7& l = layers_[i];
      l.ln1_w = vec(b + "ln1.weight");
      l.ln1_b = vec(b + "ln1.bias");
      l.ln2_w = vec(b + "ln2.weight");
      l.ln2_b = vec(b + "ln2.bias");
      std::vector<float> mixes;
      for (const char* m : {"x_r", "x_w", "x_k", "x_v", "x_a", "x_g"}) {
        const std::vector<float> v = f32(at + m);
        mixes.insert(mixes.end(), v.begin(), v.end());
      }
      l.att_mix = vec(mixes);
      l.w0 = vec(at + "w0");
      l.a0 = vec(at + "a0");
      l.k_k = vec(at + "k_k");
      l.k_a = vec(at + "k_a");
      l.r_k = vec(at + "r_k");
      l.lnx_w = vec(at + "ln_x.weight");
      l.lnx_b = vec(at + "ln_x.bias");
      l.ffn_mix = vec(ff + "x_k");
      l.Wr = matrix(at + "receptance.weight");
      l.Wk = matrix(at + "key.weight");
      l.Wv = matrix(at + "value.weight");
      l.Wo = matrix(at + "output.weight");
      l.w1 = lora(at + "w1");
      l.w2 = lora(at + "w2");
      l.a1 = lora(at + "a1");
      l.a2 = lora(at + "a2");
      l.g1 = lora(at + "g1");
      l.g2 = lora(at + "g2");
      if (i > 0) {  // layer 0 defines v_first; its value-residual LoRA is never used
        l.v0 = vec(at + "v0");
        l.v1 = lora(at + "v1");
        l.v2 = lora(at + "v2");
      }
      l.ffn_key = matrix(ff + "key.weight");
      l.ffn_value = matrix(ff + "value.weight");
    }
    Stream s(device);
    finish_load(s);
  }

  void layers(const PassContext& p) const override {
    Stream& s = p.s;
    Workspace& ws = p.ws;
    const uint64_t M = p.M, C = cfg_.n_embd, H = cfg_.n_head, N = cfg_.head_size;
    const float eps = cfg_.layer_norm_eps;
    float* x = ws.x();
    float* xhat = ws.xhat();
    float* prev = ws.prev();
    float* mixed = ws.mixes();
    float* r = ws.act(0);
    float* k = ws.act(1);
    float* v = ws.act(2);
    float* w = ws.act(3);
    float* a = ws.act(4);
    float* g = ws.act(5);
    float* kappa = ws.act(6);
    float* ktilde = ws.act(7);
    float* y = ws.act(8);
    float* v_first = ws.act(9);
    float* t1 = ws.act(10);
    float* v_mixed = ws.act(11);
    const VectorArena& V = vectors_;
    // Where the backend would round the matmuls' inputs to the matrices' f16/bf16 anyway, the
    // mixes and the time mix's output are written rounded (same results, no rounding passes):
    // the mixes in their own slots, the output into t1's (free once v7_wkv has read the gate).
    const rwkvrt_bk_dtype act_type = activation_dtype(M);
    const bool half = act_type != RWKVRT_BK_F32;
    const uint64_t act_bytes = half ? 2 : 4;
    auto mix_at = [&](int i) -> const void* {
      return reinterpret_cast<const char*>(mixed) + uint64_t(i) * M * C * act_bytes;
    };
    void* y_half = t1;

    for (uint32_t i = 0; i < cfg_.n_layer; ++i) {
      const LayerV7& l = layers_[i];
      // --- time mix ---
      const rwkvrt_bk_norm_shift_mix_args att_mix{
          x, p.B, p.T, C, V(l.ln1_w), V(l.ln1_b), eps, state_at(p, i, 0), 6, V(l.att_mix), mixed};
      if (half)
        s.norm_shift_mix_half(att_mix, act_type);
      else
        s.norm_shift_mix(att_mix, xhat, prev);
      const void *xr = mix_at(0), *xw = mix_at(1), *xk = mix_at(2), *xv = mix_at(3),
                 *xa = mix_at(4), *xg = mix_at(5);
      // The independent matmuls go in two groups (in decode on a GPU, one launch each when the
      // LoRAs are stored like the matrices), with their bias and activation as epilogues:
      //   r, k, v and the LoRAs' down projections;
      //   log w = −0.606531·σ(w0 + tanh(x_w·w1)·w2),  a = σ(a0 + (x_a·a1)·a2),
      //   g = σ(x_g·g1)·g2,  and from layer 1 the value-residual gate σ(v0 + (x_v·v1)·v2).
      float *hw = ws.lora(0), *ha = ws.lora(1), *hg = ws.lora(2), *hv = ws.lora(3);
      using Item = Stream::MatmulItem;
      // Layer 0 has no value-residual LoRA: its groups stop before the v1/v2 items.
      const size_t n_lora = i == 0 ? 3 : 4;
      const Item first[] = {
          Item{xr, M, &l.Wr, r},  Item{xk, M, &l.Wk, k},
          Item{xv, M, &l.Wv, v},  Item{xw, M, &l.w1, hw, nullptr, RWKVRT_BK_TANH},
          Item{xa, M, &l.a1, ha}, Item{xg, M, &l.g1, hg, nullptr, RWKVRT_BK_SIGMOID},
          Item{xv, M, &l.v1, hv}};
      if (half)
        s.matmul_group_half(first, 3 + n_lora, act_type);
      else
        s.matmul_group(first, 3 + n_lora);
      const Item up[] = {Item{hw, M, &l.w2, w, V(l.w0), RWKVRT_BK_V7_LOG_DECAY},
                         Item{ha, M, &l.a2, a, V(l.a0), RWKVRT_BK_SIGMOID}, Item{hg, M, &l.g2, g},
                         Item{hv, M, &l.v2, t1, V(l.v0), RWKVRT_BK_SIGMOID}};
      s.matmul_group(up, n_lora);
      // Value residual: layer 0 defines v_first; later layers move v towards it,
      // v' = v + (v_first − v)·t1, inside the WKV op (with the key preparation).
      if (i == 0) s.copy(v_first, v, M * C * sizeof(float));
      const bool residual = i > 0;
      const float* v_used = residual ? v_mixed : v;
      s.v7_wkv(
          {p.B, p.T, H, N, r, w, k, v, a, V(l.k_k), V(l.k_a), residual ? v_first : nullptr,
           residual ? t1 : nullptr, ktilde, residual ? v_mixed : nullptr, y, state_at(p, i, C)},
          kappa);
      const rwkvrt_bk_v7_output_args out{
          M, H, N, y, V(l.lnx_w), V(l.lnx_b), cfg_.group_norm_eps, r, ktilde, v_used, V(l.r_k), g};
      if (half) {
        s.v7_output_half(out, act_type, y_half);
        const Item output{y_half, M, &l.Wo, x, nullptr, RWKVRT_BK_NO_ACTIVATION, 0, true};
        s.matmul_group_half(&output, 1, act_type);
      } else {
        s.v7_output(out);
        s.matmul(y, M, l.Wo, x, /*accumulate=*/true);
      }

      // --- channel mix ---
      const rwkvrt_bk_norm_shift_mix_args ffn_mix{
          x, p.B,          p.T,  C, V(l.ln2_w), V(l.ln2_b), eps, state_at(p, i, C + H * N * N),
          1, V(l.ffn_mix), mixed};
      if (half) {
        s.norm_shift_mix_half(ffn_mix, act_type);
        s.channel_mix_half(mixed, M, l.ffn_key, l.ffn_value, ws.hidden(), x, /*accumulate=*/true,
                           act_type);
      } else {
        s.norm_shift_mix(ffn_mix, xhat, prev);
        s.channel_mix(mixed, M, l.ffn_key, l.ffn_value, ws.hidden(), x, /*accumulate=*/true);
      }
    }
  }

 private:
  std::vector<LayerV7> layers_;
};

}  // namespace

std::unique_ptr<Graph> make_graph_v7(const ModelConfig& c, const TensorSet& t,
                                     const std::shared_ptr<Device>& device,
                                     const WeightPolicy& weights,
                                     const std::function<bool(float)>& progress) {
  return std::make_unique<GraphV7>(c, t, device, weights, progress);
}

}  // namespace rwkvrt
