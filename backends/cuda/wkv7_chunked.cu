// RWKV-7 WKV over a sequence in chunks of kL tokens: the chunked form of RWKV-MATH §4.
//
// Per head, with state S[value i][key j], decays λ = log w, α = −κ, β = κ⊙a and the chunk's
// inclusive prefix sums c_t = Σ_{q≤t} λ_q (per key), the recurrence
//   S_t = S_{t−1}(diag(w_t) + α_t β_tᵀ) + v_t k̃_tᵀ,   y_t = S_t r_t
// is, over one chunk with entry state S₀ and z_t = S_{t−1} α_t:
//   z_t = S₀ Â_t + Σ_{s<t} (Â_t·B̌_s) z_s + (Â_t·Ǩ_s) v_s
//   y_t = S₀ R̂_t + Σ_{s≤t} (R̂_t·B̌_s) z_s + (R̂_t·Ǩ_s) v_s
//   S_L[i][j] = e^{c_{L−1,j}} (S₀[i][j] + Σ_s B̌_s[j] z_s[i] + Ǩ_s[j] v_s[i])
// with Â_t = α_t⊙e^{c_{t−1}}, R̂_t = r_t⊙e^{c_t}, B̌_s = β_s⊙e^{−c_s}, Ǩ_s = k̃_s⊙e^{−c_s}.  With
// the kL×kL matrices Mab = Â·B̌ᵀ, Mak = Â·Ǩᵀ (masked to s < t), Qrb = R̂·B̌ᵀ, Qrk = R̂·Ǩᵀ (masked to
// s ≤ t) and 𝒯 = (I − Mab)⁻¹ (unit lower triangular), the rows z_t, y_t of Z, Y are
//   Z = Â′·S₀ᵀ + Mak′·V,   Y = R̂′·S₀ᵀ + Qv·V,   S_L = S₀·diag(e^{c_{L−1}}) + Zᵀ·B̃ + Vᵀ·K̃
// where Â′ = 𝒯·Â, Mak′ = 𝒯·Mak, R̂′ = R̂ + Qrb·Â′, Qv = Qrk + Qrb·Mak′, B̃ = B̌⊙e^{c_{L−1}} and
// K̃ = Ǩ⊙e^{c_{L−1}}: everything that does not involve the state depends on the chunk's inputs
// alone.
//
// Factoring e^{c_t − c_s} into e^{c_t}·e^{−c_s} keeps every product exact to fp32 rounding as
// long as |c| stays far from fp32's exponent range.  v7's λ = −e^{−1/2}·σ(·) lies in (−0.61, 0],
// so |c| < 10 over a chunk; a chunk holding any λ < kMinChunkedLogDecay (other callers of the op)
// runs token by token in this kernel instead, with the same result.
//
// Two kernels.  The first computes, for every chunk of every head at once (the whole GPU busy),
// the state-independent factors Â′, R̂′, B̃, K̃, e^{c_{L−1}}, Mak′ and Qv into a scratch record.  The
// second walks the chunks of a head in order, one block per (sequence, head, slice of Nv = N/SPLIT
// value rows: rows evolve independently given the factors), with the state slice in shared memory
// for the whole sequence and the next chunk's record read into registers while the current one
// is used: per chunk it is three matrix products, a chain kL times shorter than token by token
// (wkv7.cu), which is what bounds a prompt there.  Products run on tensor cores as three TF32
// products per tile (hi·hi + hi·lo + lo·hi, where x ≈ hi + lo): close to fp32 accuracy (about
// 2⁻²⁰ relative per product, fp32 accumulation) at a fraction of the instructions of FMA loops.
//
// HIP: not built (WMMA is CUDA's API); the sequential kernel serves prompts there.
#include "kernels.h"

#if !defined(RWKVRT_GPU_HIP)
#include <mma.h>
#define RWKVRT_WKV7_CHUNKED 1
#endif

namespace rwkvrt::cuda {
namespace {

constexpr int kL = 16;  // tokens per chunk: one tensor-core tile

// A chunk's record in scratch (floats): four [kL][N] rows, e^{c_{L−1}} [N], two [kL][kL]
// matrices, a flag (1: run this chunk token by token) and padding to 32 bytes.
struct Record {
  // Row k of the four [kL][N] rows: 0 Â′, 1 R̂′, 2 B̃, 3 K̃ (the walk's first four shared rows).
  __host__ __device__ static constexpr uint64_t row(uint64_t N, int k) { return k * kL * N; }
  __host__ __device__ static constexpr uint64_t decay(uint64_t N) { return 4 * kL * N; }
  __host__ __device__ static constexpr uint64_t mak(uint64_t N) { return decay(N) + N; }
  __host__ __device__ static constexpr uint64_t qv(uint64_t N) { return mak(N) + kL * kL; }
  __host__ __device__ static constexpr uint64_t flag(uint64_t N) { return qv(N) + kL * kL; }
  __host__ __device__ static constexpr uint64_t floats(uint64_t N) { return flag(N) + 8; }
};

#if defined(RWKVRT_WKV7_CHUNKED)

namespace wmma = nvcuda::wmma;

// Per-token log decays below this make a chunk run token by token: with kL = 16 it bounds |c| by
// 60, so e^{±c} stays well inside fp32's range (≈ e^{±88}).
constexpr float kMinChunkedLogDecay = -60.0f / kL;

enum : int { kR, kLogDecay, kK, kKappa, kA, kV, kInputs };

struct ChunkParams {
  uint64_t T, H, chunks;
  const float* in[kInputs];
  float* records;
  float* y;
  void* const* bases;
  uint64_t offset;
};

template <class Layout>
struct WmmaLayout;
struct RowMajor {};  // element (m, k) of A at a[m·ld + k]; (k, n) of B at b[k·ld + n]
struct ColMajor {};  // element (m, k) of A at a[k·ld + m]; (k, n) of B at b[n·ld + k]
template <>
struct WmmaLayout<RowMajor> {
  using type = wmma::row_major;
};
template <>
struct WmmaLayout<ColMajor> {
  using type = wmma::col_major;
};
using Accumulator = wmma::fragment<wmma::accumulator, 16, 16, 8, float>;

// x = hi + lo + O(2⁻²¹·|x|) with hi and lo TF32 values: hi keeps the top 10 mantissa bits of x,
// lo = x − hi (exact in fp32) those of the remainder.  Truncating with masks costs three
// instructions; rounding (cvt.rna.tf32.f32) is emulated on some targets and costs several more.
template <class Frag>
__device__ __forceinline__ void split_tf32(Frag& hi, Frag& lo) {
  constexpr uint32_t kTf32Mask = 0xffffe000u;
#pragma unroll
  for (int e = 0; e < hi.num_elements; ++e) {
    const float x = hi.x[e], h = __uint_as_float(__float_as_uint(x) & kTf32Mask);
    hi.x[e] = h;
    lo.x[e] = __uint_as_float(__float_as_uint(x - h) & kTf32Mask);
  }
}

// One warp: acc += A·B with A 16×K, B K×16 (K a multiple of 8), pointers 32-byte aligned and
// strides multiples of 4 floats.
template <class LA, class LB>
__device__ __forceinline__ void warp_mma(Accumulator& acc, const float* a, int lda, const float* b,
                                         int ldb, int K) {
  using FragA = wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32,
                               typename WmmaLayout<LA>::type>;
  using FragB = wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32,
                               typename WmmaLayout<LB>::type>;
  for (int k = 0; k < K; k += 8) {
    FragA ah, al;
    FragB bh, bl;
    wmma::load_matrix_sync(ah, a + (std::is_same<LA, RowMajor>::value ? k : k * lda),
                           unsigned(lda));
    wmma::load_matrix_sync(bh, b + (std::is_same<LB, RowMajor>::value ? k * ldb : k),
                           unsigned(ldb));
    split_tf32(ah, al);
    split_tf32(bh, bl);
    // The small terms first, then the main one.
    wmma::mma_sync(acc, al, bh, acc);
    wmma::mma_sync(acc, ah, bl, acc);
    wmma::mma_sync(acc, ah, bh, acc);
  }
}

constexpr int kThreads = 256;  // both kernels: 8 warps
constexpr int kWarps = kThreads / kWarp;

// ---- kernel 1: every chunk's record
// ---------------------------------------------------------------

template <int N>
__global__ void __launch_bounds__(kThreads) wkv7_chunk_records_kernel(ChunkParams p) {
  constexpr int kLanes = kThreads / N, TPT = kL / kLanes, ROW = N + 4, MROW = kL + 4;
  static_assert(kLanes * TPT == kL, "staging covers the chunk exactly");
  enum : int { kAhat, kRhat, kBcheck, kKcheck, kAprime, kRows };
  enum : int { kMab, kMak, kQrb, kQrk, kInverse, kMakPrime, kMats };
  __shared__ __align__(32) float rows[kRows][kL][ROW];
  __shared__ __align__(32) float mats[kMats][kL][MROW];
  __shared__ float partial[kLanes][N];

  gpu_kernel_start();
  const uint64_t chunk = blockIdx.x % p.chunks, head = blockIdx.x / p.chunks;
  const uint64_t b = head / p.H, h = head % p.H, C = p.H * N, t0 = chunk * kL;
  float* rec = p.records + blockIdx.x * Record::floats(N);
  const int tid = threadIdx.x, warp = tid / kWarp, lane = tid % kWarp;
  const int scol = tid % N, srow = tid / N;  // key column, tokens srow·TPT …

  // Tokens past T read as zero: they then have no effect on anything.  Offsets within a chunk
  // are 32-bit (kL·C floats).
  float x[5][TPT];
  const int which[5] = {kR, kLogDecay, kK, kKappa, kA};
  const bool full = t0 + kL <= p.T;
  const int valid = full ? kL : int(p.T - t0);
#pragma unroll
  for (int n = 0; n < 5; ++n) {
    const float* src = p.in[which[n]] + (b * p.T + t0) * C + h * N + scol;
#pragma unroll
    for (int u = 0; u < TPT; ++u) {
      const int t = srow * TPT + u;
      x[n][u] = full || t < valid ? src[uint32_t(t) * uint32_t(C)] : 0.0f;
    }
  }
  float c[TPT];
  bool steep = false;
#pragma unroll
  for (int u = 0; u < TPT; ++u) {
    c[u] = (u ? c[u - 1] : 0.0f) + x[1][u];
    steep = steep || x[1][u] < kMinChunkedLogDecay;
  }
  partial[srow][scol] = c[TPT - 1];
  steep = __syncthreads_or(steep);
  if (tid == 0) rec[Record::flag(N)] = steep ? 1.0f : 0.0f;
  // Block-uniform.  The walk runs a flagged chunk from the plain inputs and never uses the rest
  // of its record, which stays unwritten.
  if (steep) return;
  float offset = 0.0f, total = 0.0f;
#pragma unroll
  for (int l = 0; l < kLanes; ++l) {
    if (l < srow) offset += partial[l][scol];
    total += partial[l][scol];
  }
  const float decay_all = expf(total);  // e^{c_{L−1}}
  float grow_prev = expf(offset);       // e^{c_{t−1}}
#pragma unroll
  for (int u = 0; u < TPT; ++u) {
    const int t = srow * TPT + u;
    const float ct = offset + c[u], e_pos = expf(ct), e_neg = expf(-ct);
    const float kap = x[3][u], beta = kap * x[4][u];
    rows[kAhat][t][scol] = -kap * grow_prev;
    rows[kRhat][t][scol] = x[0][u] * e_pos;
    rows[kBcheck][t][scol] = beta * e_neg;
    rows[kKcheck][t][scol] = x[2][u] * e_neg;
    rec[Record::row(N, 2) + t * N + scol] = beta * (e_neg * decay_all);     // B̃
    rec[Record::row(N, 3) + t * N + scol] = x[2][u] * (e_neg * decay_all);  // K̃
    grow_prev = e_pos;
  }
  if (srow == 0) rec[Record::decay(N) + scol] = decay_all;
  __syncthreads();

  // The four kL×kL matrices, one warp each, masked after the store.
  if (warp < 4) {
    Accumulator acc;
    wmma::fill_fragment(acc, 0.0f);
    warp_mma<RowMajor, ColMajor>(acc, &rows[warp < kQrb ? kAhat : kRhat][0][0], ROW,
                                 &rows[warp % 2 == 0 ? kBcheck : kKcheck][0][0], ROW, N);
    float* m = &mats[warp][0][0];
    wmma::store_matrix_sync(m, acc, MROW, wmma::mem_row_major);
    __syncwarp();
    const bool strict = warp < kQrb;  // the z system excludes s = t
    for (int e = lane; e < kL * kL; e += kWarp) {
      const int t = e / kL, s = e % kL;
      if (strict ? s >= t : s > t) m[t * MROW + s] = 0.0f;
    }
  }
  __syncthreads();
  // 𝒯 = (I − Mab)⁻¹ by forward substitution, lane = column: 𝒯[t][c] = δ_tc + Σ_{s<t}
  // Mab[t][s]·𝒯[s][c].
  if (warp == 0 && lane < kL) {
    float col[kL];
#pragma unroll
    for (int t = 0; t < kL; ++t) {
      float v = t == lane ? 1.0f : 0.0f;
#pragma unroll
      for (int s = 0; s < t; ++s) v = fmaf(mats[kMab][t][s], col[s], v);
      col[t] = v;
      mats[kInverse][t][lane] = v;
    }
  }
  __syncthreads();
  // Â′ = 𝒯·Â (N/16 tiles) and Mak′ = 𝒯·Mak.
  if (warp <= N / 16) {
    Accumulator acc;
    wmma::fill_fragment(acc, 0.0f);
    if (warp < N / 16) {
      warp_mma<RowMajor, RowMajor>(acc, &mats[kInverse][0][0], MROW, &rows[kAhat][0][warp * 16],
                                   ROW, kL);
      wmma::store_matrix_sync(&rows[kAprime][0][warp * 16], acc, ROW, wmma::mem_row_major);
      wmma::store_matrix_sync(rec + Record::row(N, 0) + warp * 16, acc, N, wmma::mem_row_major);
    } else {
      warp_mma<RowMajor, RowMajor>(acc, &mats[kInverse][0][0], MROW, &mats[kMak][0][0], MROW, kL);
      wmma::store_matrix_sync(&mats[kMakPrime][0][0], acc, MROW, wmma::mem_row_major);
      wmma::store_matrix_sync(rec + Record::mak(N), acc, kL, wmma::mem_row_major);
    }
  }
  __syncthreads();
  // R̂′ = R̂ + Qrb·Â′ and Qv = Qrk + Qrb·Mak′.
  if (warp <= N / 16) {
    Accumulator acc;
    if (warp < N / 16) {
      wmma::load_matrix_sync(acc, &rows[kRhat][0][warp * 16], ROW, wmma::mem_row_major);
      warp_mma<RowMajor, RowMajor>(acc, &mats[kQrb][0][0], MROW, &rows[kAprime][0][warp * 16], ROW,
                                   kL);
      wmma::store_matrix_sync(rec + Record::row(N, 1) + warp * 16, acc, N, wmma::mem_row_major);
    } else {
      wmma::load_matrix_sync(acc, &mats[kQrk][0][0], MROW, wmma::mem_row_major);
      warp_mma<RowMajor, RowMajor>(acc, &mats[kQrb][0][0], MROW, &mats[kMakPrime][0][0], MROW, kL);
      wmma::store_matrix_sync(rec + Record::qv(N), acc, kL, wmma::mem_row_major);
    }
  }
}

// ---- kernel 2: the chunks of a head in order
// --------------------------------------------------------

template <int N, int SPLIT>
struct WalkShape {
  static constexpr int kNv = N / SPLIT;  // value rows per block
  static constexpr int kRow = N + 4;     // padded stride of key-indexed rows
  static constexpr int kMRow = kL + 4;
  static constexpr int kQuads = N / 4;            // 4-key groups of a row
  static constexpr int kSEntries = kNv * kQuads;  // (i, quad) entries
  static constexpr int kSRounds = (kSEntries + kThreads - 1) / kThreads;
  static constexpr int kZEntries = kL * kNv;  // (t, i) entries
  static constexpr int kZRounds = kZEntries / kThreads;
  // Z and Y: 2·Nv/16 tiles, K (the N keys) split into kParts so that every warp has a piece.
  static constexpr int kTiles = 2 * kNv / 16;
  static constexpr int kParts = kWarps / kTiles;
  static constexpr int kPartK = N / kParts;
  static constexpr int kRecordVec4 = int(Record::floats(N) / 4);
  static constexpr int kRecordRounds = (kRecordVec4 + kThreads - 1) / kThreads;
  static_assert(kNv % 16 == 0, "value rows come in whole tensor-core tiles");
  static_assert(kZRounds * kThreads == kZEntries, "every thread has (t, i) entries");
  static_assert(kSEntries % kWarp == 0, "whole warps own (i, quad) entries");
  static_assert(kParts >= 1 && kPartK % 8 == 0 && kParts * kPartK == N, "whole K pieces");
};

template <int N, int SPLIT>
__global__ void __launch_bounds__(kThreads) wkv7_chunk_walk_kernel(ChunkParams p) {
  using Sh = WalkShape<N, SPLIT>;
  constexpr int NV = Sh::kNv, ROW = Sh::kRow, MROW = Sh::kMRow, PARTS = Sh::kParts;
  // Â′, R̂′, B̃, K̃ of the record; for a chunk run token by token κ, r, β, k̃ and w.
  enum : int { kAprime, kRprime, kBtilde, kKtilde, kDecay, kRows };
  enum : int { kMak, kQv, kMats };
  __shared__ __align__(32) float rows[kRows][kL][ROW];
  __shared__ __align__(32) float state[NV][ROW];
  __shared__ __align__(32) float mats[kMats][kL][MROW];
  __shared__ __align__(32) float vals[kL][NV];  // v of this block's value rows
  // Pieces of Z and Y over K; piece 0 then holds Z and Y.
  __shared__ __align__(32) float zpart[PARTS][kL][NV];
  __shared__ __align__(32) float ypart[PARTS][kL][NV];
  __shared__ __align__(16) float chunk_decay[N];  // e^{c_{L−1}}
  __shared__ float by_token_flag;

  gpu_walk_start(true);
  const uint64_t head = blockIdx.x / SPLIT;
  const int part = int(blockIdx.x % SPLIT), v0 = part * NV;
  const uint64_t b = head / p.H, h = head % p.H, C = p.H * N, T = p.T;
  const uint64_t in0 = b * T * C + h * N;  // token 0 of this head
  const int tid = threadIdx.x, warp = tid / kWarp;
  const float* rec0 = p.records + head * p.chunks * Record::floats(N);

  float* S = state_of(p.bases, b, p.offset) + h * N * N + uint64_t(v0) * N;
  for (int e = tid; e < NV * N; e += kThreads) state[e / N][e % N] = S[e];

  // The next chunk's record and values, in registers.
  float4 pre[Sh::kRecordRounds];
  float pre_v[Sh::kZRounds];
  auto prefetch = [&](uint64_t chunk) {
    const float4* rec = reinterpret_cast<const float4*>(rec0 + chunk * Record::floats(N));
#pragma unroll
    for (int rr = 0; rr < Sh::kRecordRounds; ++rr) {
      const int q = tid + rr * kThreads;
      if (q < Sh::kRecordVec4) pre[rr] = rec[q];
    }
    const float* v = p.in[kV] + in0 + chunk * kL * C + uint64_t(v0);
    const bool full = (chunk + 1) * kL <= T;
    const int valid = full ? kL : int(T - chunk * kL);
#pragma unroll
    for (int rr = 0; rr < Sh::kZRounds; ++rr) {
      const int e = tid + rr * kThreads, t = e / NV, i = e % NV;
      pre_v[rr] = full || t < valid ? v[uint32_t(t) * uint32_t(C) + uint32_t(i)] : 0.0f;
    }
  };
  prefetch(0);

  for (uint64_t t0 = 0, chunk = 0; t0 < T; t0 += kL, ++chunk) {
    const int nt = int(T - t0 < uint64_t(kL) ? T - t0 : uint64_t(kL));
    // The record to shared memory (key rows padded), after the previous chunk's last reads.
    __syncthreads();
#pragma unroll
    for (int rr = 0; rr < Sh::kRecordRounds; ++rr) {
      const int q = tid + rr * kThreads, o = 4 * q;
      if (q >= Sh::kRecordVec4) break;
      if (o < int(Record::decay(N))) {
        *reinterpret_cast<float4*>(&rows[o / (kL * N)][o / N % kL][o % N]) = pre[rr];
      } else if (o < int(Record::mak(N))) {
        *reinterpret_cast<float4*>(&chunk_decay[o - int(Record::decay(N))]) = pre[rr];
      } else if (o < int(Record::flag(N))) {
        const int m = o - int(Record::mak(N));
        *reinterpret_cast<float4*>(&mats[m / (kL * kL)][m / kL % kL][m % kL]) = pre[rr];
      } else if (o == int(Record::flag(N))) {
        by_token_flag = pre[rr].x;
      }
    }
#pragma unroll
    for (int rr = 0; rr < Sh::kZRounds; ++rr) {
      const int e = tid + rr * kThreads;
      vals[e / NV][e % NV] = pre_v[rr];
    }
    if (t0 + kL < T) prefetch(chunk + 1);  // overlaps this chunk's work
    __syncthreads();

    if (by_token_flag != 0.0f) {
      // Decays too steep for the factored form: S ← S·diag(w) − (S κ)(κ⊙a)ᵀ + v k̃ᵀ, y = S r,
      // token by token from the plain inputs.  Thread (i, quad) owns keys 4·quad … of row i; a
      // row's kQuads threads are adjacent lanes, so its two sums are shuffles.
      for (int e = tid; e < nt * N; e += kThreads) {
        const int t = e / N, j = e % N;
        const uint64_t o = in0 + (t0 + uint64_t(t)) * C + uint64_t(j);
        const float kap = p.in[kKappa][o];
        rows[kAprime][t][j] = kap;
        rows[kRprime][t][j] = p.in[kR][o];
        rows[kBtilde][t][j] = kap * p.in[kA][o];
        rows[kKtilde][t][j] = p.in[kK][o];
        rows[kDecay][t][j] = expf(p.in[kLogDecay][o]);
      }
      __syncthreads();
      for (int t = 0; t < nt; ++t) {
#pragma unroll
        for (int rr = 0; rr < Sh::kSRounds; ++rr) {
          const int e = tid + rr * kThreads;
          if (e >= Sh::kSEntries) break;  // warp-uniform
          const int i = e / Sh::kQuads, j = (e % Sh::kQuads) * 4;
          float4& s4 = *reinterpret_cast<float4*>(&state[i][j]);
          const float4 kap = *reinterpret_cast<const float4*>(&rows[kAprime][t][j]);
          float sk = s4.x * kap.x + s4.y * kap.y + s4.z * kap.z + s4.w * kap.w;
#pragma unroll
          for (int m = 1; m < Sh::kQuads; m <<= 1) sk += gpu_shfl_xor(sk, m);
          const float4 w = *reinterpret_cast<const float4*>(&rows[kDecay][t][j]);
          const float4 be = *reinterpret_cast<const float4*>(&rows[kBtilde][t][j]);
          const float4 kt = *reinterpret_cast<const float4*>(&rows[kKtilde][t][j]);
          const float4 r = *reinterpret_cast<const float4*>(&rows[kRprime][t][j]);
          const float vi = vals[t][i];
          s4.x = fmaf(s4.x, w.x, fmaf(-sk, be.x, vi * kt.x));
          s4.y = fmaf(s4.y, w.y, fmaf(-sk, be.y, vi * kt.y));
          s4.z = fmaf(s4.z, w.z, fmaf(-sk, be.z, vi * kt.z));
          s4.w = fmaf(s4.w, w.w, fmaf(-sk, be.w, vi * kt.w));
          float y = s4.x * r.x + s4.y * r.y + s4.z * r.z + s4.w * r.w;
#pragma unroll
          for (int m = 1; m < Sh::kQuads; m <<= 1) y += gpu_shfl_xor(y, m);
          if (e % Sh::kQuads == 0) ypart[0][t][i] = y;
        }
      }
    } else {
      // Z = Â′·S₀ᵀ + Mak′·V and Y = R̂′·S₀ᵀ + Qv·V: warp → (Z or Y, 16 value rows, piece of
      // the keys; piece 0 also takes the V term).
      {
        const int piece = warp % PARTS, tile = warp / PARTS, is_y = tile % 2, it = tile / 2;
        const int k0 = piece * Sh::kPartK;
        Accumulator acc;
        wmma::fill_fragment(acc, 0.0f);
        warp_mma<RowMajor, ColMajor>(acc, &rows[is_y ? kRprime : kAprime][0][k0], ROW,
                                     &state[it * 16][k0], ROW, Sh::kPartK);
        if (piece == 0)
          warp_mma<RowMajor, RowMajor>(acc, &mats[is_y ? kQv : kMak][0][0], MROW, &vals[0][it * 16],
                                       NV, kL);
        wmma::store_matrix_sync(is_y ? &ypart[piece][0][it * 16] : &zpart[piece][0][it * 16], acc,
                                NV, wmma::mem_row_major);
      }
      __syncthreads();
      // Sum the pieces; scale the state by e^{c_{L−1}} for the update.
      if (PARTS > 1) {
#pragma unroll
        for (int rr = 0; rr < Sh::kZRounds; ++rr) {
          const int e = tid + rr * kThreads, t = e / NV, i = e % NV;
          float z = zpart[0][t][i], y = ypart[0][t][i];
#pragma unroll
          for (int q = 1; q < PARTS; ++q) {
            z += zpart[q][t][i];
            y += ypart[q][t][i];
          }
          zpart[0][t][i] = z;
          ypart[0][t][i] = y;
        }
      }
#pragma unroll
      for (int rr = 0; rr < Sh::kSRounds; ++rr) {
        const int e = tid + rr * kThreads;
        if (e >= Sh::kSEntries) break;
        const int i = e / Sh::kQuads, j = (e % Sh::kQuads) * 4;
        float4& s4 = *reinterpret_cast<float4*>(&state[i][j]);
        const float4 d4 = *reinterpret_cast<const float4*>(&chunk_decay[j]);
        s4 = make_float4(s4.x * d4.x, s4.y * d4.y, s4.z * d4.z, s4.w * d4.w);
      }
      __syncthreads();
      // S ← S·diag(e^{c_{L−1}}) + Zᵀ·B̃ + Vᵀ·K̃, one 16×16 tile of the state per warp.
      for (int tile = warp; tile < (NV / 16) * (N / 16); tile += kWarps) {
        const int it = tile / (N / 16), jt = tile % (N / 16);
        float* c = &state[it * 16][jt * 16];
        Accumulator acc;
        wmma::load_matrix_sync(acc, c, ROW, wmma::mem_row_major);
        warp_mma<ColMajor, RowMajor>(acc, &zpart[0][0][it * 16], NV, &rows[kBtilde][0][jt * 16],
                                     ROW, kL);
        warp_mma<ColMajor, RowMajor>(acc, &vals[0][it * 16], NV, &rows[kKtilde][0][jt * 16], ROW,
                                     kL);
        wmma::store_matrix_sync(c, acc, ROW, wmma::mem_row_major);
      }
    }
    if (by_token_flag != 0.0f) __syncthreads();  // block-uniform: ypart written by the scans
    for (int e = tid; e < nt * NV; e += kThreads) {
      const int t = e / NV, i = e % NV;
      p.y[in0 + (t0 + uint64_t(t)) * C + v0 + i] = ypart[0][t][i];
    }
  }
  __syncthreads();
  for (int e = tid; e < NV * N; e += kThreads) S[e] = state[e / N][e % N];
}

template <int N, int SPLIT>
gpuError_t launch_walk(const rwkvrt_bk_stream* s, const ChunkParams& p, uint64_t heads) {
  const dim3 grid(unsigned(heads * SPLIT));
  return gpu_launch(launch_on(s, grid, dim3(kThreads)), wkv7_chunk_walk_kernel<N, SPLIT>, p);
}

template <int N>
gpuError_t launch_head_size(const rwkvrt_bk_stream* s, const ChunkParams& p, uint64_t heads) {
  const dim3 grid(unsigned(heads * p.chunks));
  gpuError_t e = gpu_launch(launch_on(s, grid, dim3(kThreads)), wkv7_chunk_records_kernel<N>, p);
  if (e != gpuSuccess) return e;
  // A head's value rows are split over several blocks when there are too few heads to occupy the
  // GPU, up to two blocks per SM: the blocks walk the chunks in parallel.  Slices are 16 or 32
  // rows (whole tensor-core tiles that fit the shared memory): N = 64 over 4 or 2 blocks (one
  // walk block per SM was measured slower, docs/CUDA.md), N = 32 over 2 or 1.
  const uint64_t sms = uint64_t(s->ctx->sm_count);
  if constexpr (N == 64) {
    return blocks_per_head(heads, sms, 2, 4, 2) == 4 ? launch_walk<N, 4>(s, p, heads)
                                                     : launch_walk<N, 2>(s, p, heads);
  } else {
    return blocks_per_head(heads, sms, 2, 2) == 2 ? launch_walk<N, 2>(s, p, heads)
                                                  : launch_walk<N, 1>(s, p, heads);
  }
}

#endif  // RWKVRT_WKV7_CHUNKED

}  // namespace

bool wkv7_chunked_supports(uint64_t B, uint64_t T, uint64_t H, uint64_t N) {
#if defined(RWKVRT_WKV7_CHUNKED)
  // The record kernel runs one block per (sequence, head, chunk) in a one-dimensional grid.
  const uint64_t blocks = B * H * ((T + kL - 1) / kL);
  return (N == 32 || N == 64) && blocks < (uint64_t(1) << 31);
#else
  (void)B;
  (void)T;
  (void)H;
  (void)N;
  return false;
#endif
}

uint64_t wkv7_chunked_scratch_bytes(uint64_t B, uint64_t T, uint64_t H, uint64_t N) {
  return B * H * ((T + kL - 1) / kL) * Record::floats(N) * sizeof(float);
}

gpuError_t launch_wkv7_chunked(const rwkvrt_bk_stream* s, const rwkvrt_bk_wkv7_args& a,
                               float* scratch) {
#if defined(RWKVRT_WKV7_CHUNKED)
  if (a.B == 0 || a.T == 0 || a.H == 0) return gpuSuccess;
  const ChunkParams p{a.T,     a.H, (a.T + kL - 1) / kL, {a.r, a.log_decay, a.k, a.kappa, a.a, a.v},
                      scratch, a.y, a.state.bases,       a.state.offset};
  const uint64_t heads = a.B * a.H;
  if (a.N == 64) return launch_head_size<64>(s, p, heads);
  if (a.N == 32) return launch_head_size<32>(s, p, heads);
#else
  (void)s;
  (void)a;
  (void)scratch;
#endif
  return gpuErrorInvalidValue;  // callers check wkv7_chunked_supports first
}

}  // namespace rwkvrt::cuda
