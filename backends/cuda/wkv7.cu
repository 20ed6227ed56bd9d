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

  gpu_walk_start(p.T > 1);
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
// each SM keeps in flight.  This kernel stages nothing: P lanes per value row (P = min(8, N/4)),
// lane l owning the keys g·4P + 4l … g·4P + 4l + 3 for g < N/(4P), so that each of a row's load
// instructions covers contiguous bytes; the per-head vectors are read straight from global
// memory (the lanes of a head share them through L1).  Each group of P lanes owns R consecutive
// value rows of one head: the per-key vectors (κ, κ⊙a, k̃, e^{log w}, r) are loaded and computed
// once for the R rows, so that with many heads (R = 4) the L1 traffic and the exponentials per
// state element drop by 4 and the kernel streams the state instead of waiting on L1; with few
// heads (R = 1) there are more, shorter threads, which matters more.  Rows are numbered across
// (sequence, head, row); a group's lanes always sit in one warp.
//
// kPrep (the fused v7_wkv op, launched with R = 1 only): p.k is the raw key; each group's lanes
// compute the head's ‖k⊙k_k‖ (a reduction over their P lanes), then κ = k⊙k_k / ‖k⊙k_k‖ and
// k̃ = k⊙(1 + (a − 1)⊙k_a) as v7_key_prep does, and v' = v + (v_first − v)⊙v_gate as the mix op
// does; the group holding row 0 of a head writes k̃, lane 0 of each group writes its rows' v'.
// That saves the two kernels before the WKV.
template <int N, bool kPrep, int P, int R>
// Four blocks per SM where the registers allow it (N = 128 or R > 1 need more than 64 per thread).
__global__ void __launch_bounds__(256, R == 1 && N < 128 ? 4 : 2) wkv7_step_kernel(Wkv7Params p) {
  constexpr int G = N / (4 * P);
  static_assert(N % R == 0, "a group's rows lie in one head");
  gpu_kernel_start();
  const uint64_t row0 = (uint64_t(blockIdx.x) * blockDim.x + threadIdx.x) / P * R;
  const int lane = int(threadIdx.x % P);
  // Groups past the last row stay to the end: the shuffles below expect the whole warp.
  const bool valid = row0 < p.B * p.H * N;
  const uint64_t bh = valid ? row0 / N : 0, b = bh / p.H, h = bh % p.H;
  const int i0 = int(row0 % N);
  const uint64_t o = b * p.H * N + h * N;  // this head's vectors (T = 1)
  float* S = state_of(p.bases, valid ? b : 0, p.offset) + h * N * N + uint64_t(i0) * N;
  const bool s_vec = reinterpret_cast<uintptr_t>(S) % 16 == 0;

  float4 s[R][G];
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int g = 0; g < G; ++g) {
      const float* src = S + uint64_t(r) * N + g * 4 * P + 4 * lane;
      if (!valid)
        s[r][g] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      else if (s_vec)
        s[r][g] = *reinterpret_cast<const float4*>(src);
      else
        s[r][g] = make_float4(src[0], src[1], src[2], src[3]);
    }
  auto vec4 = [&](const float* base, int g) {
    return valid ? *reinterpret_cast<const float4*>(base + o + g * 4 * P + 4 * lane)
                 : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
  };
  // The per-head vectors k_k, k_a ([C], no sequence offset).
  auto head4 = [&](const float* base, int g) {
    return *reinterpret_cast<const float4*>(base + h * N + g * 4 * P + 4 * lane);
  };
  auto mul4 = [](float4 x, float4 y) {
    return make_float4(x.x * y.x, x.y * y.y, x.z * y.z, x.w * y.w);
  };
  // This lane's keys: κ (read, or k⊙k_k before normalising), the key added (k or k̃), a.
  float4 kappa[G], key[G], av[G];
#pragma unroll
  for (int g = 0; g < G; ++g) {
    key[g] = vec4(p.k, g);
    av[g] = vec4(p.a, g);
    kappa[g] = kPrep ? mul4(key[g], head4(p.k_k, g)) : vec4(p.kappa, g);
  }
  if (kPrep) {
    float n2 = 0.0f;
#pragma unroll
    for (int g = 0; g < G; ++g) {
      const float4 x = kappa[g];
      n2 = fmaf(x.x, x.x, fmaf(x.y, x.y, fmaf(x.z, x.z, fmaf(x.w, x.w, n2))));
    }
#pragma unroll
    for (int m = 1; m < P; m <<= 1) n2 += gpu_shfl_xor(n2, m);
    const float norm = fmaxf(sqrtf(n2), 1e-12f);  // max(‖k⊙k_k‖, 1e-12) of the head
#pragma unroll
    for (int g = 0; g < G; ++g) {
      const float4 x = kappa[g], a = av[g], ka = head4(p.k_a, g);
      kappa[g] = make_float4(x.x / norm, x.y / norm, x.z / norm, x.w / norm);
      const float4 k = key[g];
      key[g] = make_float4(k.x * (1.0f + (a.x - 1.0f) * ka.x), k.y * (1.0f + (a.y - 1.0f) * ka.y),
                           k.z * (1.0f + (a.z - 1.0f) * ka.z), k.w * (1.0f + (a.w - 1.0f) * ka.w));
      if (valid && i0 == 0)
        *reinterpret_cast<float4*>(p.ktilde_out + o + g * 4 * P + 4 * lane) = key[g];
    }
  }
  // sk_r = Σ_j S[r][j] κ_j, reduced over the group's lanes.
  float sk[R];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    float acc = 0.0f;
#pragma unroll
    for (int g = 0; g < G; ++g) {
      const float4 c = kappa[g], t = s[r][g];
      acc = fmaf(t.x, c.x, fmaf(t.y, c.y, fmaf(t.z, c.z, fmaf(t.w, c.w, acc))));
    }
#pragma unroll
    for (int m = 1; m < P; m <<= 1) acc += gpu_shfl_xor(acc, m);
    sk[r] = acc;
  }
  float vi[R];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    vi[r] = valid ? p.v[o + i0 + r] : 0.0f;
    if (kPrep && valid && p.v_first) {
      vi[r] = fmaf(p.v_first[o + i0 + r] - vi[r], p.v_gate[o + i0 + r], vi[r]);
      if (lane == 0) p.v_out[o + i0 + r] = vi[r];
    }
  }
  float y[R];
#pragma unroll
  for (int r = 0; r < R; ++r) y[r] = 0.0f;
#pragma unroll
  for (int g = 0; g < G; ++g) {
    const float4 rr = vec4(p.r, g), l = vec4(p.log_decay, g);
    const float4 w = make_float4(expf(l.x), expf(l.y), expf(l.z), expf(l.w));
    const float4 ca = mul4(kappa[g], av[g]), k = key[g];
#pragma unroll
    for (int r = 0; r < R; ++r) {
      float4& t = s[r][g];
      t.x = fmaf(t.x, w.x, fmaf(-sk[r], ca.x, vi[r] * k.x));
      t.y = fmaf(t.y, w.y, fmaf(-sk[r], ca.y, vi[r] * k.y));
      t.z = fmaf(t.z, w.z, fmaf(-sk[r], ca.z, vi[r] * k.z));
      t.w = fmaf(t.w, w.w, fmaf(-sk[r], ca.w, vi[r] * k.w));
      y[r] = fmaf(t.x, rr.x, fmaf(t.y, rr.y, fmaf(t.z, rr.z, fmaf(t.w, rr.w, y[r]))));
    }
  }
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int m = 1; m < P; m <<= 1) y[r] += gpu_shfl_xor(y[r], m);
  if (!valid) return;
  if (lane == 0)
#pragma unroll
    for (int r = 0; r < R; ++r) p.y[o + i0 + r] = y[r];
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int g = 0; g < G; ++g) {
      float* dst = S + uint64_t(r) * N + g * 4 * P + 4 * lane;
      if (s_vec) {
        *reinterpret_cast<float4*>(dst) = s[r][g];
      } else {
        dst[0] = s[r][g].x;
        dst[1] = s[r][g].y;
        dst[2] = s[r][g].z;
        dst[3] = s[r][g].w;
      }
    }
}

// Lanes per value row of the step kernel: 8 (N/4 for N < 32).  Measured at H = 64, B = 1024 on
// the H200 with one row per group: 8 lanes 2652 GB/s of state traffic, 4 lanes 2539, 2 lanes
// 2247 (the 2- and 4-lane forms also spill registers for N = 128).
constexpr int step_lanes(int N) {
  return N / 4 < 8 ? N / 4 : 8;
}
// Rows per lane group in the many-heads form (N = 128 spills registers with 4).
constexpr int step_wide_rows(int N) {
  return N >= 128 ? 2 : 4;
}
constexpr uint64_t kStepThreads = 256;

uint64_t wide_step_blocks(uint64_t B, uint64_t H, uint64_t N) {
  const uint64_t lanes = uint64_t(step_lanes(int(N))), rows = uint64_t(step_wide_rows(int(N)));
  return (B * H * N / rows * lanes + kStepThreads - 1) / kStepThreads;
}

// The many-heads form (several value rows per lane group) once it still gives every SM four
// blocks (RWKVRT_CUDA_WKV7_STEP_ROWS=1 turns it off).  Measured on the H200, H = 64, B = 1024:
// 2582 → 3795 GB/s of state traffic (docs/CUDA.md).
bool wide_step(const rwkvrt_bk_stream* s, uint64_t B, uint64_t H, uint64_t N) {
  return s->ctx->wkv7_wide_step && wide_step_blocks(B, H, N) >= 4 * uint64_t(s->ctx->sm_count);
}

template <int N, bool kPrep>
gpuError_t launch_step(const rwkvrt_bk_stream* s, const Wkv7Params& p) {
  constexpr int P = step_lanes(N);
  // The fused op (kPrep) takes the wide form never: launch_v7_wkv runs the separate key
  // preparation before the plain kernel then, which is faster with many heads.
  if (!kPrep && wide_step(s, p.B, p.H, N))
    return gpu_launch(
        launch_on(s, dim3(unsigned(wide_step_blocks(p.B, p.H, N))), dim3(unsigned(kStepThreads))),
        wkv7_step_kernel<N, false, P, step_wide_rows(N)>, p);
  const uint64_t threads = p.B * p.H * N * P;
  const dim3 grid(unsigned((threads + kStepThreads - 1) / kStepThreads));
  return gpu_launch(launch_on(s, grid, dim3(unsigned(kStepThreads))),
                    wkv7_step_kernel<N, kPrep, P, 1>, p);
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
  gpu_walk_start(p.T > 1);
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
// Up to two blocks per SM.
template <int N>
gpuError_t launch_head_size(const rwkvrt_bk_stream* s, const Wkv7Params& p) {
  switch (blocks_per_head(p.B * p.H, uint64_t(s->ctx->sm_count), 2, N >= 32 ? 4 : 1)) {
    case 4:
      return launch_split<N, 4>(s, p);
    case 2:
      return launch_split<N, 2>(s, p);
    default:
      return launch_split<N, 1>(s, p);
  }
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
  // One kernel for a single token, unless there are so many heads that the plain step kernel's
  // wide form pays for the separate key preparation: measured on the H200 (H = 64, B = 1024),
  // the fused kernel moves 2.5 TB/s of state (the per-row key preparation costs more than the
  // launch it saves), key preparation + the wide kernel about 3.8.
  bool fused = a.T == 1 && a.B * a.H >= s->ctx->wkv7_step_min_heads && step_head_size(a.N) &&
               !wide_step(s, a.B, a.H, a.N);
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
  // Prompts, steps with many heads and unaligned vectors: the three ops, κ (and the chunked
  // WKV's matrices, when it runs) through scratch.
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
