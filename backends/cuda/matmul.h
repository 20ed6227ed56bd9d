// The matmul op's dispatcher (matmul.cpp): picks the GEMV, split tensor-core, fast tensor-core or
// SGEMM path for a call and enqueues it.
#pragma once

#include "cuda_backend.h"

namespace rwkvrt::cuda {

// Enqueues y (+)= x·Wᵀ on the stream.  Returns an ABI code (message in last_error on failure).
int matmul(rwkvrt_bk_stream* s, const rwkvrt_bk_matmul_args& args);

}  // namespace rwkvrt::cuda
