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

// A group of matmuls that are not all GEMVs (validated by the caller): when every item takes the
// rounded-activation GEMM on one storage type, the roundings run as one launch (an input shared
// by several items rounded once) and the epilogues as one; otherwise one matmul() per item.
int matmul_group_gemm(rwkvrt_bk_stream* s, const rwkvrt_bk_matmul_item* items, uint32_t n);

// The channel mix (validated by the caller): y (+)= W_value · relu(W_key · x)².  Where the value
// matmul prepares its input in a pass of its own (rounded activations; the split as two GEMMs)
// the ReLU² is applied in that pass; elsewhere the two matmuls with the key's epilogue.
int channel_mix(rwkvrt_bk_stream* s, const rwkvrt_bk_channel_mix_args& args);

// matmul_group_half (validated by the caller but for the weights' storage): every item's x holds
// `half` (F16/BF16) values and its weight must be stored so; one GEMM per item on them, the
// epilogues in one launch.
int matmul_group_half(rwkvrt_bk_stream* s, const rwkvrt_bk_matmul_item* items, uint32_t n,
                      WeightStorage half);

// The channel mix on `half` activations x (channel_mix_half): the key GEMM as matmul_group_half,
// the rest as channel_mix.
int channel_mix_half(rwkvrt_bk_stream* s, const rwkvrt_bk_channel_mix_args& args,
                     WeightStorage half);

}  // namespace rwkvrt::cuda
