// The prefill-path matmul: y (+)= x·Wᵀ through oneDNN's matmul primitive, for M large enough
// that the product is compute-bound (matmul.cpp decides).
#pragma once

#include "matrix_kernels.h"

namespace rwkvrt::cpu {

// Computes the product for weight `w` stored as `dtype`, on up to n_threads OpenMP threads.
// fp32 weights are read in place as oneDNN's transposed B; other dtypes are decoded, a panel of
// rows at a time, into fp32 scratch (exactly, by matrix_kernels().decode_rows), so every product
// is fp32 × fp32 with fp32 accumulation.  Returns RWKVRT_BK_OK; RWKVRT_BK_UNSUPPORTED, with y
// untouched, when oneDNN cannot set the product up (the caller then uses the GEMV kernels); or
// RWKVRT_BK_ERROR, with the plugin error message set, when it fails while running.
int gemm_onednn(const MatrixView& w, rwkvrt_bk_dtype dtype, const GemvArgs& a, int n_threads);

}  // namespace rwkvrt::cpu
