// The matmul op's dispatcher (matmul.cpp): picks the GEMV, split tensor-core, fast tensor-core or
// SGEMM path for a call and enqueues it.
#pragma once

#include "cuda_backend.h"

namespace rwkvrt::cuda {

// Enqueues y (+)= x·Wᵀ on the stream, then the epilogue y = act(y + bias) when bias is non-null
// or act is a rwkvrt_bk_unary (not with accumulate).  Returns an ABI code (message in last_error
// on failure).
int matmul(rwkvrt_bk_stream* s, const rwkvrt_bk_matmul_args& args, const float* bias = nullptr,
           int32_t act = RWKVRT_BK_NO_ACTIVATION);

}  // namespace rwkvrt::cuda
