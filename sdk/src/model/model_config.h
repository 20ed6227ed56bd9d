// What a checkpoint is: RWKV version and every dimension, inferred from tensor names and shapes
// (docs/RWKV-MATH.md §1), with every tensor the version needs checked for presence and shape.
#pragma once

#include <cstdint>
#include <string>

#include "loaders/tensor_set.h"

namespace rwkvrt {

enum class RwkvVersion : uint32_t { V4 = 40, V5_0 = 50, V5_1 = 51, V5_2 = 52, V6 = 60, V7 = 70 };

const char* version_name(RwkvVersion v);  // "4", "5.2", "7.0", ...
inline bool is_v5(RwkvVersion v) {
  return v == RwkvVersion::V5_0 || v == RwkvVersion::V5_1 || v == RwkvVersion::V5_2;
}

struct ModelConfig {
  RwkvVersion version = RwkvVersion::V7;
  uint32_t n_layer = 0;
  uint32_t n_embd = 0;     // C
  uint32_t n_att = 0;      // A
  uint32_t n_ffn = 0;      // F
  uint32_t n_head = 0;     // H (0 for v4)
  uint32_t head_size = 0;  // N (0 for v4)
  uint32_t n_vocab = 0;
  // LoRA ranks: v6 token-shift (d_mix) and decay (d_decay); v7 w, a, v, g.
  uint32_t d_mix = 0, d_decay = 0, d_w = 0, d_a = 0, d_v = 0, d_g = 0;
  bool time_faaaa = false;      // bonus stored as time_faaaa (raw) rather than time_first
  bool has_time_state = false;  // v5/v6 initial states present
  float layer_norm_eps = 1e-5f;
  float group_norm_eps = 64e-5f;
  DType matrix_dtype = DType::F32;  // dtype of the large matrices in the file
  uint64_t n_params = 0;

  // Floats in the canonical state, and the per-layer layout (offsets in floats).
  uint64_t state_floats_per_layer() const;
  uint64_t state_floats() const { return state_floats_per_layer() * n_layer; }
};

// Infers the configuration of an official-layout tensor set and validates every tensor the
// version needs.  Throws Error(FORMAT) naming the missing tensor or the shape expected and found,
// or Error(UNSUPPORTED) for a file that is recognisably something else or whose configuration is
// beyond the runtime's limits (a head size above 4096, or a recurrent state with more values than
// the checkpoint has parameters), so that no allocation derived from it can be absurd.
ModelConfig detect_config(const TensorSet& tensors);

}  // namespace rwkvrt
