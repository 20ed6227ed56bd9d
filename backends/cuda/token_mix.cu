// Token shift (the previous token's normalised input, from the per-sequence state for the first
// token) and the interpolation mixes x + (prev − x)·μ that feed the projections.  One block per
// row of [B·T] rows; threads walk the C channels.
#include "kernels.h"

namespace rwkvrt::cuda {
namespace {

constexpr int kThreads = 256;

bool aligned16(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0;
}

// Row `row` = b·T + t: prev[row] = t ? x[row − 1] : state_b; the t = 0 row also moves
// x[b][T − 1] into the state, after reading it (same thread, same channel).
__global__ void __launch_bounds__(kThreads)
    token_shift_kernel(const float* x, float* prev, uint64_t T, uint32_t C, void* const* bases,
                       uint64_t offset) {
  gpu_kernel_start();
  const uint64_t row = blockIdx.x, b = row / T, t = row % T;
  float* out = prev + row * C;
  if (t > 0) {
    const float* src = x + (row - 1) * C;
    for (uint32_t c = threadIdx.x; c < C; c += blockDim.x) out[c] = src[c];
    return;
  }
  float* state = reinterpret_cast<float*>(static_cast<char*>(bases[b]) + offset);
  const float* last = x + (row + T - 1) * C;
  for (uint32_t c = threadIdx.x; c < C; c += blockDim.x) {
    out[c] = state[c];
    state[c] = last[c];
  }
}

// out[i][m][c] = x + (prev − x)·(mix[i][c] + extra[i][m][c]).  VEC: four channels per thread.
template <bool kVec>
__global__ void __launch_bounds__(kThreads)
    mix_kernel(const float* x, const float* prev, uint64_t M, uint32_t C, uint32_t n_out,
               const float* mix, const float* extra, float* out) {
  gpu_kernel_start();
  const uint64_t m = blockIdx.x;
  const uint64_t plane = M * C;  // floats between consecutive outputs i
  if (kVec) {
    const uint32_t nv = C / 4;
    for (uint32_t v = threadIdx.x; v < nv; v += blockDim.x) {
      const uint64_t j = m * C + uint64_t(v) * 4;
      const float4 xv = *reinterpret_cast<const float4*>(x + j);
      const float4 pv = *reinterpret_cast<const float4*>(prev + j);
      const float4 d = make_float4(pv.x - xv.x, pv.y - xv.y, pv.z - xv.z, pv.w - xv.w);
      for (uint32_t i = 0; i < n_out; ++i) {
        float4 coef = *reinterpret_cast<const float4*>(mix + uint64_t(i) * C + uint64_t(v) * 4);
        if (extra) {
          const float4 e = *reinterpret_cast<const float4*>(extra + i * plane + j);
          coef = make_float4(coef.x + e.x, coef.y + e.y, coef.z + e.z, coef.w + e.w);
        }
        *reinterpret_cast<float4*>(out + i * plane + j) =
            make_float4(fmaf(d.x, coef.x, xv.x), fmaf(d.y, coef.y, xv.y), fmaf(d.z, coef.z, xv.z),
                        fmaf(d.w, coef.w, xv.w));
      }
    }
  } else {
    for (uint32_t c = threadIdx.x; c < C; c += blockDim.x) {
      const uint64_t j = m * C + c;
      const float xv = x[j], d = prev[j] - xv;
      for (uint32_t i = 0; i < n_out; ++i) {
        float coef = mix[uint64_t(i) * C + c];
        if (extra) coef += extra[i * plane + j];
        out[i * plane + j] = fmaf(d, coef, xv);
      }
    }
  }
}

unsigned threads_for(uint64_t items) {
  return items >= 256 ? 256 : items >= 128 ? 128 : items >= 64 ? 64 : 32;
}

}  // namespace

gpuError_t launch_token_shift(const rwkvrt_bk_stream* s, const rwkvrt_bk_token_shift_args& a) {
  if (a.B == 0 || a.C == 0) return gpuSuccess;
  const GpuLaunch l = launch_on(s, dim3(unsigned(a.B * a.T)), dim3(threads_for(a.C)));
  return gpu_launch(l, token_shift_kernel, a.x, a.prev, a.T, uint32_t(a.C), a.shift.bases,
                    a.shift.offset);
}

gpuError_t launch_mix(const rwkvrt_bk_stream* s, const rwkvrt_bk_mix_args& a) {
  if (a.M == 0 || a.C == 0) return gpuSuccess;
  const bool vec = a.C % 4 == 0 && aligned16(a.x) && aligned16(a.prev) && aligned16(a.mix) &&
                   aligned16(a.out) && (!a.extra || aligned16(a.extra));
  const GpuLaunch l = launch_on(s, dim3(unsigned(a.M)), dim3(threads_for(vec ? a.C / 4 : a.C)));
  return vec ? gpu_launch(l, mix_kernel<true>, a.x, a.prev, a.M, uint32_t(a.C), a.n_out, a.mix,
                          a.extra, a.out)
             : gpu_launch(l, mix_kernel<false>, a.x, a.prev, a.M, uint32_t(a.C), a.n_out, a.mix,
                          a.extra, a.out);
}

}  // namespace rwkvrt::cuda
