// LayerNorm (one block per row), GroupNorm (one logical warp per group), and the fused
// LayerNorm + token shift + mix (norm_shift_mix).  All compute the mean first and then the
// variance of the deviations (two passes, not E[x²] − E[x]², which cancels badly for residual
// streams whose mean is large against their spread), in fp32 with tree reductions; the passes
// re-read the row from L1 (norm_shift_mix keeps it in registers).  y may equal x: each element is
// read and written by the same thread, after the reductions.
#include <algorithm>

#include "half_convert.h"
#include "kernels.h"

namespace rwkvrt::cuda {
namespace {

// Sum over the block; every thread gets the result.  `shared32` holds one float per warp.
__device__ float block_sum(float v, float* shared32) {
  v = warp_sum(v);
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  if (lane == 0) shared32[warp] = v;
  __syncthreads();
  const int nwarps = blockDim.x / kWarp;
  float r = lane < nwarps ? shared32[lane] : 0.0f;
  r = warp_sum(r);
  __syncthreads();  // shared32 may be reused by the next reduction
  return r;
}

template <bool kVec>
__global__ void layer_norm_kernel(const float* x, float* y, uint32_t C, const float* gamma,
                                  const float* beta, float eps) {
  gpu_kernel_start();
  __shared__ float shared32[kWarp];
  const uint64_t row = blockIdx.x;
  const float* xr = x + row * C;
  float* yr = y + row * C;
  const uint32_t nv = kVec ? C / 4 : C;
  float s = 0.0f;
  for (uint32_t i = threadIdx.x; i < nv; i += blockDim.x) {
    if (kVec) {
      const float4 v = reinterpret_cast<const float4*>(xr)[i];
      s += (v.x + v.y) + (v.z + v.w);
    } else {
      s += xr[i];
    }
  }
  const float mean = block_sum(s, shared32) / float(C);
  float q = 0.0f;
  for (uint32_t i = threadIdx.x; i < nv; i += blockDim.x) {
    if (kVec) {
      const float4 v = reinterpret_cast<const float4*>(xr)[i];
      const float a = v.x - mean, b = v.y - mean, c = v.z - mean, d = v.w - mean;
      q += (a * a + b * b) + (c * c + d * d);
    } else {
      const float a = xr[i] - mean;
      q += a * a;
    }
  }
  const float inv = 1.0f / sqrtf(block_sum(q, shared32) / float(C) + eps);
  for (uint32_t i = threadIdx.x; i < nv; i += blockDim.x) {
    if (kVec) {
      const float4 v = reinterpret_cast<const float4*>(xr)[i];
      const float4 g = reinterpret_cast<const float4*>(gamma)[i];
      const float4 b = reinterpret_cast<const float4*>(beta)[i];
      float4 o;
      o.x = fmaf((v.x - mean) * inv, g.x, b.x);
      o.y = fmaf((v.y - mean) * inv, g.y, b.y);
      o.z = fmaf((v.z - mean) * inv, g.z, b.z);
      o.w = fmaf((v.w - mean) * inv, g.w, b.w);
      reinterpret_cast<float4*>(yr)[i] = o;
    } else {
      yr[i] = fmaf((xr[i] - mean) * inv, gamma[i], beta[i]);
    }
  }
}

constexpr int kGroupWarpsPerBlock = 8;

__global__ void __launch_bounds__(kGroupWarpsPerBlock* kWarp)
    group_norm_kernel(const float* x, float* y, uint64_t n_groups_total, uint32_t groups,
                      uint32_t n, const float* gamma, const float* beta, float eps) {
  gpu_kernel_start();
  const uint64_t gid = uint64_t(blockIdx.x) * kGroupWarpsPerBlock + threadIdx.x / kWarp;
  if (gid >= n_groups_total) return;
  const int lane = threadIdx.x % kWarp;
  const uint64_t g = gid % groups;
  const float* xr = x + gid * n;  // rows are C = groups·n floats, so group gid starts at gid·n
  float* yr = y + gid * n;
  const float* gr = gamma + g * n;
  const float* br = beta + g * n;
  float s = 0.0f;
  for (uint32_t i = lane; i < n; i += kWarp) s += xr[i];
  const float mean = warp_sum(s) / float(n);
  float q = 0.0f;
  for (uint32_t i = lane; i < n; i += kWarp) {
    const float a = xr[i] - mean;
    q += a * a;
  }
  const float inv = 1.0f / sqrtf(warp_sum(q) / float(n) + eps);
  for (uint32_t i = lane; i < n; i += kWarp) yr[i] = fmaf((xr[i] - mean) * inv, gr[i], br[i]);
}

bool aligned16(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0;
}

// LayerNorm threads for a row of C floats (C/4 float4 when vectorised).
unsigned norm_threads(uint64_t work) {
  return work >= 1024 ? 256 : work >= 256 ? 128 : 64;
}

// norm_shift_mix, one block per tile of kTileRows consecutive rows of one sequence, each thread
// keeping up to KMAX float4 of a row in registers.  A row is normalised exactly as
// layer_norm_kernel<true> with the same block width does (same partial sums, same reductions),
// the previous row's normalised values are kept from the last iteration (for the tile's first
// row: the state at t = 0, else the row before the tile, normalised again), and the mixes are
// mix_kernel<true>'s, so at the LayerNorm width the results equal the three kernels' bit for bit
// while x is read about once and nothing goes through scratch.  The tile holding t = 0 reads the
// shift state before writing the normalised row T − 1 into it; no other block touches that state.
// C % 4 == 0 and x, gamma, beta, mix, out 16-byte aligned; the state may sit anywhere.
constexpr uint64_t kTileRows = 8;

template <int KMAX>
struct RowInRegisters {
  float4 v[KMAX];
};

// Loads row `xr` ([nv] float4) and normalises it in place (layer_norm_kernel<true>'s arithmetic).
template <int KMAX>
__device__ __forceinline__ void normalise_row(const float4* xr, uint32_t nv, uint32_t C,
                                              const float4* gamma, const float4* beta, float eps,
                                              float* shared32, RowInRegisters<KMAX>& r) {
  float s = 0.0f;
#pragma unroll
  for (int k = 0; k < KMAX; ++k) {
    const uint32_t i = threadIdx.x + uint32_t(k) * blockDim.x;
    r.v[k] = i < nv ? xr[i] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    if (i < nv) s += (r.v[k].x + r.v[k].y) + (r.v[k].z + r.v[k].w);
  }
  const float mean = block_sum(s, shared32) / float(C);
  float q = 0.0f;
#pragma unroll
  for (int k = 0; k < KMAX; ++k) {
    const uint32_t i = threadIdx.x + uint32_t(k) * blockDim.x;
    if (i >= nv) continue;
    const float4 v = r.v[k];
    const float a = v.x - mean, b = v.y - mean, c = v.z - mean, d = v.w - mean;
    q += (a * a + b * b) + (c * c + d * d);
  }
  const float inv = 1.0f / sqrtf(block_sum(q, shared32) / float(C) + eps);
#pragma unroll
  for (int k = 0; k < KMAX; ++k) {
    const uint32_t i = threadIdx.x + uint32_t(k) * blockDim.x;
    if (i >= nv) continue;
    const float4 v = r.v[k], g = gamma[i], b = beta[i];
    r.v[k] = make_float4(fmaf((v.x - mean) * inv, g.x, b.x), fmaf((v.y - mean) * inv, g.y, b.y),
                         fmaf((v.z - mean) * inv, g.z, b.z), fmaf((v.w - mean) * inv, g.w, b.w));
  }
}

template <int KMAX, typename OutT>
__global__ void norm_shift_mix_rows_kernel(rwkvrt_bk_norm_shift_mix_args a) {
  __shared__ float shared32[kWarp];
  gpu_kernel_start();
  const uint64_t tiles_per_seq = (a.T + kTileRows - 1) / kTileRows;
  const uint64_t b = blockIdx.x / tiles_per_seq, t0 = blockIdx.x % tiles_per_seq * kTileRows;
  const uint64_t t_end = t0 + kTileRows < a.T ? t0 + kTileRows : a.T;
  const uint32_t C = uint32_t(a.C), nv = C / 4;
  const float4* x = reinterpret_cast<const float4*>(a.x) + b * a.T * nv;
  const auto* gamma = reinterpret_cast<const float4*>(a.gamma);
  const auto* beta = reinterpret_cast<const float4*>(a.beta);
  float* state = reinterpret_cast<float*>(static_cast<char*>(a.shift.bases[b]) + a.shift.offset);

  RowInRegisters<KMAX> prev, cur;
  if (t0 == 0) {
#pragma unroll
    for (int k = 0; k < KMAX; ++k) {
      const uint32_t i = threadIdx.x + uint32_t(k) * blockDim.x;
      const float* st = state + uint64_t(i) * 4;
      prev.v[k] = i < nv ? make_float4(st[0], st[1], st[2], st[3]) : make_float4(0, 0, 0, 0);
    }
  } else {
    normalise_row<KMAX>(x + (t0 - 1) * nv, nv, C, gamma, beta, a.eps, shared32, prev);
  }
  const uint64_t plane = a.B * a.T * C;  // values between consecutive outputs o
  for (uint64_t t = t0; t < t_end; ++t) {
    normalise_row<KMAX>(x + t * nv, nv, C, gamma, beta, a.eps, shared32, cur);
    OutT* out = reinterpret_cast<OutT*>(a.out) + (b * a.T + t) * C;
#pragma unroll
    for (int k = 0; k < KMAX; ++k) {
      const uint32_t i = threadIdx.x + uint32_t(k) * blockDim.x;
      if (i >= nv) continue;
      const float4 h = cur.v[k], pv = prev.v[k];
      const float4 d = make_float4(pv.x - h.x, pv.y - h.y, pv.z - h.z, pv.w - h.w);
      for (uint32_t o = 0; o < a.n_out; ++o) {
        const float4 coef = reinterpret_cast<const float4*>(a.mix + uint64_t(o) * C)[i];
        store4<OutT>(out + o * plane + uint64_t(i) * 4,
                     make_float4(fmaf(d.x, coef.x, h.x), fmaf(d.y, coef.y, h.y),
                                 fmaf(d.z, coef.z, h.z), fmaf(d.w, coef.w, h.w)));
      }
      prev.v[k] = h;
    }
  }
  if (t0 != 0) return;
  // The sequence's last normalised row becomes its shift state (read above, by this block only).
  if (t_end != a.T)
    normalise_row<KMAX>(x + (a.T - 1) * nv, nv, C, gamma, beta, a.eps, shared32, prev);
#pragma unroll
  for (int k = 0; k < KMAX; ++k) {
    const uint32_t i = threadIdx.x + uint32_t(k) * blockDim.x;
    if (i >= nv) continue;
    float* st = state + uint64_t(i) * 4;
    st[0] = prev.v[k].x;
    st[1] = prev.v[k].y;
    st[2] = prev.v[k].z;
    st[3] = prev.v[k].w;
  }
}

template <int KMAX>
gpuError_t launch_rows(const GpuLaunch& l, const rwkvrt_bk_norm_shift_mix_args& a,
                       WeightStorage out_type) {
  switch (out_type) {
    case WeightStorage::F16:
      return gpu_launch(l, norm_shift_mix_rows_kernel<KMAX, gpu_half>, a);
    case WeightStorage::BF16:
      return gpu_launch(l, norm_shift_mix_rows_kernel<KMAX, gpu_bf16>, a);
    default:
      return gpu_launch(l, norm_shift_mix_rows_kernel<KMAX, float>, a);
  }
}

}  // namespace

gpuError_t launch_norm_shift_mix(rwkvrt_bk_stream* s, const rwkvrt_bk_norm_shift_mix_args& a,
                                 WeightStorage out_type) {
  const uint64_t M = a.B * a.T;
  if (M == 0 || a.C == 0) return gpuSuccess;
  const bool aligned = a.C % 4 == 0 && aligned16(a.x) && aligned16(a.gamma) && aligned16(a.beta) &&
                       aligned16(a.mix) && aligned16(a.out);
  // Decode of fewer sequences than SMs: blocks as wide as the row (one float4 per thread up to
  // 1024 threads), so that the step's few blocks keep all their loads in flight; the sums' order
  // then differs from layer_norm_kernel's (a few ulp, within the LayerNorm bound of the op tests).
  // Otherwise the LayerNorm width, the blocks filling the SMs anyway.  (Batched decode with one
  // block per sequence and the row in shared memory: 1.5 TB/s on the H200 at B = 1024, C = 4096.)
  const uint64_t nv = a.C / 4;
  const unsigned threads =
      a.T == 1 && a.B < uint64_t(s->ctx->sm_count)
          ? unsigned(std::min<uint64_t>(1024, std::max<uint64_t>(64, (nv + 31) / 32 * 32)))
          : norm_threads(nv);
  const uint64_t kmax = (nv + threads - 1) / threads;
  const uint64_t tiles = a.B * ((a.T + kTileRows - 1) / kTileRows);
  if (aligned && kmax <= 8 && tiles < (uint64_t(1) << 31)) {
    const GpuLaunch l = launch_on(s, dim3(unsigned(tiles)), dim3(threads));
    return kmax <= 1   ? launch_rows<1>(l, a, out_type)
           : kmax <= 2 ? launch_rows<2>(l, a, out_type)
           : kmax <= 4 ? launch_rows<4>(l, a, out_type)
                       : launch_rows<8>(l, a, out_type);
  }
  // Unusual shapes: the three ops through scratch (and a rounding pass for half outputs).
  const bool half = out_type != WeightStorage::F32;
  const uint64_t floats = (2 + (half ? a.n_out : 0)) * M * a.C;
  float* xhat = static_cast<float*>(s->scratch.get(floats * sizeof(float)));
  if (!xhat) return gpuErrorMemoryAllocation;
  float* prev = xhat + M * a.C;
  float* mixed = half ? prev + M * a.C : a.out;
  gpuError_t e =
      launch_layer_norm(s, rwkvrt_bk_norm_args{a.x, xhat, M, a.C, 0, a.gamma, a.beta, a.eps});
  if (e == gpuSuccess)
    e = launch_token_shift(s, rwkvrt_bk_token_shift_args{xhat, prev, a.B, a.T, a.C, a.shift});
  if (e == gpuSuccess)
    e = launch_mix(s, rwkvrt_bk_mix_args{xhat, prev, M, a.C, a.n_out, a.mix, nullptr, mixed});
  if (e == gpuSuccess && half)
    e = launch_round_elements(s, out_type, mixed, a.n_out * M * a.C, a.out);
  return e;
}

gpuError_t launch_layer_norm(const rwkvrt_bk_stream* s, const rwkvrt_bk_norm_args& a) {
  if (a.M == 0 || a.C == 0) return gpuSuccess;
  const bool vec =
      a.C % 4 == 0 && aligned16(a.x) && aligned16(a.y) && aligned16(a.gamma) && aligned16(a.beta);
  const unsigned threads = norm_threads(vec ? a.C / 4 : a.C);
  const GpuLaunch l = launch_on(s, dim3(unsigned(a.M)), dim3(threads));
  const uint32_t C = uint32_t(a.C);
  return vec ? gpu_launch(l, layer_norm_kernel<true>, a.x, a.y, C, a.gamma, a.beta, a.eps)
             : gpu_launch(l, layer_norm_kernel<false>, a.x, a.y, C, a.gamma, a.beta, a.eps);
}

gpuError_t launch_group_norm(const rwkvrt_bk_stream* s, const rwkvrt_bk_norm_args& a) {
  if (a.M == 0 || a.C == 0) return gpuSuccess;
  const uint64_t total = a.M * a.groups;
  const GpuLaunch l =
      launch_on(s, dim3(unsigned((total + kGroupWarpsPerBlock - 1) / kGroupWarpsPerBlock)),
                dim3(kGroupWarpsPerBlock * kWarp));
  return gpu_launch(l, group_norm_kernel, a.x, a.y, total, uint32_t(a.groups),
                    uint32_t(a.C / a.groups), a.gamma, a.beta, a.eps);
}

}  // namespace rwkvrt::cuda
