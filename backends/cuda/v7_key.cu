// RWKV-7 per-head helpers around the WKV: key preparation (κ = k⊙k_k normalised per head,
// k̃ = k⊙(1 + (a − 1)⊙k_a)), the bonus added after GroupNorm (y += (Σ r⊙k̃⊙r_k)·v), and the fused
// GroupNorm + bonus + gate.  One logical warp per (row, head); the head's sums are warp reductions
// in fp32.
#include "half_convert.h"
#include "kernels.h"

namespace rwkvrt::cuda {
namespace {

constexpr int kWarpsPerBlock = 8;

__global__ void __launch_bounds__(kWarpsPerBlock* kWarp)
    key_prep_kernel(uint64_t MH, uint32_t H, uint32_t N, const float* k, const float* a,
                    const float* k_k, const float* k_a, float* kappa, float* ktilde) {
  gpu_kernel_start();
  const uint64_t gid = uint64_t(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarp;
  if (gid >= MH) return;
  const int lane = threadIdx.x % kWarp;
  const uint64_t h = gid % H, o = gid * N;  // rows are H·N floats: (m, h) starts at gid·N
  const float* kk = k_k + h * N;
  float n2 = 0.0f;
  for (uint32_t i = lane; i < N; i += kWarp) {
    const float x = k[o + i] * kk[i];
    n2 = fmaf(x, x, n2);
  }
  const float norm = fmaxf(sqrtf(warp_sum(n2)), 1e-12f);
  const float* ka = k_a + h * N;
  for (uint32_t i = lane; i < N; i += kWarp) {
    const float kv = k[o + i];
    kappa[o + i] = (kv * kk[i]) / norm;
    ktilde[o + i] = kv * (1.0f + (a[o + i] - 1.0f) * ka[i]);
  }
}

__global__ void __launch_bounds__(kWarpsPerBlock* kWarp)
    bonus_kernel(uint64_t MH, uint32_t H, uint32_t N, float* y, const float* r, const float* ktilde,
                 const float* v, const float* r_k) {
  gpu_kernel_start();
  const uint64_t gid = uint64_t(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarp;
  if (gid >= MH) return;
  const int lane = threadIdx.x % kWarp;
  const uint64_t h = gid % H, o = gid * N;
  const float* rk = r_k + h * N;
  float sum = 0.0f;
  for (uint32_t j = lane; j < N; j += kWarp) sum = fmaf(r[o + j] * ktilde[o + j], rk[j], sum);
  sum = warp_sum(sum);
  for (uint32_t i = lane; i < N; i += kWarp) y[o + i] = fmaf(sum, v[o + i], y[o + i]);
}

// group_norm_kernel, bonus_kernel and the gate multiply of one (row, head) in one warp, with
// the same arithmetic in the same order, so the result equals the three kernels'.  It goes to
// out (a.y in place for float; else a separate array of half values, a.y only read).
template <typename OutT>
__global__ void __launch_bounds__(kWarpsPerBlock* kWarp)
    output_kernel(uint64_t MH, uint32_t H, uint32_t N, rwkvrt_bk_v7_output_args a, OutT* out) {
  gpu_kernel_start();
  const uint64_t gid = uint64_t(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarp;
  if (gid >= MH) return;
  const int lane = threadIdx.x % kWarp;
  const uint64_t h = gid % H, o = gid * N;
  float* y = a.y + o;
  const float *gr = a.gamma + h * N, *br = a.beta + h * N, *rk = a.r_k + h * N;
  float s = 0.0f;
  for (uint32_t i = lane; i < N; i += kWarp) s += y[i];
  const float mean = warp_sum(s) / float(N);
  float q = 0.0f;
  for (uint32_t i = lane; i < N; i += kWarp) {
    const float d = y[i] - mean;
    q += d * d;
  }
  const float inv = 1.0f / sqrtf(warp_sum(q) / float(N) + a.eps);
  float sum = 0.0f;
  for (uint32_t j = lane; j < N; j += kWarp) sum = fmaf(a.r[o + j] * a.ktilde[o + j], rk[j], sum);
  sum = warp_sum(sum);
  for (uint32_t i = lane; i < N; i += kWarp) {
    const float normed = fmaf((y[i] - mean) * inv, gr[i], br[i]);
    out[o + i] = round_activation<OutT>(fmaf(sum, a.v[o + i], normed) * a.g[o + i]);
  }
}

unsigned blocks_of(uint64_t warps) {
  return unsigned((warps + kWarpsPerBlock - 1) / kWarpsPerBlock);
}

}  // namespace

gpuError_t launch_v7_key_prep(const rwkvrt_bk_stream* s, const rwkvrt_bk_v7_key_args& a) {
  const uint64_t MH = a.M * a.H;
  if (MH == 0 || a.N == 0) return gpuSuccess;
  const GpuLaunch l = launch_on(s, dim3(blocks_of(MH)), dim3(kWarpsPerBlock * kWarp));
  return gpu_launch(l, key_prep_kernel, MH, uint32_t(a.H), uint32_t(a.N), a.k, a.a, a.k_k, a.k_a,
                    a.kappa, a.ktilde);
}

gpuError_t launch_v7_bonus(const rwkvrt_bk_stream* s, const rwkvrt_bk_v7_bonus_args& a) {
  const uint64_t MH = a.M * a.H;
  if (MH == 0 || a.N == 0) return gpuSuccess;
  const GpuLaunch l = launch_on(s, dim3(blocks_of(MH)), dim3(kWarpsPerBlock * kWarp));
  return gpu_launch(l, bonus_kernel, MH, uint32_t(a.H), uint32_t(a.N), a.y, a.r, a.ktilde, a.v,
                    a.r_k);
}

gpuError_t launch_v7_output(const rwkvrt_bk_stream* s, const rwkvrt_bk_v7_output_args& a,
                            WeightStorage out_type, void* out) {
  const uint64_t MH = a.M * a.H;
  if (MH == 0 || a.N == 0) return gpuSuccess;
  const GpuLaunch l = launch_on(s, dim3(blocks_of(MH)), dim3(kWarpsPerBlock * kWarp));
  const uint32_t H = uint32_t(a.H), N = uint32_t(a.N);
  switch (out_type) {
    case WeightStorage::F16:
      return gpu_launch(l, output_kernel<gpu_half>, MH, H, N, a, static_cast<gpu_half*>(out));
    case WeightStorage::BF16:
      return gpu_launch(l, output_kernel<gpu_bf16>, MH, H, N, a, static_cast<gpu_bf16*>(out));
    default:
      return gpu_launch(l, output_kernel<float>, MH, H, N, a, a.y);
  }
}

}  // namespace rwkvrt::cuda
