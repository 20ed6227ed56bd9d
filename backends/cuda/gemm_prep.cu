// Operand preparation for the tensor-core matmul paths (matmul.cpp): activations rounded to the
// weight type, activations split into several terms of the weight type (fp32 accuracy from
// f16/bf16 tensor cores), the sum of the split products, and block-quantised rows decoded for a
// GEMM.
#include <cfloat>

#include "activation.h"
#include "half_convert.h"
#include "kernels.h"

namespace rwkvrt::cuda {
namespace {

constexpr int kThreads = 256;

// x[m][k], or act(x[m][k]) when a prologue activation is given (the channel mix's ReLU², applied
// with apply_activation's arithmetic, as the separate epilogue kernel would have).
__device__ __forceinline__ float input_at(const float* xr, uint64_t k, int32_t act) {
  const float v = xr[k];
  return act == RWKVRT_BK_NO_ACTIVATION ? v : apply_activation(act, v);
}

// out[m][k] for k < Kp; one thread per 8 outputs (Kp is a multiple of 8).
template <typename T>
__global__ void __launch_bounds__(kThreads)
    round_kernel(const float* x, uint64_t M, uint64_t ldx, uint64_t K, uint64_t Kp, T* out,
                 int32_t act) {
  gpu_kernel_start();
  const uint64_t groups_per_row = Kp / 8, total = M * groups_per_row;
  for (uint64_t g = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x; g < total;
       g += uint64_t(gridDim.x) * blockDim.x) {
    const uint64_t m = g / groups_per_row, k0 = (g % groups_per_row) * 8;
    const float* xr = x + m * ldx;
    alignas(16) T v[8];
#pragma unroll
    for (int e = 0; e < 8; ++e)
      v[e] = to_type<T>(k0 + e < K ? saturate<T>(input_at(xr, k0 + e, act)) : 0.0f);
    *reinterpret_cast<uint4*>(out + m * Kp + k0) = *reinterpret_cast<const uint4*>(v);
  }
}

// out[i] = x[i] rounded, i < n (the fallbacks of the producers writing half activations).
template <typename T>
__global__ void __launch_bounds__(kThreads)
    round_elements_kernel(const float* x, uint64_t n, T* out) {
  gpu_kernel_start();
  for (uint64_t i = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += uint64_t(gridDim.x) * blockDim.x)
    out[i] = round_activation<T>(x[i]);
}

// Several activation matrices rounded in one launch (a group of GEMMs): 8 outputs per thread
// index, items found by their first index (at most RWKVRT_BK_MAX_GROUP, a linear search).
template <typename T>
__global__ void __launch_bounds__(kThreads)
    round_group_kernel(const GPU_GRID_CONSTANT RoundGroup g) {
  gpu_kernel_start();
  for_each_group_element(g, [](const RoundItem& r, uint64_t local) {
    const uint64_t groups_per_row = r.Kp / 8;
    const uint64_t m = local / groups_per_row, k0 = (local % groups_per_row) * 8;
    const float* xr = r.x + m * r.ldx;
    alignas(16) T v[8];
#pragma unroll
    for (int e = 0; e < 8; ++e) v[e] = to_type<T>(k0 + e < r.K ? saturate<T>(xr[k0 + e]) : 0.0f);
    *reinterpret_cast<uint4*>(static_cast<T*>(r.out) + m * r.Kp + k0) =
        *reinterpret_cast<const uint4*>(v);
  });
}

__device__ float block_max(float v, float* shared32) {
  v = warp_max(v);
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  if (lane == 0) shared32[warp] = v;
  __syncthreads();
  const int nwarps = blockDim.x / kWarp;
  float r = lane < nwarps ? shared32[lane] : 0.0f;
  r = warp_max(r);
  __syncthreads();
  return r;
}

// One block per row: x = s⁻¹·(p₀ + p₁ [+ p₂]) with each p of type T.  Each remainder is exact in
// fp32 (x minus its own rounding), so only the last term's rounding is lost.
template <typename T, int P>
__device__ void split_row(const float* x, uint64_t ldx, uint64_t M, uint64_t K, uint64_t Kp, T* out,
                          float* row_scale, uint64_t m, float* shared32,
                          int32_t act = RWKVRT_BK_NO_ACTIVATION) {
  const float* xr = x + m * ldx;
  float scale = 1.0f;
  if (row_scale) {
    // Largest magnitude of the row scaled to at most 2^14, by a power of two (exact), so that
    // neither term overflows f16.
    float amax = 0.0f;
    for (uint64_t k = threadIdx.x; k < K; k += blockDim.x)
      amax = fmaxf(amax, fabsf(input_at(xr, k, act)));
    amax = block_max(amax, shared32);
    int e = 0;
    if (isfinite(amax) && amax > 0.0f) frexpf(amax, &e);  // amax = f·2^e, f in [0.5, 1)
    if (e > 14) scale = ldexpf(1.0f, 14 - e);
    if (threadIdx.x == 0) row_scale[m] = 1.0f / scale;
  }
  for (uint64_t k = threadIdx.x; k < Kp; k += blockDim.x) {
    // Unscaled f16 terms saturate (the scaled ones never exceed 2^14).
    float r = k < K ? saturate<T>(input_at(xr, k, act) * scale) : 0.0f;
#pragma unroll
    for (int p = 0; p < P; ++p) {
      const T t = to_type<T>(r);
      out[(uint64_t(p) * M + m) * Kp + k] = t;
      r -= from_type<T>(t);
    }
  }
}

template <typename T, int P>
__global__ void __launch_bounds__(kThreads)
    split_kernel(const float* x, uint64_t ldx, uint64_t M, uint64_t K, uint64_t Kp, T* out,
                 float* row_scale, int32_t act) {
  gpu_kernel_start();
  __shared__ float shared32[kWarp];
  split_row<T, P>(x, ldx, M, K, Kp, out, row_scale, blockIdx.x, shared32, act);
}

// The splits of a group of GEMMs' inputs in one launch: one block per row of every item.
template <typename T, int P>
__global__ void __launch_bounds__(kThreads)
    split_group_kernel(const GPU_GRID_CONSTANT SplitGroup g) {
  gpu_kernel_start();
  __shared__ float shared32[kWarp];
  uint32_t it = 0;
  while (it + 1 < g.n && blockIdx.x >= g.item[it + 1].first_block) ++it;
  const SplitItem& e = g.item[it];
  split_row<T, P>(e.x, e.ldx, e.M, e.K, e.Kp, static_cast<T*>(e.out), e.row_scale,
                  blockIdx.x - e.first_block, shared32);
}

// Σ_p parts[p][m][n] (smallest terms first), times row_scale[m].
__device__ __forceinline__ float combined(const float* parts, int P, const float* row_scale,
                                          uint64_t M, uint64_t np, uint64_t m, uint64_t n) {
  float sum = 0.0f;
  for (int p = P - 1; p >= 0; --p) sum += parts[(uint64_t(p) * M + m) * np + n];
  if (row_scale) sum *= row_scale[m];
  return sum;
}

__global__ void __launch_bounds__(kThreads)
    combine_kernel(const float* parts, int P, const float* row_scale, uint64_t M, uint64_t np,
                   float* y, uint64_t ldy, uint32_t accumulate) {
  gpu_kernel_start();
  const uint64_t total = M * np;
  for (uint64_t i = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += uint64_t(gridDim.x) * blockDim.x) {
    const uint64_t m = i / np, n = i % np;
    const float sum = combined(parts, P, row_scale, M, np, m, n);
    float* out = y + m * ldy + n;
    *out = accumulate ? *out + sum : sum;
  }
}

// The sums of a group of split GEMMs in one launch, each followed by its epilogue with the
// arithmetic of the separate bias_act kernel.
__global__ void __launch_bounds__(kThreads)
    combine_group_kernel(const GPU_GRID_CONSTANT CombineGroup g) {
  gpu_kernel_start();
  const int P = g.P;
  for_each_group_element(g, [P](const CombineItem& e, uint64_t local) {
    const uint64_t m = local / e.N, n = local % e.N;
    const float sum = combined(e.parts, P, e.row_scale, e.M, e.N, m, n);
    float v = e.accumulate ? e.y[m * e.ldy + n] + sum : sum;
    if (e.bias || e.act != RWKVRT_BK_NO_ACTIVATION) {
      if (e.bias) v += e.bias[n];
      v = apply_activation(e.act, v);
    }
    e.y[m * e.ldy + n] = v;
  });
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    dequant_kernel(const int8_t* codes, const float2* scales, uint64_t K, uint64_t np, T* out) {
  gpu_kernel_start();
  const uint64_t total = np * K;
  for (uint64_t i = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += uint64_t(gridDim.x) * blockDim.x) {
    const float2 dm = scales[i / 32];  // rows hold K/32 blocks, so blocks are numbered i/32
    out[i] = T(fmaf(float(codes[i]), dm.x, dm.y));
  }
}

}  // namespace

gpuError_t launch_round_activations(const rwkvrt_bk_stream* s, WeightStorage storage,
                                    const float* x, uint64_t M, uint64_t ldx, uint64_t K,
                                    uint64_t Kp, void* out, int32_t act) {
  const GpuLaunch l = launch_on(s, dim3(blocks_for(M * (Kp / 8), kThreads)), dim3(kThreads));
  if (storage == WeightStorage::BF16)
    return gpu_launch(l, round_kernel<gpu_bf16>, x, M, ldx, K, Kp, static_cast<gpu_bf16*>(out),
                      act);
  return gpu_launch(l, round_kernel<gpu_half>, x, M, ldx, K, Kp, static_cast<gpu_half*>(out), act);
}

gpuError_t launch_round_elements(const rwkvrt_bk_stream* s, WeightStorage storage, const float* x,
                                 uint64_t n, void* out) {
  if (n == 0) return gpuSuccess;
  const GpuLaunch l = launch_on(s, dim3(blocks_for(n, kThreads)), dim3(kThreads));
  if (storage == WeightStorage::BF16)
    return gpu_launch(l, round_elements_kernel<gpu_bf16>, x, n, static_cast<gpu_bf16*>(out));
  return gpu_launch(l, round_elements_kernel<gpu_half>, x, n, static_cast<gpu_half*>(out));
}

gpuError_t launch_round_group(const rwkvrt_bk_stream* s, WeightStorage storage, RoundGroup& g) {
  if (number_group_items(g, [](const RoundItem& r) { return r.M * (r.Kp / 8); }) == 0)
    return gpuSuccess;
  const GpuLaunch l = launch_on(s, dim3(blocks_for(g.total, kThreads)), dim3(kThreads));
  if (storage == WeightStorage::BF16) return gpu_launch(l, round_group_kernel<gpu_bf16>, g);
  return gpu_launch(l, round_group_kernel<gpu_half>, g);
}

gpuError_t launch_split_activations(const rwkvrt_bk_stream* s, WeightStorage storage, int parts,
                                    const float* x, uint64_t M, uint64_t ldx, uint64_t K,
                                    uint64_t Kp, void* out, float* row_scale, int32_t act) {
  const GpuLaunch l = launch_on(s, dim3(unsigned(M)), dim3(kThreads));
  if (storage == WeightStorage::BF16)
    return parts == 3 ? gpu_launch(l, split_kernel<gpu_bf16, 3>, x, ldx, M, K, Kp,
                                   static_cast<gpu_bf16*>(out), static_cast<float*>(nullptr), act)
                      : gpu_launch(l, split_kernel<gpu_bf16, 2>, x, ldx, M, K, Kp,
                                   static_cast<gpu_bf16*>(out), static_cast<float*>(nullptr), act);
  return gpu_launch(l, split_kernel<gpu_half, 2>, x, ldx, M, K, Kp, static_cast<gpu_half*>(out),
                    row_scale, act);
}

gpuError_t launch_split_group(const rwkvrt_bk_stream* s, WeightStorage storage, int parts,
                              SplitGroup& g) {
  uint32_t blocks = 0;
  for (uint32_t i = 0; i < g.n; ++i) {
    g.item[i].first_block = blocks;
    blocks += uint32_t(g.item[i].M);
  }
  if (blocks == 0) return gpuSuccess;
  const GpuLaunch l = launch_on(s, dim3(blocks), dim3(kThreads));
  if (storage == WeightStorage::BF16)
    return parts == 3 ? gpu_launch(l, split_group_kernel<gpu_bf16, 3>, g)
                      : gpu_launch(l, split_group_kernel<gpu_bf16, 2>, g);
  return gpu_launch(l, split_group_kernel<gpu_half, 2>, g);
}

gpuError_t launch_combine_group(const rwkvrt_bk_stream* s, CombineGroup& g) {
  if (number_group_items(g, [](const CombineItem& e) { return e.M * e.N; }) == 0) return gpuSuccess;
  const GpuLaunch l = launch_on(s, dim3(blocks_for(g.total, kThreads)), dim3(kThreads));
  return gpu_launch(l, combine_group_kernel, g);
}

gpuError_t launch_combine_parts(const rwkvrt_bk_stream* s, const float* parts, int P,
                                const float* row_scale, uint64_t M, uint64_t np, float* y,
                                uint64_t ldy, bool accumulate) {
  const GpuLaunch l = launch_on(s, dim3(blocks_for(M * np, kThreads)), dim3(kThreads));
  return gpu_launch(l, combine_kernel, parts, P, row_scale, M, np, y, ldy, accumulate ? 1u : 0u);
}

gpuError_t launch_dequant_codes(const rwkvrt_bk_stream* s, const rwkvrt_bk_weight* w, uint64_t n0,
                                uint64_t np, bool to_half, void* out) {
  const int8_t* codes = static_cast<const int8_t*>(w->data) + n0 * w->cols;
  const float2* scales = w->scales + n0 * (w->cols / 32);
  const GpuLaunch l = launch_on(s, dim3(blocks_for(np * w->cols, kThreads)), dim3(kThreads));
  if (to_half)
    return gpu_launch(l, dequant_kernel<gpu_half>, codes, scales, w->cols, np,
                      static_cast<gpu_half*>(out));
  return gpu_launch(l, dequant_kernel<float>, codes, scales, w->cols, np, static_cast<float*>(out));
}

}  // namespace rwkvrt::cuda
