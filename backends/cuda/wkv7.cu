// RWKV-7 WKV (generalised delta rule), per head with state S[value i][key j] in fp32:
//   S ← S·diag(w) − (S κ)(κ⊙a)ᵀ + v k̃ᵀ,   y = S r,   w = exp(λ).
// Sequential over the T tokens: decode steps, short prompts and head sizes the chunked kernel
// (wkv7_chunked.cu) does not cover.
// Each value row evolves on its own (S κ is a per-row sum), so a head's rows can be spread over
// SPLIT blocks; one block per (sequence, head) when there are enough of them to fill the GPU.
// The state is read once into registers and written back once: thread (i, q) owns row i, keys
// [q·N/4, (q+1)·N/4), and the four threads of a row are adjacent lanes, so the one reduction on
// the recurrence's critical path (S κ) is two shuffles.  The head's per-token inputs are staged
// through shared memory a chunk of tokens at a time, the next chunk's global loads issued before
// the current chunk is computed (software pipelining through registers); exp(λ) is taken once
// per key and token while staging.  Outputs leave through shared memory, coalesced.
//
// Head sizes 16, 32, 64 and 128 take this path; any other size runs a plain kernel (one thread
// per value row, state in global memory), correct but slow.
#include "kernels.h"

namespace rwkvrt::cuda {
namespace {

struct Wkv7Params {
  uint64_t B, T, H;
  const float* r;
  const float* log_decay;
  const float* k;
  const float* v;
  const float* kappa;
  const float* a;
  float* y;
  void* const* bases;
  uint64_t offset;
  // The fused step (v7_wkv) only: k is the raw key, and κ, k̃ and the value residual are
  // computed in the kernel from these.
  const float* k_k = nullptr;
  const float* k_a = nullptr;
  const float* v_first = nullptr;  // or null: no value residual
  const float* v_gate = nullptr;
  float* ktilde_out = nullptr;
  float* v_out = nullptr;
};

enum : int { kR, kW, kK, kKappa, kA, kV, kVectors };

// Thread layout for head size N with the head's value rows split over SPLIT blocks.
template <int N, int SPLIT>
struct Wkv7Shape {
  static constexpr int kP = 4;                 // threads per state row
  static constexpr int kKpt = N / kP;          // keys per thread
  static constexpr int kRows = N / SPLIT;      // value rows per block
  static constexpr int kThreads = kRows * kP;  // ≥ N: every key column has a staging thread
  static constexpr int kLanes = kThreads / N;  // staging threads per key column
  // Staged tokens per thread and vector: 4 (8 when the rows are split, so that chunks stay 8 to
  // 16 tokens long and the two barriers per chunk are amortised), 2 for 512-thread blocks
  // (shared memory ≤ 48 KB).
  static constexpr int kTpt = N >= 128 ? (SPLIT > 1 ? 4 : 2) : (SPLIT > 1 ? 8 : 4);
  // The token loop is unrolled by two only where registers are plentiful (split rows).
  static constexpr int kUnroll = SPLIT > 1 ? 2 : 1;
  static constexpr int kChunk = kTpt * kLanes;  // tokens staged at once (8 or 16)
  // Three resident blocks per SM keep enough state loads in flight for batched decode, which
  // streams every sequence's state once (at most 85 registers for N = 64).
  static constexpr int kMinBlocks = N >= 128 ? 1 : 3;
  // A staged row keeps 4 floats of padding after each key slice, so the four slices a quarter
  // warp reads with one 16-byte load fall in distinct banks.
  static constexpr int kRow = N + 4 * kP;
  __device__ static int col(int j) { return j + (j / kKpt) * 4; }
  static_assert(kThreads % N == 0, "staging needs a whole number of threads per key column");
};

template <int N, int SPLIT>
__global__ void __launch_bounds__(Wkv7Shape<N, SPLIT>::kThreads, Wkv7Shape<N, SPLIT>::kMinBlocks)
    wkv7_kernel(Wkv7Params p) {
  using Sh = Wkv7Shape<N, SPLIT>;
  constexpr int KPT = Sh::kKpt, CH = Sh::kChunk, TPT = Sh::kTpt, RB = Sh::kRows;
  __shared__ __align__(16) float stage[kVectors][CH][Sh::kRow];
  __shared__ float ybuf[CH][RB];

  gpu_kernel_start();
  const uint64_t head = blockIdx.x / SPLIT;
  const int part = int(blockIdx.x % SPLIT);
  const uint64_t b = head / p.H, h = head % p.H;
  const uint64_t C = p.H * N, T = p.T;
  const int tid = threadIdx.x;
  const int il = tid / Sh::kP, q = tid % Sh::kP, j0 = q * KPT;  // compute: local row, key slice
  const int i = part * RB + il;                                 // the head's value row
  const int pj0 = Sh::col(j0), pi = Sh::col(i);                 // their staged positions
  const int scol = tid % N, srow = tid / N;                     // staging: column, token lane
  const int pscol = Sh::col(scol);
  const uint64_t in0 = b * T * C + h * N;  // token 0 of this head

  const float* src[kVectors] = {p.r, p.log_decay, p.k, p.kappa, p.a, p.v};
  float pre[kVectors][TPT];
  auto prefetch = [&](uint64_t t0) {
#pragma unroll
    for (int vec = 0; vec < kVectors; ++vec)
#pragma unroll
      for (int u = 0; u < TPT; ++u) {
        const uint64_t t = t0 + uint64_t(u * Sh::kLanes + srow);
        pre[vec][u] = t < T ? src[vec][in0 + t * C + scol] : 0.0f;
      }
  };
  prefetch(0);

  float* S = state_of(p.bases, b, p.offset) + h * N * N + i * N + j0;
  const bool s_vec = reinterpret_cast<uintptr_t>(S) % 16 == 0;
  float s[KPT];
  if (s_vec) {
#pragma unroll
    for (int jj = 0; jj < KPT; jj += 4) {
      const float4 v4 = *reinterpret_cast<const float4*>(S + jj);
      s[jj] = v4.x;
      s[jj + 1] = v4.y;
      s[jj + 2] = v4.z;
      s[jj + 3] = v4.w;
    }
  } else {
#pragma unroll
    for (int jj = 0; jj < KPT; ++jj) s[jj] = S[jj];
  }

  for (uint64_t t0 = 0; t0 < T; t0 += CH) {
#pragma unroll
    for (int vec = 0; vec < kVectors; ++vec)
#pragma unroll
      for (int u = 0; u < TPT; ++u)
        stage[vec][u * Sh::kLanes + srow][pscol] = vec == kW ? expf(pre[vec][u]) : pre[vec][u];
    __syncthreads();
    if (t0 + CH < T) prefetch(t0 + CH);
    const int nt = int(T - t0 < uint64_t(CH) ? T - t0 : uint64_t(CH));
    // Unrolled by two (split rows) so the next token's shared-memory loads, which do not depend
    // on the state, can be issued while this token's reductions complete.
#pragma unroll Sh::kUnroll
    for (int tt = 0; tt < nt; ++tt) {
      // (S κ)_i with the old S: four partial sums shorten the dependency chain.
      float part4[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
      for (int jj = 0; jj < KPT; jj += 4) {
        const float4 k4 = *reinterpret_cast<const float4*>(&stage[kKappa][tt][pj0 + jj]);
        part4[0] = fmaf(s[jj], k4.x, part4[0]);
        part4[1] = fmaf(s[jj + 1], k4.y, part4[1]);
        part4[2] = fmaf(s[jj + 2], k4.z, part4[2]);
        part4[3] = fmaf(s[jj + 3], k4.w, part4[3]);
      }
      float sk = (part4[0] + part4[1]) + (part4[2] + part4[3]);
      sk += gpu_shfl_xor(sk, 1);
      sk += gpu_shfl_xor(sk, 2);
      const float vi = stage[kV][tt][pi];
      float yp[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
      for (int jj = 0; jj < KPT; jj += 4) {
        const float4 w4 = *reinterpret_cast<const float4*>(&stage[kW][tt][pj0 + jj]);
        const float4 k4 = *reinterpret_cast<const float4*>(&stage[kK][tt][pj0 + jj]);
        const float4 r4 = *reinterpret_cast<const float4*>(&stage[kR][tt][pj0 + jj]);
        const float4 c4 = *reinterpret_cast<const float4*>(&stage[kKappa][tt][pj0 + jj]);
        const float4 a4 = *reinterpret_cast<const float4*>(&stage[kA][tt][pj0 + jj]);
        const float w[4] = {w4.x, w4.y, w4.z, w4.w}, kt[4] = {k4.x, k4.y, k4.z, k4.w},
                    rr[4] = {r4.x, r4.y, r4.z, r4.w}, kap[4] = {c4.x, c4.y, c4.z, c4.w},
                    aa[4] = {a4.x, a4.y, a4.z, a4.w};
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int j = jj + e;
          const float beta = kap[e] * aa[e];  // κ⊙a, the removal direction
          s[j] = fmaf(s[j], w[e], fmaf(-sk, beta, vi * kt[e]));
          yp[e] = fmaf(s[j], rr[e], yp[e]);
        }
      }
      float y = (yp[0] + yp[1]) + (yp[2] + yp[3]);
      y += gpu_shfl_xor(y, 1);
      y += gpu_shfl_xor(y, 2);
      if (q == 0) ybuf[tt][il] = y;
    }
    __syncthreads();
    for (int e = tid; e < nt * RB; e += Sh::kThreads) {
      const int tt = e / RB, n = e % RB;
      p.y[in0 + (t0 + uint64_t(tt)) * C + part * RB + n] = ybuf[tt][n];
    }
  }

  if (s_vec) {
#pragma unroll
    for (int jj = 0; jj < KPT; jj += 4)
      *reinterpret_cast<float4*>(S + jj) = make_float4(s[jj], s[jj + 1], s[jj + 2], s[jj + 3]);
  } else {
#pragma unroll
    for (int jj = 0; jj < KPT; ++jj) S[jj] = s[jj];
  }
}

// One token (T = 1) for many heads, as in batched decode: every sequence's state is read once
// and written once, so the step is bound by state traffic, and what matters is how many bytes
// each SM keeps in flight.  This kernel stages nothing and keeps few registers: P lanes per value
// row (P = min(8, N/4)), lane l owning the keys g·4P + 4l … g·4P + 4l + 3 for g < N/(4P), so
// that each of a row's load instructions covers contiguous bytes; the per-head vectors are read
// straight from global memory (the rows of a head share them through L1).  Rows are numbered
// across (sequence, head, row); a whole row's lanes always sit in one warp.
//
// kPrep (the fused v7_wkv op): p.k is the raw key; each row's lanes compute the head's
// ‖k⊙k_k‖ (a reduction over their P lanes), then κ = k⊙k_k / ‖k⊙k_k‖ and k̃ = k⊙(1 + (a − 1)⊙k_a)
// as v7_key_prep does, and v' = v + (v_first − v)⊙v_gate as the mix op does; row 0 of each head
// writes k̃, lane 0 of each row writes its v'.  That saves the two kernels before the WKV.
template <int N, bool kPrep, int P>
__global__ void __launch_bounds__(256, 4) wkv7_step_kernel(Wkv7Params p) {
  constexpr int G = N / (4 * P);
  gpu_kernel_start();
  const uint64_t row = (uint64_t(blockIdx.x) * blockDim.x + threadIdx.x) / P;
  const int lane = int(threadIdx.x % P);
  // Lanes past the last row stay to the end: the shuffles below expect the whole warp.
  const bool valid = row < p.B * p.H * N;
  const uint64_t bh = valid ? row / N : 0, b = bh / p.H, h = bh % p.H;
  const int i = int(row % N);
  const uint64_t o = b * p.H * N + h * N;  // this head's vectors (T = 1)
  float* S = state_of(p.bases, valid ? b : 0, p.offset) + h * N * N + uint64_t(i) * N;
  const bool s_vec = reinterpret_cast<uintptr_t>(S) % 16 == 0;

  float4 s[G];
  if (valid) {
#pragma unroll
    for (int g = 0; g < G; ++g) {
      const int j = g * 4 * P + 4 * lane;
      if (s_vec) {
        s[g] = *reinterpret_cast<const float4*>(S + j);
      } else {
        s[g] = make_float4(S[j], S[j + 1], S[j + 2], S[j + 3]);
      }
    }
  } else {
#pragma unroll
    for (int g = 0; g < G; ++g) s[g] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
  }
  auto vec4 = [&](const float* base, int g) {
    return valid ? *reinterpret_cast<const float4*>(base + o + g * 4 * P + 4 * lane)
                 : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
  };
  // The per-head vectors k_k, k_a ([C], no sequence offset).
  auto head4 = [&](const float* base, int g) {
    return *reinterpret_cast<const float4*>(base + h * N + g * 4 * P + 4 * lane);
  };
  float norm = 1.0f;  // kPrep: max(‖k⊙k_k‖, 1e-12) of the head
  if (kPrep) {
    float n2 = 0.0f;
#pragma unroll
    for (int g = 0; g < G; ++g) {
      const float4 k = vec4(p.k, g), kk = head4(p.k_k, g);
      const float4 x = make_float4(k.x * kk.x, k.y * kk.y, k.z * kk.z, k.w * kk.w);
      n2 = fmaf(x.x, x.x, fmaf(x.y, x.y, fmaf(x.z, x.z, fmaf(x.w, x.w, n2))));
    }
#pragma unroll
    for (int m = 1; m < P; m <<= 1) n2 += gpu_shfl_xor(n2, m);
    norm = fmaxf(sqrtf(n2), 1e-12f);
  }
  // κ of keys g·4P + 4·lane …: read (wkv7) or computed from k and k_k (kPrep).
  auto kappa4 = [&](int g) {
    if (!kPrep) return vec4(p.kappa, g);
    const float4 k = vec4(p.k, g), kk = head4(p.k_k, g);
    return make_float4((k.x * kk.x) / norm, (k.y * kk.y) / norm, (k.z * kk.z) / norm,
                       (k.w * kk.w) / norm);
  };
  float sk = 0.0f;
#pragma unroll
  for (int g = 0; g < G; ++g) {
    const float4 c = kappa4(g);
    sk = fmaf(s[g].x, c.x, fmaf(s[g].y, c.y, fmaf(s[g].z, c.z, fmaf(s[g].w, c.w, sk))));
  }
#pragma unroll
  for (int m = 1; m < P; m <<= 1) sk += gpu_shfl_xor(sk, m);
  float vi = valid ? p.v[o + i] : 0.0f;
  if (kPrep && valid && p.v_first) {
    vi = fmaf(p.v_first[o + i] - vi, p.v_gate[o + i], vi);
    if (lane == 0) p.v_out[o + i] = vi;
  }
  float y = 0.0f;
#pragma unroll
  for (int g = 0; g < G; ++g) {
    const float4 c = kappa4(g), a = vec4(p.a, g), r = vec4(p.r, g), l = vec4(p.log_decay, g);
    float4 k = vec4(p.k, g);
    if (kPrep) {
      const float4 ka = head4(p.k_a, g);
      k = make_float4(k.x * (1.0f + (a.x - 1.0f) * ka.x), k.y * (1.0f + (a.y - 1.0f) * ka.y),
                      k.z * (1.0f + (a.z - 1.0f) * ka.z), k.w * (1.0f + (a.w - 1.0f) * ka.w));
      if (valid && i == 0) *reinterpret_cast<float4*>(p.ktilde_out + o + g * 4 * P + 4 * lane) = k;
    }
    float4& t = s[g];
    t.x = fmaf(t.x, expf(l.x), fmaf(-sk, c.x * a.x, vi * k.x));
    t.y = fmaf(t.y, expf(l.y), fmaf(-sk, c.y * a.y, vi * k.y));
    t.z = fmaf(t.z, expf(l.z), fmaf(-sk, c.z * a.z, vi * k.z));
    t.w = fmaf(t.w, expf(l.w), fmaf(-sk, c.w * a.w, vi * k.w));
    y = fmaf(t.x, r.x, fmaf(t.y, r.y, fmaf(t.z, r.z, fmaf(t.w, r.w, y))));
  }
#pragma unroll
  for (int m = 1; m < P; m <<= 1) y += gpu_shfl_xor(y, m);
  if (!valid) return;
  if (lane == 0) p.y[o + i] = y;
#pragma unroll
  for (int g = 0; g < G; ++g) {
    const int j = g * 4 * P + 4 * lane;
    if (s_vec) {
      *reinterpret_cast<float4*>(S + j) = s[g];
    } else {
      S[j] = s[g].x;
      S[j + 1] = s[g].y;
      S[j + 2] = s[g].z;
      S[j + 3] = s[g].w;
    }
  }
}

template <int N, bool kPrep>
gpuError_t launch_step(const rwkvrt_bk_stream* s, const Wkv7Params& p) {
  // 8 lanes per value row (N/4 for N < 32).  Measured at H = 64, B = 1024 on the H200: 8 lanes
  // 2652 GB/s of state traffic, 4 lanes 2539, 2 lanes 2247 (more bytes in flight per thread
  // did not help; the 2- and 4-lane forms also spill registers for N = 128).
  constexpr int P = N / 4 < 8 ? N / 4 : 8;
  constexpr uint64_t kThreads = 256;
  const uint64_t threads = p.B * p.H * N * P;
  const dim3 grid(unsigned((threads + kThreads - 1) / kThreads));
  return gpu_launch(launch_on(s, grid, dim3(unsigned(kThreads))), wkv7_step_kernel<N, kPrep, P>, p);
}

template <bool kPrep>
gpuError_t launch_step_head_size(const rwkvrt_bk_stream* s, const Wkv7Params& p, uint64_t N) {
  switch (N) {
    case 16:
      return launch_step<16, kPrep>(s, p);
    case 32:
      return launch_step<32, kPrep>(s, p);
    case 64:
      return launch_step<64, kPrep>(s, p);
    case 128:
      return launch_step<128, kPrep>(s, p);
    default:
      return gpuErrorInvalidValue;  // callers check step_head_size first
  }
}

bool aligned16(const float* v) {
  return reinterpret_cast<uintptr_t>(v) % 16 == 0;
}

// The step kernel reads the vectors with 16-byte loads.
bool vectors_aligned(const Wkv7Params& p) {
  for (const float* v : {p.r, p.log_decay, p.k, p.v, p.kappa, p.a})
    if (!aligned16(v)) return false;
  return true;
}

bool step_head_size(uint64_t N) {
  return N == 16 || N == 32 || N == 64 || N == 128;
}

// Any head size: thread i owns value row i of the state, kept in global memory.
__global__ void wkv7_plain_kernel(Wkv7Params p, uint32_t N) {
  gpu_kernel_start();
  const uint64_t b = blockIdx.x / p.H, h = blockIdx.x % p.H;
  const uint64_t C = p.H * N;
  const uint32_t i = threadIdx.x;
  float* S = state_of(p.bases, b, p.offset) + h * N * N + uint64_t(i) * N;
  for (uint64_t t = 0; t < p.T; ++t) {
    const uint64_t o = (b * p.T + t) * C + h * N;
    float sk = 0.0f;
    for (uint32_t j = 0; j < N; ++j) sk = fmaf(S[j], p.kappa[o + j], sk);
    const float vi = p.v[o + i];
    float y = 0.0f;
    for (uint32_t j = 0; j < N; ++j) {
      const float w = expf(p.log_decay[o + j]);
      const float s = fmaf(S[j], w, fmaf(-sk, p.kappa[o + j] * p.a[o + j], vi * p.k[o + j]));
      S[j] = s;
      y = fmaf(s, p.r[o + j], y);
    }
    p.y[o + i] = y;
  }
}

template <int N, int SPLIT>
gpuError_t launch_split(const rwkvrt_bk_stream* s, const Wkv7Params& p) {
  const dim3 grid(unsigned(p.B * p.H * SPLIT));
  return gpu_launch(launch_on(s, grid, dim3(Wkv7Shape<N, SPLIT>::kThreads)), wkv7_kernel<N, SPLIT>,
                    p);
}

// Rows of a head are split over 2 or 4 blocks when there are too few heads to occupy the GPU:
// the recurrence is a chain per token, so more, smaller blocks shorten the time per token (less
// shared-memory traffic per SM) rather than just adding throughput.
template <int N>
gpuError_t launch_head_size(const rwkvrt_bk_stream* s, const Wkv7Params& p) {
  const uint64_t heads = p.B * p.H, sms = uint64_t(s->ctx->sm_count);
  if (N >= 32 && heads * 4 <= 2 * sms) return launch_split<N, 4>(s, p);
  if (N >= 32 && heads * 2 <= 2 * sms) return launch_split<N, 2>(s, p);
  return launch_split<N, 1>(s, p);
}

// Sequences of at least wkv7_chunk_min_tokens tokens run the chunked kernels where they can.
bool chunked_path(const rwkvrt_bk_stream* s, uint64_t B, uint64_t T, uint64_t H, uint64_t N) {
  return T >= s->ctx->wkv7_chunk_min_tokens && wkv7_chunked_supports(B, T, H, N);
}

}  // namespace

gpuError_t launch_wkv7(rwkvrt_bk_stream* s, const rwkvrt_bk_wkv7_args& a, float* chunk_scratch) {
  if (a.B == 0 || a.T == 0 || a.H == 0) return gpuSuccess;
  Wkv7Params p{a.B, a.T,     a.H, a.r, a.log_decay,   a.k,
               a.v, a.kappa, a.a, a.y, a.state.bases, a.state.offset};
  if (a.T == 1 && p.B * p.H >= s->ctx->wkv7_step_min_heads && vectors_aligned(p) &&
      step_head_size(a.N))
    return launch_step_head_size<false>(s, p, a.N);
  if (chunked_path(s, a.B, a.T, a.H, a.N)) {
    if (!chunk_scratch)
      chunk_scratch =
          static_cast<float*>(s->scratch.get(wkv7_chunked_scratch_bytes(a.B, a.T, a.H, a.N)));
    if (!chunk_scratch) return gpuErrorMemoryAllocation;
    return launch_wkv7_chunked(s, a, chunk_scratch);
  }
  switch (a.N) {
    case 16:
      return launch_split<16, 1>(s, p);
    case 32:
      return launch_head_size<32>(s, p);
    case 64:
      return launch_head_size<64>(s, p);
    case 128:
      return launch_head_size<128>(s, p);
    default:
      return gpu_launch(launch_on(s, dim3(unsigned(a.B * a.H)), dim3(unsigned(a.N))),
                        wkv7_plain_kernel, p, uint32_t(a.N));
  }
}

gpuError_t launch_v7_wkv(rwkvrt_bk_stream* s, const rwkvrt_bk_v7_wkv_args& a) {
  if (a.B == 0 || a.T == 0 || a.H == 0) return gpuSuccess;
  const uint64_t M = a.B * a.T, C = a.H * a.N;
  bool fused = a.T == 1 && a.B * a.H >= s->ctx->wkv7_step_min_heads && step_head_size(a.N);
  for (const float* v :
       {a.r, a.log_decay, a.k, a.v, a.a, a.k_k, a.k_a, static_cast<const float*>(a.ktilde)})
    fused = fused && aligned16(v);
  if (fused) {
    Wkv7Params p{a.B, a.T,     a.H, a.r, a.log_decay,   a.k,
                 a.v, nullptr, a.a, a.y, a.state.bases, a.state.offset};
    p.k_k = a.k_k;
    p.k_a = a.k_a;
    p.v_first = a.v_first;
    p.v_gate = a.v_gate;
    p.ktilde_out = a.ktilde;
    p.v_out = a.v_out;
    return launch_step_head_size<true>(s, p, a.N);
  }
  // Prompts (and unaligned vectors): the three ops, κ (and the chunked WKV's matrices, when it
  // runs) through scratch.
  const uint64_t kappa_bytes = (M * C * sizeof(float) + 255) / 256 * 256;
  const bool chunked = chunked_path(s, a.B, a.T, a.H, a.N);
  const uint64_t chunk_bytes = chunked ? wkv7_chunked_scratch_bytes(a.B, a.T, a.H, a.N) : 0;
  auto* kappa = static_cast<float*>(s->scratch.get(kappa_bytes + chunk_bytes));
  if (!kappa) return gpuErrorMemoryAllocation;
  float* chunk_scratch = chunked ? kappa + kappa_bytes / sizeof(float) : nullptr;
  gpuError_t e = launch_v7_key_prep(s, {M, a.H, a.N, a.k, a.a, a.k_k, a.k_a, kappa, a.ktilde});
  if (e != gpuSuccess) return e;
  const float* v = a.v;
  if (a.v_first) {
    e = launch_value_residual(s, a.v, a.v_first, a.v_gate, a.v_out, M * C);
    if (e != gpuSuccess) return e;
    v = a.v_out;
  }
  return launch_wkv7(s,
                     {a.B, a.T, a.H, a.N, a.r, a.log_decay, a.ktilde, v, kappa, a.a, a.y, a.state},
                     chunk_scratch);
}

}  // namespace rwkvrt::cuda
