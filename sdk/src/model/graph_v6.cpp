// RWKV-6 "Finch" (RWKV-MATH.md §3.3): data-dependent token shift (a 5-way LoRA) and a per-token
// decay LoRA, with the v5 matrix state [key][value], GroupNorm and silu gate.
#include <string>
#include <vector>

#include "model/graph.h"

namespace rwkvrt {
namespace {

struct LayerV6 {
  VectorArena::Ref ln1_w, ln1_b;
  VectorArena::Ref maa_x;       // [C]
  VectorArena::Ref maa;         // [5][C]: w, k, v, r, g
  VectorArena::Ref time_decay;  // [A], raw
  VectorArena::Ref bonus;       // time_faaaa [A]
  VectorArena::Ref lnx_w, lnx_b;
  PreparedWeight maa_w1;     // [5·D][C]
  PreparedWeight maa_w2[5];  // each [C][D]
  PreparedWeight decay_w1, decay_w2;
  PreparedWeight Wk, Wv, Wr, Wg, Wo;
  GatedFfn ffn;
};

class GraphV6 final : public Graph {
 public:
  GraphV6(const ModelConfig& c, const TensorSet& t, const std::shared_ptr<Device>& device,
          const WeightPolicy& weights, const std::function<bool(float)>& progress)
      : Graph(c, device, weights) {
    begin_load(t, progress);
    const uint64_t C = c.n_embd, D = c.d_mix;
    layers_.resize(c.n_layer);
    for (uint32_t i = 0; i < c.n_layer; ++i) {
      const std::string b = "blocks." + std::to_string(i) + ".", at = b + "att.";
      LayerV6& l = layers_[i];
      l.ln1_w = vec(b + "ln1.weight");
      l.ln1_b = vec(b + "ln1.bias");
      l.maa_x = vec(at + "time_maa_x");
      l.maa = vec(concat({f32(at + "time_maa_w"), f32(at + "time_maa_k"), f32(at + "time_maa_v"),
                          f32(at + "time_maa_r"), f32(at + "time_maa_g")}));
      l.time_decay = vec(at + "time_decay");
      l.bonus = vec(at + "time_faaaa");
      l.lnx_w = vec(at + "ln_x.weight");
      l.lnx_b = vec(at + "ln_x.bias");
      l.maa_w1 = lora(at + "time_maa_w1");
      const std::vector<float> w2 = f32(at + "time_maa_w2");  // (5, D, C)
      for (uint64_t f = 0; f < 5; ++f)
        l.maa_w2[f] = lora_values(at + "time_maa_w2[" + std::to_string(f) + "]",
                                  w2.data() + f * D * C, D, C, lora_dtype(at + "time_maa_w2"));
      l.decay_w1 = lora(at + "time_decay_w1");
      l.decay_w2 = lora(at + "time_decay_w2");
      l.Wk = matrix(at + "key.weight");
      l.Wv = matrix(at + "value.weight");
      l.Wr = matrix(at + "receptance.weight");
      l.Wg = matrix(at + "gate.weight");
      l.Wo = matrix(at + "output.weight");
      l.ffn = load_gated_ffn(b, /*v6_mix=*/true);
    }
    Stream s(device);
    finish_load(s);
  }

  void layers(const PassContext& p) const override {
    Stream& s = p.s;
    Workspace& ws = p.ws;
    const uint64_t M = p.M, C = cfg_.n_embd, A = cfg_.n_att, H = cfg_.n_head, N = cfg_.head_size;
    const uint64_t D = cfg_.d_mix;
    const VectorArena& V = vectors_;
    float* mixed = ws.mixes();
    float* xi = ws.act(5);
    float* r = ws.act(0);
    float* k = ws.act(1);
    float* v = ws.act(2);
    float* g = ws.act(3);
    float* y = ws.act(4);
    float* lam = ws.act(6);
    for (uint32_t i = 0; i < cfg_.n_layer; ++i) {
      const LayerV6& l = layers_[i];
      s.layer_norm(ws.x(), ws.xhat(), M, C, V(l.ln1_w), V(l.ln1_b), cfg_.layer_norm_eps);
      s.token_shift({ws.xhat(), ws.prev(), p.B, p.T, C, state_at(p, i, 0)});
      // ξ = x̂ + Δ⊙maa_x; ρ = tanh(ξ·W1), five slices of D; m_f = ρ_f·W2_f.
      s.mix({ws.xhat(), ws.prev(), M, C, 1, V(l.maa_x), nullptr, xi});
      s.matmul_act(xi, M, l.maa_w1, ws.lora(), nullptr, RWKVRT_BK_TANH);
      Stream::MatmulItem shift[5];  // one group: one launch in decode on a GPU
      for (uint64_t f = 0; f < 5; ++f) {
        shift[f] = {ws.lora() + f * D, M, &l.maa_w2[f], ws.lora_out() + f * M * C};
        shift[f].ldx = 5 * D;
      }
      s.matmul_group(shift, 5);
      // x_f = x̂ + Δ⊙(maa_f + m_f), in the order w, k, v, r, g.
      s.mix({ws.xhat(), ws.prev(), M, C, 5, V(l.maa), ws.lora_out(), mixed});
      const float *xw = mixed, *xk = mixed + M * C, *xv = mixed + 2 * M * C,
                  *xr = mixed + 3 * M * C, *xg = mixed + 4 * M * C;
      // r, k, v, the SiLU gate and the decay LoRA's down projection as one group (one launch in
      // decode on a GPU when the LoRA is stored like the matrices); then
      // log w = −exp(time_decay + tanh(x_w·Dw1)·Dw2), per token, as one matmul with epilogue.
      using Item = Stream::MatmulItem;
      s.matmul_group({Item{xr, M, &l.Wr, r}, Item{xk, M, &l.Wk, k}, Item{xv, M, &l.Wv, v},
                      Item{xg, M, &l.Wg, g, nullptr, RWKVRT_BK_SILU},
                      Item{xw, M, &l.decay_w1, ws.lora(), nullptr, RWKVRT_BK_TANH}});
      s.matmul_act(ws.lora(), M, l.decay_w2, lam, V(l.time_decay), RWKVRT_BK_NEG_EXP);
      s.wkv5({p.B, p.T, H, N, r, k, v, lam, 1, V(l.bonus), y, state_at(p, i, C)});
      s.group_norm(y, y, M, A, H, V(l.lnx_w), V(l.lnx_b), cfg_.group_norm_eps);
      s.binary(RWKVRT_BK_MUL, y, g, y, M, A, false);
      s.matmul(y, M, l.Wo, ws.x(), /*accumulate=*/true);
      gated_ffn(p, l.ffn, i, C + H * N * N);
    }
  }

 private:
  std::vector<LayerV6> layers_;
};

}  // namespace

std::unique_ptr<Graph> make_graph_v6(const ModelConfig& c, const TensorSet& t,
                                     const std::shared_ptr<Device>& device,
                                     const WeightPolicy& weights,
                                     const std::function<bool(float)>& progress) {
  return std::make_unique<GraphV6>(c, t, device, weights, progress);
}

}  // namespace rwkvrt
