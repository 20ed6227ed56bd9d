// RWKV-5/6 WKV, per head with state S[key i][value j] in fp32:
//   y_j = Σ_i r_i (S_ij + u_i k_i v_j),   S_ij ← exp(λ_i) S_ij + k_i v_j,
// λ constant per channel (v5) or per token (v6).  Sequential over the tokens, one block per
// (sequence, head, slice of Nv = N/SPLIT value columns): columns evolve independently, so with
// few heads (a single prompt) a head is spread over SPLIT blocks and the whole GPU shares each
// token's work.  Thread (q, j) owns value column j of its slice for the KPT keys [q·KPT,
// (q+1)·KPT), loaded and stored coalesced (consecutive threads, consecutive j).  The state update
// has no reduction, so the recurrence never waits on other threads; the output's reduction over
// the key slices goes through shared memory once per chunk of 16 tokens (8 for N = 128).  r, k, e^λ
// and v of a chunk are staged in shared memory, the next chunk's global loads issued before the
// current chunk is computed (software pipelining through registers), e^λ taken once per element.
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

enum : int { kR, kK, kW, kKeyVectors };  // staged per key; v is staged per value column

// 4N threads; kP = 4·SPLIT key slices of KPT keys (a multiple of 4: float4 reads of the stage).
template <int N, int SPLIT>
struct Wkv5Shape {
  static constexpr int kThreads = 4 * N;
  static constexpr int kNv = N / SPLIT;
  static constexpr int kP = 4 * SPLIT;
  static constexpr int kKpt = N / kP;
  static constexpr int kChunk = N == 128 ? 8 : 16;
  static constexpr int kKeyLoads = kChunk * N / kThreads;    // staged key floats per thread
  static constexpr int kValLoads = kChunk * kNv / kThreads;  // staged values per thread
  static_assert(kKpt % 4 == 0 && kP * kKpt == N, "slices of whole float4s");
  static_assert(kValLoads >= 1 && kValLoads * kThreads == kChunk * kNv, "values cover the chunk");
};

template <int N, int SPLIT>
__global__ void __launch_bounds__(Wkv5Shape<N, SPLIT>::kThreads) wkv5_kernel(Wkv5Params p) {
  using Sh = Wkv5Shape<N, SPLIT>;
  constexpr int KPT = Sh::kKpt, CH = Sh::kChunk, NV = Sh::kNv, P = Sh::kP;
  constexpr int THREADS = Sh::kThreads;
  __shared__ __align__(16) float stage[kKeyVectors][CH][N];
  __shared__ float vals[CH][NV];
  __shared__ float ypart[CH][P][NV];

  gpu_walk_start(p.T > 1);
  const uint64_t head = blockIdx.x / SPLIT;
  const int v0 = int(blockIdx.x % SPLIT) * NV;
  const uint64_t b = head / p.H, h = head % p.H;
  const uint64_t C = p.H * N, T = p.T;
  const int tid = threadIdx.x;
  const int j = tid % NV, q = tid / NV, i0 = q * KPT;  // value column, key slice
  const uint64_t in0 = b * T * C + h * N;
  const bool per_token = p.decay_per_token != 0;

  float pre_key[kKeyVectors][Sh::kKeyLoads];  // r, k, λ
  float pre_val[Sh::kValLoads];
  auto prefetch = [&](uint64_t t0) {
#pragma unroll
    for (int m = 0; m < Sh::kKeyLoads; ++m) {
      const int e = tid + m * THREADS, t = e / N, i = e % N;
      const bool in = t0 + uint64_t(t) < T;
      const uint64_t o = in0 + (t0 + uint64_t(t)) * C + uint64_t(i);
      pre_key[kR][m] = in ? p.r[o] : 0.0f;
      pre_key[kK][m] = in ? p.k[o] : 0.0f;
      pre_key[kW][m] = !in ? 0.0f : per_token ? p.log_decay[o] : p.log_decay[h * N + i];
    }
#pragma unroll
    for (int m = 0; m < Sh::kValLoads; ++m) {
      const int e = tid + m * THREADS, t = e / NV, jj = e % NV;
      const bool in = t0 + uint64_t(t) < T;
      pre_val[m] = in ? p.v[in0 + (t0 + uint64_t(t)) * C + uint64_t(v0 + jj)] : 0.0f;
    }
  };
  prefetch(0);

  float u_i[KPT];
#pragma unroll
  for (int ii = 0; ii < KPT; ++ii) u_i[ii] = p.u[h * N + i0 + ii];
  float* S = state_of(p.bases, b, p.offset) + h * N * N + uint64_t(i0) * N + uint64_t(v0 + j);
  float s[KPT];
#pragma unroll
  for (int ii = 0; ii < KPT; ++ii) s[ii] = S[uint64_t(ii) * N];

  for (uint64_t t0 = 0; t0 < T; t0 += CH) {
#pragma unroll
    for (int m = 0; m < Sh::kKeyLoads; ++m) {
      const int e = tid + m * THREADS;
      stage[kR][e / N][e % N] = pre_key[kR][m];
      stage[kK][e / N][e % N] = pre_key[kK][m];
      stage[kW][e / N][e % N] = expf(pre_key[kW][m]);
    }
#pragma unroll
    for (int m = 0; m < Sh::kValLoads; ++m) {
      const int e = tid + m * THREADS;
      vals[e / NV][e % NV] = pre_val[m];
    }
    __syncthreads();
    if (t0 + CH < T) prefetch(t0 + CH);
    const int nt = int(T - t0 < uint64_t(CH) ? T - t0 : uint64_t(CH));
    for (int tt = 0; tt < nt; ++tt) {
      const float vj = vals[tt][j];
      float acc[2] = {0.0f, 0.0f};
#pragma unroll
      for (int g = 0; g < KPT; g += 4) {
        const float4 r4 = *reinterpret_cast<const float4*>(&stage[kR][tt][i0 + g]);
        const float4 k4 = *reinterpret_cast<const float4*>(&stage[kK][tt][i0 + g]);
        const float4 w4 = *reinterpret_cast<const float4*>(&stage[kW][tt][i0 + g]);
        const float rv[4] = {r4.x, r4.y, r4.z, r4.w}, kv4[4] = {k4.x, k4.y, k4.z, k4.w},
                    wv[4] = {w4.x, w4.y, w4.z, w4.w};
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int ii = g + e;
          const float kv = kv4[e] * vj;
          acc[ii % 2] = fmaf(rv[e], fmaf(u_i[ii], kv, s[ii]), acc[ii % 2]);
          s[ii] = fmaf(wv[e], s[ii], kv);
        }
      }
      ypart[tt][q][j] = acc[0] + acc[1];
    }
    __syncthreads();
    for (int e = tid; e < nt * NV; e += THREADS) {
      const int tt = e / NV, n = e % NV;
      float y = 0.0f;
#pragma unroll
      for (int qq = 0; qq < P; ++qq) y += ypart[tt][qq][n];
      p.y[in0 + (t0 + uint64_t(tt)) * C + uint64_t(v0 + n)] = y;
    }
  }

#pragma unroll
  for (int ii = 0; ii < KPT; ++ii) S[uint64_t(ii) * N] = s[ii];
}

// Any head size: thread j owns value column j, state in global memory.
__global__ void wkv5_plain_kernel(Wkv5Params p, uint32_t N) {
  gpu_walk_start(p.T > 1);
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

template <int N, int SPLIT>
gpuError_t launch_staged(const rwkvrt_bk_stream* s, const Wkv5Params& p) {
  const dim3 grid(unsigned(p.B * p.H * SPLIT));
  return gpu_launch(launch_on(s, grid, dim3(Wkv5Shape<N, SPLIT>::kThreads)), wkv5_kernel<N, SPLIT>,
                    p);
}

// A head's columns are split over 2 or 4 blocks while there is at most one block per SM, as far
// as the head size allows: slices of whole float4 key groups and at least one staged value per
// thread give 4 for N = 64, 2 for N = 32 and 128, none for N = 16.  Measured on the H200 (4096
// tokens, N = 64): H = 32 778 → 371 µs with 4 blocks per head; H = 64 777 → 480 µs with 2, but
// 548 µs with 4 (two blocks per SM: the SM's issue slots, not the chain per token, then bound
// each token).
template <int N>
gpuError_t launch_head_size(const rwkvrt_bk_stream* s, const Wkv5Params& p) {
  constexpr int kMaxSplit = N == 64 ? 4 : N >= 32 ? 2 : 1;
  const int split = blocks_per_head(p.B * p.H, uint64_t(s->ctx->sm_count), 1, kMaxSplit);
  if constexpr (kMaxSplit >= 4) {
    if (split == 4) return launch_staged<N, 4>(s, p);
  }
  if constexpr (kMaxSplit >= 2) {
    if (split == 2) return launch_staged<N, 2>(s, p);
  }
  return launch_staged<N, 1>(s, p);
}

}  // namespace

gpuError_t launch_wkv5(const rwkvrt_bk_stream* s, const rwkvrt_bk_wkv5_args& a) {
  if (a.B == 0 || a.T == 0 || a.H == 0) return gpuSuccess;
  const Wkv5Params p{a.B, a.T, a.H,           a.r,
                     a.k, a.v, a.log_decay,   a.decay_per_token,
                     a.u, a.y, a.state.bases, a.state.offset};
  switch (a.N) {
    case 16:
      return launch_head_size<16>(s, p);
    case 32:
      return launch_head_size<32>(s, p);
    case 64:
      return launch_head_size<64>(s, p);
    case 128:
      return launch_head_size<128>(s, p);
    default: {
      const dim3 grid(unsigned(a.B * a.H));
      return gpu_launch(launch_on(s, grid, dim3(unsigned(a.N))), wkv5_plain_kernel, p,
                        uint32_t(a.N));
    }
  }
}

}  // namespace rwkvrt::cuda
