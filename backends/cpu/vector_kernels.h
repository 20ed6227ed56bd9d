// Single-threaded kernels of the small ops and the WKV recurrences, one table per instruction set
// (vector_kernels_avx512.cpp, vector_kernels_avx2.cpp, vector_kernels_portable.cpp, all
// instantiating small_ops_impl.h and wkv_impl.h).  small_ops.cpp and wkv.cpp split each op into
// ranges and call the table of the instruction set in use, vector_kernels().
#pragma once

#include <cstdint>

#include "rwkvrt/backend.h"

namespace rwkvrt::cpu {

// v7 processes the tokens of a head in chunks of this many, with their decays and κ⊙a
// precomputed: each state row is then loaded and stored once per chunk instead of once per token.
constexpr uint64_t kWkvChunk = 16;
// Scratch floats per unit of head size N that wkv5/wkv7 need (wkv5 uses 2·N of them).
constexpr uint64_t kWkvScratchPerN = 2 * kWkvChunk;

struct VectorKernels {
  // Rows [m0, m1) of the op.
  void (*layer_norm)(const rwkvrt_bk_norm_args& a, uint64_t m0, uint64_t m1);
  void (*group_norm)(const rwkvrt_bk_norm_args& a, uint64_t m0, uint64_t m1);
  void (*mix)(const rwkvrt_bk_mix_args& a, uint64_t m0, uint64_t m1);
  void (*v7_key_prep)(const rwkvrt_bk_v7_key_args& a, uint64_t m0, uint64_t m1);
  void (*v7_bonus)(const rwkvrt_bk_v7_bonus_args& a, uint64_t m0, uint64_t m1);
  // n elements; y may alias the inputs.
  void (*unary)(rwkvrt_bk_unary op, const float* x, float* y, uint64_t n);
  void (*binary)(rwkvrt_bk_binary op, const float* a, const float* b, float* y, uint64_t n);
  // Sequence b, channels [c0, c1), all tokens.
  void (*wkv4)(const rwkvrt_bk_wkv4_args& a, uint64_t b, uint64_t c0, uint64_t c1);
  // Sequence b, head h, all tokens; scratch holds kWkvScratchPerN·N floats.
  void (*wkv5)(const rwkvrt_bk_wkv5_args& a, uint64_t b, uint64_t h, float* scratch);
  void (*wkv7)(const rwkvrt_bk_wkv7_args& a, uint64_t b, uint64_t h, float* scratch);
};

extern const VectorKernels kVectorKernelsAvx512;
extern const VectorKernels kVectorKernelsAvx2;
extern const VectorKernels kVectorKernelsPortable;

// The table of the instruction set in use (see kernel_isa_name()).
const VectorKernels& vector_kernels();

}  // namespace rwkvrt::cpu
