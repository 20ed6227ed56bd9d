// RWKV-4 (RWKV-MATH.md §3.1): per-channel WKV in log space with state aa, bb, pp per channel.
#include <cmath>
#include <string>
#include <vector>

#include "model/graph.h"

namespace rwkvrt {
namespace {

struct LayerV4 {
  VectorArena::Ref ln1_w, ln1_b;
  VectorArena::Ref att_mix;  // [3][C]: k, v, r as 1 − μ
  VectorArena::Ref decay;    // w = −exp(time_decay)
  VectorArena::Ref first;    // u = time_first (a log-space bonus, used raw)
  PreparedWeight Wk, Wv, Wr, Wo;
  GatedFfn ffn;
};

class GraphV4 final : public Graph {
 public:
  GraphV4(const ModelConfig& c, const TensorSet& t, const std::shared_ptr<Device>& device,
          const WeightPolicy& weights, const std::function<bool(float)>& progress)
      : Graph(c, device, weights) {
    begin_load(t, progress);
    layers_.resize(c.n_layer);
    for (uint32_t i = 0; i < c.n_layer; ++i) {
      const std::string b = "blocks." + std::to_string(i) + ".", at = b + "att.";
      LayerV4& l = layers_[i];
      l.ln1_w = vec(b + "ln1.weight");
      l.ln1_b = vec(b + "ln1.bias");
      l.att_mix = vec(concat({one_minus(at + "time_mix_k"), one_minus(at + "time_mix_v"),
                              one_minus(at + "time_mix_r")}));
      std::vector<float> w = f32(at + "time_decay");
      for (float& x : w) x = -std::exp(x);
      l.decay = vec(w);
      l.first = vec(at + "time_first");
      l.Wk = matrix(at + "key.weight");
      l.Wv = matrix(at + "value.weight");
      l.Wr = matrix(at + "receptance.weight");
      l.Wo = matrix(at + "output.weight");
      l.ffn = load_gated_ffn(b, /*v6_mix=*/false);
    }
    Stream s(device);
    finish_load(s);
  }

  void layers(const PassContext& p) const override {
    Stream& s = p.s;
    Workspace& ws = p.ws;
    const uint64_t M = p.M, C = cfg_.n_embd, A = cfg_.n_att;
    const VectorArena& V = vectors_;
    float* mixed = ws.mixes();
    float* r = ws.act(0);
    float* k = ws.act(1);
    float* v = ws.act(2);
    float* y = ws.act(3);
    for (uint32_t i = 0; i < cfg_.n_layer; ++i) {
      const LayerV4& l = layers_[i];
      s.norm_shift_mix({ws.x(), p.B, p.T, C, V(l.ln1_w), V(l.ln1_b), cfg_.layer_norm_eps,
                        state_at(p, i, 0), 3, V(l.att_mix), mixed},
                       ws.xhat(), ws.prev());
      using Item = Stream::MatmulItem;
      s.matmul_group({Item{mixed, M, &l.Wk, k}, Item{mixed + M * C, M, &l.Wv, v},
                      Item{mixed + 2 * M * C, M, &l.Wr, r, nullptr, RWKVRT_BK_SIGMOID}});
      // State block: s_a (C), aa (A), bb (A), pp (A), s_f (C).
      s.wkv4({p.B, p.T, A, k, v, V(l.decay), V(l.first), y, state_at(p, i, C)});
      s.binary(RWKVRT_BK_MUL, y, r, y, M, A, false);
      s.matmul(y, M, l.Wo, ws.x(), /*accumulate=*/true);
      gated_ffn(p, l.ffn, i, C + 3 * A);
    }
  }

 private:
  std::vector<LayerV4> layers_;
};

}  // namespace

std::unique_ptr<Graph> make_graph_v4(const ModelConfig& c, const TensorSet& t,
                                     const std::shared_ptr<Device>& device,
                                     const WeightPolicy& weights,
                                     const std::function<bool(float)>& progress) {
  return std::make_unique<GraphV4>(c, t, device, weights, progress);
}

}  // namespace rwkvrt
