// matmul: the GEMV kernels for few rows of x (decode: memory-bound, W streamed once), oneDNN for
// many (prefill: compute-bound).  The crossover per stored dtype was measured with
// bench/cpu_kernel_bench.cpp (see README.md).
#include "gemm_onednn.h"
#include "kernels.h"
#include "matrix_kernels.h"
#include "parallel.h"

namespace rwkvrt::cpu {
namespace {

// Largest M that still runs on the GEMV kernels.  The GEMV reads W once at memory speed and keeps
// x in L1, so it wins while M·K floats of x fit there; oneDNN repacks W on every call and needs
// more rows to amortise that, all the more for dtypes it only sees through a decoded fp32 panel.
// Measured with two threads at K = N = 2048: fp32 GEMV 0.21 ms vs oneDNN 0.41 ms at M = 4, but
// 0.58 vs 0.48 ms at M = 8; bf16 0.52 vs 0.67 ms at M = 8 and 0.85 vs 0.78 ms at M = 12.
uint64_t gemv_max_rows(rwkvrt_bk_dtype dtype) {
  return dtype == RWKVRT_BK_F32 ? 4 : 8;
}

// Row ranges of W per thread start on whole cache lines of y.
constexpr uint64_t kRowGrain = 16;

}  // namespace

int matmul(const rwkvrt_bk_matmul_args& a, int n_threads) {
  const rwkvrt_bk_weight& w = *a.w;
  if (a.M == 0) return RWKVRT_BK_OK;
  const MatrixView view{static_cast<const uint8_t*>(w.data), w.rows, w.cols, w.row_bytes};
  const GemvArgs args{
      a.x, a.M, a.ldx ? a.ldx : w.cols, a.y, a.ldy ? a.ldy : w.rows, a.accumulate != 0};
  if (a.M > gemv_max_rows(w.dtype)) {
    const int rc = gemm_onednn(view, w.dtype, args, n_threads);
    if (rc != RWKVRT_BK_UNSUPPORTED) return rc;
  }
  const auto gemv = matrix_kernels().gemv[w.dtype];
  parallel_for(
      w.rows, w.rows * w.row_bytes / sizeof(float), n_threads,
      [&](uint64_t n0, uint64_t n1) { gemv(view, args, n0, n1); }, kRowGrain);
  return RWKVRT_BK_OK;
}

}  // namespace rwkvrt::cpu
