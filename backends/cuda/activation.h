// The unary activations as device functions, shared by the element-wise kernels and the matmul
// epilogues so that a fused epilogue computes exactly what the separate op would.  Full-precision
// expf/tanhf (within 2 ulp) and IEEE division.
#pragma once

#include <cstdint>

#include "gpu_portability.h"
#include "rwkvrt/backend.h"

namespace rwkvrt::cuda {

__device__ __forceinline__ float sigmoid(float x) {
  return 1.0f / (1.0f + expf(-x));
}

__device__ __forceinline__ float apply_unary(rwkvrt_bk_unary op, float x) {
  switch (op) {
    case RWKVRT_BK_SIGMOID:
      return sigmoid(x);
    case RWKVRT_BK_TANH:
      return tanhf(x);
    case RWKVRT_BK_SILU:
      return x * sigmoid(x);
    case RWKVRT_BK_RELU_SQUARE: {
      const float r = x > 0.0f ? x : 0.0f;
      return r * r;
    }
    case RWKVRT_BK_NEG_EXP:
      return -expf(x);
    case RWKVRT_BK_V7_LOG_DECAY:
      return -0.606531f * sigmoid(x);
  }
  return x;
}

// `act` is a rwkvrt_bk_unary or RWKVRT_BK_NO_ACTIVATION (identity).
__device__ __forceinline__ float apply_activation(int32_t act, float x) {
  return act < 0 ? x : apply_unary(static_cast<rwkvrt_bk_unary>(act), x);
}

}  // namespace rwkvrt::cuda
