// Numeric formats shared by the core and every backend: IEEE half and bfloat16 conversion, and the
// ggml block quantisation formats of rwkv.cpp files (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0), which are
// specified here by their dequantisation.
#pragma once

#include <cstdint>
#include <cstring>

#include "rwkvrt/backend.h"

namespace rwkvrt {

inline float bf16_to_f32(uint16_t h) {
  const uint32_t bits = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Round to nearest even; NaN stays NaN.
inline uint16_t f32_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return uint16_t((bits >> 16) | 0x40);
  const uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
  return uint16_t((bits + rounding) >> 16);
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);  // round to nearest even, overflow to infinity

// Values per block (32) and bytes per block for a block-quantised type; 0 for other types.
uint32_t quant_block_bytes(rwkvrt_bk_dtype t);
constexpr uint32_t kQuantBlock = 32;

// Converts `n` values of type `t` at `src` to fp32 (n a multiple of 32 for block types).
// Returns false for an unknown type.
bool convert_to_f32(rwkvrt_bk_dtype t, const void* src, float* dst, uint64_t n);

// Quantises `n` fp32 values (n a multiple of 32) into blocks of type `t` with the ggml rounding
// (used by tests and by the converter).  Returns false for a non-block type.
bool quantize_from_f32(rwkvrt_bk_dtype t, const float* src, void* dst, uint64_t n);

}  // namespace rwkvrt
