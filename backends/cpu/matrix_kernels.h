// Single-threaded matrix kernels, one table per instruction set (gemv_avx512.cpp, gemv_avx2.cpp,
// gemv_portable.cpp): the decode-path matrix-vector product and the row decoder that feeds the
// oneDNN prefill path.  matmul.cpp splits rows over threads and picks the table in use.
#pragma once

#include <cstdint>

#include "rwkvrt/backend.h"

namespace rwkvrt::cpu {

// Number of rwkvrt_bk_dtype values a weight can be stored in (F32 .. Q8_0).
constexpr int kStoredDtypes = RWKVRT_BK_Q8_0 + 1;

// A prepared weight as the kernels see it: `rows` rows of `row_bytes` bytes (64-byte aligned),
// each holding `cols` values of `dtype` (ggml blocks of 32 along the row for the block types).
// Plain data, so the instruction-set files need not see the plugin's C++ types.
struct MatrixView {
  const uint8_t* data;
  uint64_t rows;
  uint64_t cols;
  uint64_t row_bytes;
};

// The activations of one product: y[m][n] (+)= Σ_k x[m][k]·W[n][k] for m < M.
struct GemvArgs {
  const float* x;
  uint64_t M;
  uint64_t ldx;
  float* y;
  uint64_t ldy;
  bool accumulate;
};

struct MatrixKernels {
  // Rows [n0, n1) of the product for every m < M.  W is read once, row after row, as one
  // sequential stream; every row of W meets all M rows of x, which is cheap while x fits in L1.
  // Sums are fp32, over weights decoded exactly as dtype_convert.h dequantises them.
  void (*gemv[kStoredDtypes])(const MatrixView& w, const GemvArgs& a, uint64_t n0, uint64_t n1);
  // Rows [n0, n1) of W decoded to fp32, bit-identical to dtype_convert.h's convert_to_f32, into
  // rows of `ld` floats at `out`.
  void (*decode_rows[kStoredDtypes])(const MatrixView& w, uint64_t n0, uint64_t n1, float* out,
                                     uint64_t ld);
};

extern const MatrixKernels kMatrixKernelsAvx512;
extern const MatrixKernels kMatrixKernelsAvx2;
extern const MatrixKernels kMatrixKernelsPortable;

// The table of the instruction set in use (see kernel_isa_name()).
const MatrixKernels& matrix_kernels();

}  // namespace rwkvrt::cpu
