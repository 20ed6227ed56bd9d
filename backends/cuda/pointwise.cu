// Element-wise ops: the unary activations, binary add/sub/mul (with a broadcast row), and the
// embedding gather.  Full-precision math functions (expf, tanhf: within 2 ulp) and IEEE
// division, so results are within a few ulp of the reference; add/sub/mul and copies are exact.
// 16-byte accesses whenever alignment and sizes allow; y may alias an input element for element.
#include "activation.h"
#include "kernels.h"

namespace rwkvrt::cuda {
namespace {

constexpr int kThreads = 256;

bool aligned16(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0;
}

// Epilogues of matmuls, y[m][n] = act(y[m][n] + bias[n]), one or a group of GEMMs per launch.
// The work is cut into tiles of one row × kTileCols columns, one block per tile (grid-stride
// over tiles): the row and column of a thread follow from one division per tile, not per
// element, and each thread takes 4 consecutive columns with 16-byte accesses when the item's
// rows allow it.  (A flat element index with a 64-bit division per element ran at ≈ 1.5 TB/s
// on the H200, half the bandwidth of the other element-wise passes.)
constexpr uint64_t kTileCols = 4 * kThreads;

__host__ __device__ inline uint64_t tiles_per_row(uint64_t N) {
  return (N + kTileCols - 1) / kTileCols;
}

__global__ void __launch_bounds__(kThreads)
    bias_act_group_kernel(const GPU_GRID_CONSTANT BiasActGroup g) {
  gpu_kernel_start();
  for (uint64_t tile = blockIdx.x; tile < g.total; tile += gridDim.x) {
    const BiasActItem& e = g.item[group_item_of(g, tile)];
    const uint64_t local = tile - e.first, per_row = tiles_per_row(e.N);
    const uint64_t m = local / per_row, n = (local % per_row) * kTileCols + 4 * threadIdx.x;
    if (n >= e.N) continue;
    float* y = e.y + m * e.ldy + n;
    // Vector rows: N and ldy multiples of 4, y and bias 16-byte aligned (so n + 4 ≤ N).
    const bool vec = e.vec != 0;
    float v[4];
    if (vec) {
      const float4 q = *reinterpret_cast<const float4*>(y);
      v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.w;
      if (e.bias) {
        const float4 b = *reinterpret_cast<const float4*>(e.bias + n);
        v[0] += b.x, v[1] += b.y, v[2] += b.z, v[3] += b.w;
      }
    } else {
#pragma unroll
      for (int j = 0; j < 4; ++j)
        v[j] = n + j < e.N ? y[j] + (e.bias ? e.bias[n + j] : 0.0f) : 0.0f;
    }
#pragma unroll
    for (int j = 0; j < 4; ++j) v[j] = apply_activation(e.act, v[j]);
    if (vec) {
      *reinterpret_cast<float4*>(y) = make_float4(v[0], v[1], v[2], v[3]);
    } else {
#pragma unroll
      for (int j = 0; j < 4; ++j)
        if (n + j < e.N) y[j] = v[j];
    }
  }
}

__global__ void __launch_bounds__(kThreads)
    unary_kernel(rwkvrt_bk_unary op, const float* x, float* y, uint64_t n, uint32_t vec) {
  gpu_kernel_start();
  const uint64_t stride = uint64_t(gridDim.x) * blockDim.x;
  const uint64_t first = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  uint64_t done = 0;
  if (vec) {
    const uint64_t nv = n / 4;
    for (uint64_t i = first; i < nv; i += stride) {
      float4 v = reinterpret_cast<const float4*>(x)[i];
      v.x = apply_unary(op, v.x);
      v.y = apply_unary(op, v.y);
      v.z = apply_unary(op, v.z);
      v.w = apply_unary(op, v.w);
      reinterpret_cast<float4*>(y)[i] = v;
    }
    done = nv * 4;
  }
  for (uint64_t i = done + first; i < n; i += stride) y[i] = apply_unary(op, x[i]);
}

__device__ __forceinline__ float apply_binary(rwkvrt_bk_binary op, float a, float b) {
  return op == RWKVRT_BK_ADD ? a + b : op == RWKVRT_BK_SUB ? a - b : a * b;
}

__device__ __forceinline__ float4 apply_binary4(rwkvrt_bk_binary op, float4 a, float4 b) {
  return make_float4(apply_binary(op, a.x, b.x), apply_binary(op, a.y, b.y),
                     apply_binary(op, a.z, b.z), apply_binary(op, a.w, b.w));
}

// One block per row; b is the row itself or the broadcast row.
template <bool kVec>
__global__ void __launch_bounds__(kThreads)
    binary_kernel(rwkvrt_bk_binary op, const float* a, const float* b, float* y, uint32_t C,
                  uint32_t b_is_row) {
  gpu_kernel_start();
  const uint64_t row = uint64_t(blockIdx.x) * C;
  const float* br = b_is_row ? b : b + row;
  if (kVec) {
    for (uint32_t v = threadIdx.x; v < C / 4; v += blockDim.x) {
      const float4 av = reinterpret_cast<const float4*>(a + row)[v];
      const float4 bv = reinterpret_cast<const float4*>(br)[v];
      reinterpret_cast<float4*>(y + row)[v] = apply_binary4(op, av, bv);
    }
  } else {
    for (uint32_t c = threadIdx.x; c < C; c += blockDim.x)
      y[row + c] = apply_binary(op, a[row + c], br[c]);
  }
}

// v7 value residual, element-wise: out = v + (v_first − v)·gate, with the mix op's arithmetic.
__global__ void __launch_bounds__(kThreads)
    value_residual_kernel(const float* v, const float* v_first, const float* gate, float* out,
                          uint64_t n) {
  gpu_kernel_start();
  for (uint64_t i = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += uint64_t(gridDim.x) * blockDim.x)
    out[i] = fmaf(v_first[i] - v[i], gate[i], v[i]);
}

// Flat form for rows too short to give a block work: element i of the M·C matrix.
__global__ void __launch_bounds__(kThreads)
    binary_flat_kernel(rwkvrt_bk_binary op, const float* a, const float* b, float* y, uint64_t n,
                       uint32_t C, uint32_t b_is_row) {
  gpu_kernel_start();
  for (uint64_t i = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += uint64_t(gridDim.x) * blockDim.x)
    y[i] = apply_binary(op, a[i], b_is_row ? b[i % C] : b[i]);
}

template <bool kVec>
__global__ void __launch_bounds__(kThreads)
    gather_kernel(const float* table, uint32_t C, const int32_t* ids, float* out) {
  gpu_kernel_start();
  const uint64_t m = blockIdx.x;
  const float* src = table + uint64_t(ids[m]) * C;
  float* dst = out + m * C;
  if (kVec) {
    for (uint32_t v = threadIdx.x; v < C / 4; v += blockDim.x)
      reinterpret_cast<float4*>(dst)[v] = reinterpret_cast<const float4*>(src)[v];
  } else {
    for (uint32_t c = threadIdx.x; c < C; c += blockDim.x) dst[c] = src[c];
  }
}

unsigned threads_for(uint64_t items) {
  return items >= 256 ? 256 : items >= 128 ? 128 : items >= 64 ? 64 : 32;
}

}  // namespace

gpuError_t launch_bias_act(const rwkvrt_bk_stream* s, float* y, uint64_t M, uint64_t N,
                           uint64_t ldy, const float* bias, int32_t act) {
  BiasActGroup g{};
  g.item[0] = BiasActItem{y, M, N, ldy, bias, act, 0, 0};
  g.n = 1;
  return launch_bias_act_group(s, g);
}

gpuError_t launch_bias_act_group(const rwkvrt_bk_stream* s, BiasActGroup& g) {
  for (uint32_t i = 0; i < g.n; ++i) {
    BiasActItem& e = g.item[i];
    e.vec = e.N % 4 == 0 && e.ldy % 4 == 0 && aligned16(e.y) && (!e.bias || aligned16(e.bias));
  }
  const uint64_t tiles =
      number_group_items(g, [](const BiasActItem& e) { return e.M * tiles_per_row(e.N); });
  if (tiles == 0) return gpuSuccess;
  const GpuLaunch l = launch_on(s, dim3(blocks_for(tiles, 1)), dim3(kThreads));
  return gpu_launch(l, bias_act_group_kernel, g);
}

gpuError_t launch_unary(const rwkvrt_bk_stream* s, rwkvrt_bk_unary op, const float* x, float* y,
                        uint64_t n) {
  if (n == 0) return gpuSuccess;
  const bool vec = aligned16(x) && aligned16(y);
  const GpuLaunch l =
      launch_on(s, dim3(blocks_for(vec ? (n + 3) / 4 : n, kThreads)), dim3(kThreads));
  return gpu_launch(l, unary_kernel, op, x, y, n, vec ? 1u : 0u);
}

gpuError_t launch_binary(const rwkvrt_bk_stream* s, rwkvrt_bk_binary op, const float* a,
                         const float* b, float* y, uint64_t M, uint64_t C, bool b_is_row) {
  if (M == 0 || C == 0) return gpuSuccess;
  if (C < 128) {
    const uint64_t n = M * C;
    const GpuLaunch l = launch_on(s, dim3(blocks_for(n, kThreads)), dim3(kThreads));
    return gpu_launch(l, binary_flat_kernel, op, a, b, y, n, uint32_t(C), b_is_row ? 1u : 0u);
  }
  const bool vec = C % 4 == 0 && aligned16(a) && aligned16(b) && aligned16(y);
  const GpuLaunch l = launch_on(s, dim3(unsigned(M)), dim3(threads_for(vec ? C / 4 : C)));
  return vec ? gpu_launch(l, binary_kernel<true>, op, a, b, y, uint32_t(C), b_is_row ? 1u : 0u)
             : gpu_launch(l, binary_kernel<false>, op, a, b, y, uint32_t(C), b_is_row ? 1u : 0u);
}

gpuError_t launch_value_residual(const rwkvrt_bk_stream* s, const float* v, const float* v_first,
                                 const float* gate, float* out, uint64_t n) {
  if (n == 0) return gpuSuccess;
  const GpuLaunch l = launch_on(s, dim3(blocks_for(n, kThreads)), dim3(kThreads));
  return gpu_launch(l, value_residual_kernel, v, v_first, gate, out, n);
}

gpuError_t launch_gather_rows(const rwkvrt_bk_stream* s, const float* table, uint64_t C,
                              const int32_t* ids, uint64_t M, float* out) {
  if (M == 0 || C == 0) return gpuSuccess;
  const bool vec = C % 4 == 0 && aligned16(table) && aligned16(out);
  const GpuLaunch l = launch_on(s, dim3(unsigned(M)), dim3(threads_for(vec ? C / 4 : C)));
  return vec ? gpu_launch(l, gather_kernel<true>, table, uint32_t(C), ids, out)
             : gpu_launch(l, gather_kernel<false>, table, uint32_t(C), ids, out);
}

}  // namespace rwkvrt::cuda
