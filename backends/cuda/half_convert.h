// Conversions between fp32 and the half types of activations, shared by the kernels that round
// activations for a tensor-core GEMM (gemm_prep.cu) and by the producers that write them already
// rounded (the *_half entries of the backend ABI), so that both give the same bits.
#pragma once

#include "gpu_portability.h"

namespace rwkvrt::cuda {

constexpr float kHalfMax = 65504.0f;

template <typename T>
__device__ __forceinline__ T to_type(float v);
template <>
__device__ __forceinline__ float to_type<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ gpu_half to_type<gpu_half>(float v) {
  return __float2half_rn(v);
}
template <>
__device__ __forceinline__ gpu_bf16 to_type<gpu_bf16>(float v) {
  return __float2bfloat16_rn(v);
}

template <typename T>
__device__ __forceinline__ float from_type(T v);
template <>
__device__ __forceinline__ float from_type<gpu_half>(gpu_half v) {
  return __half2float(v);
}
template <>
__device__ __forceinline__ float from_type<gpu_bf16>(gpu_bf16 v) {
  return __bfloat162float(v);
}

// f16 keeps NaN and saturates finite values (and infinities) at the largest half.
template <typename T>
__device__ __forceinline__ float saturate(float v) {
  return v;
}
template <>
__device__ __forceinline__ float saturate<gpu_half>(float v) {
  return isnan(v) ? v : fminf(fmaxf(v, -kHalfMax), kHalfMax);
}

// An activation as the GEMM paths round it: saturated (f16), then rounded to nearest.  Identity
// for float.
template <typename T>
__device__ __forceinline__ T round_activation(float v) {
  return to_type<T>(saturate<T>(v));
}

// Four consecutive activations stored as T (16-byte float4 or 8-byte groups of halves; `out` is
// aligned to 4 elements).
template <typename T>
__device__ __forceinline__ void store4(T* out, float4 v) {
  alignas(8) T h[4] = {round_activation<T>(v.x), round_activation<T>(v.y), round_activation<T>(v.z),
                       round_activation<T>(v.w)};
  *reinterpret_cast<uint2*>(out) = *reinterpret_cast<const uint2*>(h);
}
template <>
__device__ __forceinline__ void store4<float>(float* out, float4 v) {
  *reinterpret_cast<float4*>(out) = v;
}

}  // namespace rwkvrt::cuda
