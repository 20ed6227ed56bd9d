// RWKV-5/6 WKV, per head with state S[key i][value j] in fp32:
//   y_j = Σ_i r_i (S_ij + u_i k_i v_j),   S_ij ← exp(λ_i) S_ij + k_i v_j,
// λ constant per channel (v5) or per token (v6).  One block per (sequence, head), sequential over
// the tokens.  Thread (q, j) owns value column j for the keys [q·N/4, (q+1)·N/4), loaded and
// stored coalesced (consecutive threads, consecutive j).  The state update has no reduction, so
// the recurrence never waits on other threads; the output's reduction over the four key slices
// goes through shared memory once per chunk of 16 tokens.  Inputs are staged as in wkv7.cu.
#include "kernels.h"

namespace rwkvrt::cuda {
namespace {

struct Wkv5Params {
  uint64_t B, T, H;
  const float* r;
  const float* k;
  const float* v;
  const float* log_decay;
  uint32_t decay_per_token;
  const float* u;
  float* y;
  void* const* bases;
  uint64_t offset;
};

enum : int { kR, kK, kV, kW, kVectors };

template <int N>
struct Wkv5Shape {
  static constexpr int kP = 4;
  static constexpr int kKpt = N / kP;
  static constexpr int kThreads = N * kP;
  static constexpr int kChunk = N == 128 ? 8 : 16;
  static constexpr int kTpt = kChunk / kP;
};

template <int N>
__global__ void __launch_bounds__(Wkv5Shape<N>::kThreads) wkv5_kernel(Wkv5Params p) {
  using Sh = Wkv5Shape<N>;
  constexpr int KPT = Sh::kKpt, CH = Sh::kChunk, TPT = Sh::kTpt;
  __shared__ float stage[kVectors][CH][N];
  __shared__ float ypart[CH][Sh::kP][N];

  gpu_kernel_start();
  const uint64_t b = blockIdx.x / p.H, h = blockIdx.x % p.H;
  const uint64_t C = p.H * N, T = p.T;
  const int tid = threadIdx.x;
  const int j = tid % N, q = tid / N, i0 = q * KPT;  // value column, key slice
  const uint64_t in0 = b * T * C + h * N;
  const bool per_token = p.decay_per_token != 0;
  const int n_vec = per_token ? kVectors : kVectors - 1;

  const float* src[kVectors] = {p.r, p.k, p.v, p.log_decay};
  float pre[kVectors][TPT];
  auto prefetch = [&](uint64_t t0) {
#pragma unroll
    for (int vec = 0; vec < kVectors; ++vec)
#pragma unroll
      for (int u = 0; u < TPT; ++u) {
        const uint64_t t = t0 + uint64_t(u * Sh::kP + q);
        pre[vec][u] = vec < n_vec && t < T ? src[vec][in0 + t * C + j] : 0.0f;
      }
  };
  prefetch(0);

  float u_i[KPT], w_i[KPT];
#pragma unroll
  for (int ii = 0; ii < KPT; ++ii) {
    u_i[ii] = p.u[h * N + i0 + ii];
    w_i[ii] = per_token ? 0.0f : expf(p.log_decay[h * N + i0 + ii]);
  }
  float* S = state_of(p.bases, b, p.offset) + h * N * N + uint64_t(i0) * N + j;
  float s[KPT];
#pragma unroll
  for (int ii = 0; ii < KPT; ++ii) s[ii] = S[uint64_t(ii) * N];

  for (uint64_t t0 = 0; t0 < T; t0 += CH) {
#pragma unroll
    for (int vec = 0; vec < kVectors; ++vec)
#pragma unroll
      for (int u = 0; u < TPT; ++u)
        stage[vec][u * Sh::kP + q][j] = vec == kW ? expf(pre[vec][u]) : pre[vec][u];
    __syncthreads();
    if (t0 + CH < T) prefetch(t0 + CH);
    const int nt = int(T - t0 < uint64_t(CH) ? T - t0 : uint64_t(CH));
    for (int tt = 0; tt < nt; ++tt) {
      const float vj = stage[kV][tt][j];
      float acc[2] = {0.0f, 0.0f};
#pragma unroll
      for (int ii = 0; ii < KPT; ++ii) {
        const float kv = stage[kK][tt][i0 + ii] * vj;
        acc[ii % 2] = fmaf(stage[kR][tt][i0 + ii], fmaf(u_i[ii], kv, s[ii]), acc[ii % 2]);
        const float w = per_token ? stage[kW][tt][i0 + ii] : w_i[ii];
        s[ii] = fmaf(w, s[ii], kv);
      }
      ypart[tt][q][j] = acc[0] + acc[1];
    }
    __syncthreads();
    for (int e = tid; e < nt * N; e += Sh::kThreads) {
      const int tt = e / N, n = e % N;
      float y = 0.0f;
#pragma unroll
      for (int qq = 0; qq < Sh::kP; ++qq) y += ypart[tt][qq][n];
      p.y[in0 + (t0 + uint64_t(tt)) * C + n] = y;
    }
  }

#pragma unroll
  for (int ii = 0; ii < KPT; ++ii) S[uint64_t(ii) * N] = s[ii];
}

// Any head size: thread j owns value column j, state in global memory.
__global__ void wkv5_plain_kernel(Wkv5Params p, uint32_t N) {
  gpu_kernel_start();
  const uint64_t b = blockIdx.x / p.H, h = blockIdx.x % p.H;
  const uint64_t C = p.H * N;
  const uint32_t j = threadIdx.x;
  float* S = state_of(p.bases, b, p.offset) + h * N * N + j;
  for (uint64_t t = 0; t < p.T; ++t) {
    const uint64_t o = (b * p.T + t) * C + h * N;
    const float* lam = p.decay_per_token ? p.log_decay + o : p.log_decay + h * N;
    const float vj = p.v[o + j];
    float y = 0.0f;
    for (uint32_t i = 0; i < N; ++i) {
      const float kv = p.k[o + i] * vj;
      float& sij = S[uint64_t(i) * N];
      y = fmaf(p.r[o + i], fmaf(p.u[h * N + i], kv, sij), y);
      sij = fmaf(expf(lam[i]), sij, kv);
    }
    p.y[o + j] = y;
  }
}

}  // namespace

gpuError_t launch_wkv5(const rwkvrt_bk_stream* s, const rwkvrt_bk_wkv5_args& a) {
  if (a.B == 0 || a.T == 0 || a.H == 0) return gpuSuccess;
  const Wkv5Params p{a.B, a.T, a.H,           a.r,
                     a.k, a.v, a.log_decay,   a.decay_per_token,
                     a.u, a.y, a.state.bases, a.state.offset};
  const dim3 grid(unsigned(a.B * a.H));
  switch (a.N) {
    case 16:
      return gpu_launch(launch_on(s, grid, dim3(Wkv5Shape<16>::kThreads)), wkv5_kernel<16>, p);
    case 32:
      return gpu_launch(launch_on(s, grid, dim3(Wkv5Shape<32>::kThreads)), wkv5_kernel<32>, p);
    case 64:
      return gpu_launch(launch_on(s, grid, dim3(Wkv5Shape<64>::kThreads)), wkv5_kernel<64>, p);
    case 128:
      return gpu_launch(launch_on(s, grid, dim3(Wkv5Shape<128>::kThreads)), wkv5_kernel<128>, p);
    default:
      return gpu_launch(launch_on(s, grid, dim3(unsigned(a.N))), wkv5_plain_kernel, p,
                        uint32_t(a.N));
  }
}

}  // namespace rwkvrt::cuda
