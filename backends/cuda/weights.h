// Weight preparation (weights.cpp): the stored precision and device layout of a matrix.
#pragma once

#include "cuda_backend.h"

namespace rwkvrt::cuda {

// Converts and uploads the matrix described by `desc`; on success *out owns device memory that
// weight_free releases.  Returns an ABI code.
int weight_prepare(rwkvrt_bk_context* ctx, const rwkvrt_bk_weight_desc& desc,
                   rwkvrt_bk_weight** out);
void weight_free(rwkvrt_bk_weight* w);

}  // namespace rwkvrt::cuda
