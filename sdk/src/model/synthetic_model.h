// Official-layout tensor sets with random weights, for benchmarks and tests: any shape, any
// precision, no download.  Values are scaled like a trained model's (unit-scale activations), so
// the arithmetic is representative and never overflows.
#pragma once

#include <cstdint>

#include "loaders/tensor_set.h"

namespace rwkvrt {

struct SyntheticShape {
  uint32_t n_layer = 12;
  uint32_t n_embd = 768;
  uint32_t n_vocab = 65536;
  uint32_t head_size = 64;
  DType matrix_dtype = DType::F32;  // F32, BF16 or F16 for the large matrices
  uint64_t seed = 1;
};

// An RWKV-7 checkpoint with the LoRA ranks the official training code picks for this width.
TensorSet make_synthetic_v7(const SyntheticShape& shape);

}  // namespace rwkvrt
