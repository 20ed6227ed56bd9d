// RWKV-5.x "Eagle" (RWKV-MATH.md §3.2): per-head matrix state [key][value] with a constant decay,
// GroupNorm and (from 5.1) a silu gate.
#include <cmath>
#include <string>
#include <vector>

#include "model/graph.h"

namespace rwkvrt {
namespace {

struct LayerV5 {
  VectorArena::Ref ln1_w, ln1_b;
  VectorArena::Ref att_mix;    // [3 or 4][C]: k, v, r (, g) as 1 − μ
  VectorArena::Ref log_decay;  // [A] = −exp(time_decay), per channel
  VectorArena::Ref bonus;      // u [A]
  VectorArena::Ref lnx_w, lnx_b;
  PreparedWeight Wk, Wv, Wr, Wg, Wo;
  GatedFfn ffn;
};

class GraphV5 final : public Graph {
 public:
  GraphV5(const ModelConfig& c, const TensorSet& t, const std::shared_ptr<Device>& device,
          const WeightPolicy& weights, const std::function<bool(float)>& progress)
      : Graph(c, device, weights), gated_(c.version != RwkvVersion::V5_0) {
    begin_load(t, progress);
    const uint64_t H = c.n_head, N = c.head_size;
    layers_.resize(c.n_layer);
    for (uint32_t i = 0; i < c.n_layer; ++i) {
      const std::string b = "blocks." + std::to_string(i) + ".", at = b + "att.";
      LayerV5& l = layers_[i];
      l.ln1_w = vec(b + "ln1.weight");
      l.ln1_b = vec(b + "ln1.bias");
      std::vector<std::vector<float>> mixes = {
          one_minus(at + "time_mix_k"), one_minus(at + "time_mix_v"), one_minus(at + "time_mix_r")};
      if (gated_) mixes.push_back(one_minus(at + "time_mix_g"));
      l.att_mix = vec(concat(mixes));
      // 5.2 has one decay per channel (H,N); 5.0/5.1 one per head, broadcast over the channels.
      const std::vector<float> td = f32(at + "time_decay");
      std::vector<float> lam(H * N);
      for (uint64_t j = 0; j < H * N; ++j)
        lam[j] = -std::exp(td.size() == H * N ? td[j] : td[j / N]);
      l.log_decay = vec(lam);
      // u is time_faaaa as stored when the file has it, else exp(time_first) per head.
      std::vector<float> u(H * N);
      if (c.time_faaaa) {
        u = f32(at + "time_faaaa");
      } else {
        const std::vector<float> tf = f32(at + "time_first");
        for (uint64_t j = 0; j < H * N; ++j) u[j] = std::exp(tf[j / N]);
      }
      l.bonus = vec(u);
      l.lnx_w = vec(at + "ln_x.weight");
      l.lnx_b = vec(at + "ln_x.bias");
      l.Wk = matrix(at + "key.weight");
      l.Wv = matrix(at + "value.weight");
      l.Wr = matrix(at + "receptance.weight");
      if (gated_) l.Wg = matrix(at + "gate.weight");
      l.Wo = matrix(at + "output.weight");
      l.ffn = load_gated_ffn(b, /*v6_mix=*/false);
    }
    Stream s(device);
    finish_load(s);
  }

  void layers(const PassContext& p) const override {
    Stream& s = p.s;
    Workspace& ws = p.ws;
    const uint64_t M = p.M, C = cfg_.n_embd, A = cfg_.n_att, H = cfg_.n_head, N = cfg_.head_size;
    const VectorArena& V = vectors_;
    float* mixed = ws.mixes();
    float* r = ws.act(0);
    float* k = ws.act(1);
    float* v = ws.act(2);
    float* g = ws.act(3);
    float* y = ws.act(4);
    for (uint32_t i = 0; i < cfg_.n_layer; ++i) {
      const LayerV5& l = layers_[i];
      s.norm_shift_mix({ws.x(), p.B, p.T, C, V(l.ln1_w), V(l.ln1_b), cfg_.layer_norm_eps,
                        state_at(p, i, 0), gated_ ? 4u : 3u, V(l.att_mix), mixed},
                       ws.xhat(), ws.prev());
      // k, v, r and (v5.1+) the SiLU gate as one group (one launch in decode on a GPU).
      using Item = Stream::MatmulItem;
      const Item proj[] = {Item{mixed, M, &l.Wk, k}, Item{mixed + M * C, M, &l.Wv, v},
                           Item{mixed + 2 * M * C, M, &l.Wr, r},
                           Item{mixed + 3 * M * C, M, &l.Wg, g, nullptr, RWKVRT_BK_SILU}};
      s.matmul_group(proj, gated_ ? 4 : 3);
      s.wkv5({p.B, p.T, H, N, r, k, v, V(l.log_decay), 0, V(l.bonus), y, state_at(p, i, C)});
      s.group_norm(y, y, M, A, H, V(l.lnx_w), V(l.lnx_b), cfg_.group_norm_eps);
      if (gated_) s.binary(RWKVRT_BK_MUL, y, g, y, M, A, false);
      s.matmul(y, M, l.Wo, ws.x(), /*accumulate=*/true);
      gated_ffn(p, l.ffn, i, C + H * N * N);
    }
  }

 private:
  bool gated_;
  std::vector<LayerV5> layers_;
};

}  // namespace

std::unique_ptr<Graph> make_graph_v5(const ModelConfig& c, const TensorSet& t,
                                     const std::shared_ptr<Device>& device,
                                     const WeightPolicy& weights,
                                     const std::function<bool(float)>& progress) {
  return std::make_unique<GraphV5>(c, t, device, weights, progress);
}

}  // namespace rwkvrt
