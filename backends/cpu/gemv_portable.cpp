// Portable matrix kernels (plain C++, baseline instruction set) for CPUs without AVX2: rows are
// decoded into fp32 in short chunks with the reference conversion, then multiplied with
// eight-way partial sums the compiler can vectorise.
#include <cstdint>

#include "dtype_convert.h"
#include "matrix_kernels.h"

namespace rwkvrt::cpu {
namespace {

// Values per decoded chunk: a multiple of the 32-value block, small enough for the stack.
constexpr uint64_t kChunk = 256;
// Rows of x per pass over a chunk.
constexpr uint64_t kRowsOfX = 8;

uint64_t bytes_for(rwkvrt_bk_dtype dtype, uint64_t values) {
  switch (dtype) {
    case RWKVRT_BK_F32:
      return values * 4;
    case RWKVRT_BK_F16:
    case RWKVRT_BK_BF16:
      return values * 2;
    default:
      return values / kQuantBlock * quant_block_bytes(dtype);
  }
}

float dot(const float* a, const float* b, uint64_t n) {
  float part[8] = {};
  uint64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) part[j] += a[i + j] * b[i + j];
  for (; i < n; ++i) part[0] += a[i] * b[i];
  return ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
}

template <rwkvrt_bk_dtype D>
void gemv(const MatrixView& w, const GemvArgs& a, uint64_t n0, uint64_t n1) {
  const uint64_t K = w.cols;
  float values[kChunk];
  for (uint64_t n = n0; n < n1; ++n) {
    const uint8_t* row = w.data + n * w.row_bytes;
    for (uint64_t m0 = 0; m0 < a.M; m0 += kRowsOfX) {
      const uint64_t mb = a.M - m0 < kRowsOfX ? a.M - m0 : kRowsOfX;
      float sum[kRowsOfX] = {};
      for (uint64_t k = 0; k < K; k += kChunk) {
        const uint64_t len = K - k < kChunk ? K - k : kChunk;
        convert_to_f32(D, row + bytes_for(D, k), values, len);
        for (uint64_t m = 0; m < mb; ++m) sum[m] += dot(values, a.x + (m0 + m) * a.ldx + k, len);
      }
      for (uint64_t m = 0; m < mb; ++m) {
        float* out = a.y + (m0 + m) * a.ldy + n;
        *out = a.accumulate ? *out + sum[m] : sum[m];
      }
    }
  }
}

template <rwkvrt_bk_dtype D>
void decode_rows(const MatrixView& w, uint64_t n0, uint64_t n1, float* out, uint64_t ld) {
  for (uint64_t n = n0; n < n1; ++n)
    convert_to_f32(D, w.data + n * w.row_bytes, out + (n - n0) * ld, w.cols);
}

}  // namespace

// Indexed by rwkvrt_bk_dtype: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0.
const MatrixKernels kMatrixKernelsPortable = {
    {&gemv<RWKVRT_BK_F32>, &gemv<RWKVRT_BK_F16>, &gemv<RWKVRT_BK_BF16>, &gemv<RWKVRT_BK_Q4_0>,
     &gemv<RWKVRT_BK_Q4_1>, &gemv<RWKVRT_BK_Q5_0>, &gemv<RWKVRT_BK_Q5_1>, &gemv<RWKVRT_BK_Q8_0>},
    {&decode_rows<RWKVRT_BK_F32>, &decode_rows<RWKVRT_BK_F16>, &decode_rows<RWKVRT_BK_BF16>,
     &decode_rows<RWKVRT_BK_Q4_0>, &decode_rows<RWKVRT_BK_Q4_1>, &decode_rows<RWKVRT_BK_Q5_0>,
     &decode_rows<RWKVRT_BK_Q5_1>, &decode_rows<RWKVRT_BK_Q8_0>},
};

}  // namespace rwkvrt::cpu
