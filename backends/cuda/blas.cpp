// Lazy binding of cuBLAS.  The plugin links no cuBLAS library: probe() and context_create() call
// blas_load(), which dlopens libcublas.so.<major> of the toolkit the plugin was built with and
// resolves the handful of entry points below.
#include "blas.h"

#include <cublas_api.h>
#include <dlfcn.h>

#include <mutex>

namespace rwkvrt::cuda {
namespace {

using CreateFn = cublasStatus_t (*)(cublasHandle_t*);
using DestroyFn = cublasStatus_t (*)(cublasHandle_t);
using SetStreamFn = cublasStatus_t (*)(cublasHandle_t, cudaStream_t);
using SetWorkspaceFn = cublasStatus_t (*)(cublasHandle_t, void*, size_t);
using SetMathModeFn = cublasStatus_t (*)(cublasHandle_t, cublasMath_t);
using GemmExFn = cublasStatus_t (*)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int,
                                    int, const void*, const void*, cudaDataType, int, const void*,
                                    cudaDataType, int, const void*, void*, cudaDataType, int,
                                    cublasComputeType_t, cublasGemmAlgo_t);
using StatusStringFn = const char* (*)(cublasStatus_t);

struct Api {
  CreateFn create = nullptr;
  DestroyFn destroy = nullptr;
  SetStreamFn set_stream = nullptr;
  SetWorkspaceFn set_workspace = nullptr;
  SetMathModeFn set_math_mode = nullptr;
  GemmExFn gemm_ex = nullptr;
  StatusStringFn status_string = nullptr;
};

Api g_api;
bool g_loaded = false;
std::string g_why;

template <typename Fn>
bool bind(void* lib, const char* name, Fn* out, std::string* missing) {
  *out = reinterpret_cast<Fn>(::dlsym(lib, name));
  if (!*out) *missing = name;
  return *out != nullptr;
}

void load_once() {
  const std::string soname = "libcublas.so." + std::to_string(CUBLAS_VER_MAJOR);
  void* lib = ::dlopen(soname.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char* err = ::dlerror();
    g_why = "cuBLAS not found: cannot load " + soname + " (" + (err ? err : "unknown error") +
            "); install the CUDA " + std::to_string(CUBLAS_VER_MAJOR) +
            " cuBLAS library or add its directory to LD_LIBRARY_PATH";
    return;
  }
  std::string missing;
  Api a;
  if (!bind(lib, "cublasCreate_v2", &a.create, &missing) ||
      !bind(lib, "cublasDestroy_v2", &a.destroy, &missing) ||
      !bind(lib, "cublasSetStream_v2", &a.set_stream, &missing) ||
      !bind(lib, "cublasSetWorkspace_v2", &a.set_workspace, &missing) ||
      !bind(lib, "cublasSetMathMode", &a.set_math_mode, &missing) ||
      !bind(lib, "cublasGemmEx", &a.gemm_ex, &missing) ||
      !bind(lib, "cublasGetStatusString", &a.status_string, &missing)) {
    g_why = soname + " lacks the entry point " + missing;
    return;  // the library stays loaded; harmless
  }
  g_api = a;
  g_loaded = true;
}

cudaDataType data_type(BlasType t) {
  switch (t) {
    case BlasType::F16:
      return CUDA_R_16F;
    case BlasType::BF16:
      return CUDA_R_16BF;
    case BlasType::F32:
      break;
  }
  return CUDA_R_32F;
}

}  // namespace

bool blas_load(std::string* why) {
  static std::once_flag once;
  std::call_once(once, load_once);
  if (!g_loaded && why) *why = g_why;
  return g_loaded;
}

int blas_create(BlasHandle* out, gpuStream_t stream, void* workspace, size_t workspace_bytes) {
  if (!blas_load(nullptr)) return CUBLAS_STATUS_NOT_INITIALIZED;
  cublasHandle_t h = nullptr;
  cublasStatus_t st = g_api.create(&h);
  if (st != CUBLAS_STATUS_SUCCESS) return st;
  st = g_api.set_stream(h, stream);
  if (st == CUBLAS_STATUS_SUCCESS) st = g_api.set_workspace(h, workspace, workspace_bytes);
  // The default math mode never uses TF32 for fp32 operands; tensor cores only serve the
  // f16/bf16 products, with fp32 accumulation (CUBLAS_COMPUTE_32F below).
  if (st == CUBLAS_STATUS_SUCCESS) st = g_api.set_math_mode(h, CUBLAS_DEFAULT_MATH);
  if (st != CUBLAS_STATUS_SUCCESS) {
    g_api.destroy(h);
    return st;
  }
  *out = h;
  return CUBLAS_STATUS_SUCCESS;
}

void blas_destroy(BlasHandle h) {
  if (h && g_loaded) g_api.destroy(static_cast<cublasHandle_t>(h));
}

int blas_gemm(BlasHandle h, BlasType t, int n, int m, int k, const void* W, int ldw, const void* X,
              int ldx, float* C, int ldc, float beta) {
  // Column-major view: C (n × m, ldc) = op(A) · B with A = W stored k × n (ldw), transposed,
  // and B = Xᵀ stored k × m (ldx).
  const float alpha = 1.0f;
  const cudaDataType dt = data_type(t);
  return g_api.gemm_ex(static_cast<cublasHandle_t>(h), CUBLAS_OP_T, CUBLAS_OP_N, n, m, k, &alpha, W,
                       dt, ldw, X, dt, ldx, &beta, C, CUDA_R_32F, ldc, CUBLAS_COMPUTE_32F,
                       CUBLAS_GEMM_DEFAULT);
}

std::string blas_status_string(int status) {
  const char* s =
      g_loaded ? g_api.status_string(static_cast<cublasStatus_t>(status)) : "cuBLAS not loaded";
  return std::string(s ? s : "unknown cuBLAS status") + " (" + std::to_string(status) + ")";
}

}  // namespace rwkvrt::cuda
