// cuBLAS, loaded lazily with dlopen so that the plugin itself loads on machines without it (the
// registry then lists the backend as unavailable with the reason).  Only the few calls the
// matmul needs are bound; every one goes through this file.
#pragma once

#include <string>

#include "gpu_portability.h"

namespace rwkvrt::cuda {

using BlasHandle = void*;  // cublasHandle_t

// Loads the library once (thread-safe).  Returns false and explains why when it is missing or
// lacks a needed symbol; later calls return the same answer.
bool blas_load(std::string* why);

// Creates a handle bound to `stream` using `workspace` (device, `workspace_bytes`) so that no
// call allocates (required while a stream is captured into a graph).  Returns a cuBLAS status.
int blas_create(BlasHandle* out, gpuStream_t stream, void* workspace, size_t workspace_bytes);
void blas_destroy(BlasHandle h);

enum class BlasType { F32, F16, BF16 };

// C[n][ldc] = alpha·(W·Xᵀ) + beta·C, in row-major terms: C gets `m` rows (one per row of X) of
// `n` outputs, W is [n][ldw] with k used columns, X is [m][ldx].  Both operands of type `t`,
// fp32 accumulation (true fp32 for F32: no TF32), C fp32.  Returns a cuBLAS status.
int blas_gemm(BlasHandle h, BlasType t, int n, int m, int k, const void* W, int ldw, const void* X,
              int ldx, float* C, int ldc, float beta);

// Human-readable text for a cuBLAS status.
std::string blas_status_string(int status);

}  // namespace rwkvrt::cuda
