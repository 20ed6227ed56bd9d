// Host-side launchers of the backend's kernels, one op family per .cu file.  Each enqueues its
// work on the stream and returns the launch status; arguments were validated by plugin.cpp.
#pragma once

#include <cstdint>

#include "cuda_backend.h"

namespace rwkvrt::cuda {

// ---- matmul (gemv.cu, gemm_prep.cu) -------------------------------------------------------------

// y[m][:] (+)= W · x[m][:] for M ≤ kGemvMaxRows: a memory-bound kernel streaming W once with fp32
// activations and fp32 accumulation, exact for every storage.
constexpr uint64_t kGemvMaxRows = 8;
// With an epilogue each output is act(sum + bias[n]) (bias may be null, act a rwkvrt_bk_unary or
// RWKVRT_BK_NO_ACTIVATION), computed as the separate binary and unary ops would.
gpuError_t launch_gemv(const rwkvrt_bk_stream* s, const rwkvrt_bk_weight* w, const float* x,
                       uint64_t M, uint64_t ldx, float* y, uint64_t ldy, bool accumulate,
                       const float* bias = nullptr, int32_t act = RWKVRT_BK_NO_ACTIVATION);

// Several GEMVs with epilogues (items as validated by matmul_group: every M equal and ≤
// kGemvMaxRows) in as few launches as possible: consecutive items of the same storage and kernel
// shape run in one grid.
gpuError_t launch_gemv_group(const rwkvrt_bk_stream* s, const rwkvrt_bk_matmul_item* items,
                             uint32_t n);

// out[m][k] = x[m][k] rounded to the f16/bf16 `storage` type (f16 saturates at ±65504), zero for
// K ≤ k < Kp.  out is [M][Kp].  With `act` (a rwkvrt_bk_unary), act(x[m][k]) is rounded: the
// channel mix's ReLU² applied in the same pass.
gpuError_t launch_round_activations(const rwkvrt_bk_stream* s, WeightStorage storage,
                                    const float* x, uint64_t M, uint64_t ldx, uint64_t K,
                                    uint64_t Kp, void* out, int32_t act = RWKVRT_BK_NO_ACTIVATION);

// out[i] = x[i] rounded to `storage` (F16 or BF16) as launch_round_activations rounds, i < n.
gpuError_t launch_round_elements(const rwkvrt_bk_stream* s, WeightStorage storage, const float* x,
                                 uint64_t n, void* out);

// Flat groups (RoundGroup, BiasActGroup, CombineGroup below): item i owns the elements (or
// tiles) [item[i].first, item[i].first + size(item[i])) of one grid-stride index space.  Fills
// every `first` and `total`; returns the total.
template <class Group, class Size>
uint64_t number_group_items(Group& g, Size size) {
  g.total = 0;
  for (uint32_t i = 0; i < g.n; ++i) {
    g.item[i].first = g.total;
    g.total += size(g.item[i]);
  }
  return g.total;
}

// The item owning element i of a flat group (at most RWKVRT_BK_MAX_GROUP: a linear search).
template <class Group>
__device__ __forceinline__ uint32_t group_item_of(const Group& g, uint64_t i) {
  uint32_t it = 0;
  while (it + 1 < g.n && i >= g.item[it + 1].first) ++it;
  return it;
}

#if defined(__CUDACC__) || defined(__HIPCC__)
// Calls f(item, local) for each element of a flat group this thread owns: a grid-stride loop over
// [0, g.total), `local` being the element's index within its item.
template <class Group, class F>
__device__ __forceinline__ void for_each_group_element(const Group& g, F&& f) {
  for (uint64_t i = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < g.total;
       i += uint64_t(gridDim.x) * blockDim.x) {
    const auto& item = g.item[group_item_of(g, i)];
    f(item, i - item.first);
  }
}
#endif

// Activations of several GEMMs rounded in one launch (items' `first` filled by the launcher).
struct RoundItem {
  const float* x;
  uint64_t M, ldx, K, Kp;
  void* out;  // [M][Kp] of the storage type
  uint64_t first;
};
struct RoundGroup {
  RoundItem item[RWKVRT_BK_MAX_GROUP];
  uint32_t n;
  uint64_t total;
};
gpuError_t launch_round_group(const rwkvrt_bk_stream* s, WeightStorage storage, RoundGroup& g);

// Splits x into `parts` terms of the f16/bf16 `storage` type whose sum equals x to within
// u^parts relative (u = 2^-11 f16, 2^-8 bf16), written as [parts][M][Kp], zero for K ≤ k < Kp.
// f16 (2 parts): with row_scale, each row is first scaled by a power of two so its largest
// magnitude fits (row_scale[m] gets the inverse); without, values beyond ±65504 saturate.
// With `act`, act(x) is split, as for launch_round_activations.
gpuError_t launch_split_activations(const rwkvrt_bk_stream* s, WeightStorage storage, int parts,
                                    const float* x, uint64_t M, uint64_t ldx, uint64_t K,
                                    uint64_t Kp, void* out, float* row_scale,
                                    int32_t act = RWKVRT_BK_NO_ACTIVATION);

// The splits of several GEMMs' inputs in one launch (first_block filled by the launcher); each
// item as launch_split_activations with `parts` terms (row_scale null: no scaling).
struct SplitItem {
  const float* x;
  uint64_t M, ldx, K, Kp;
  void* out;         // [parts][M][Kp]
  float* row_scale;  // [M] or null
  uint32_t first_block;
};
struct SplitGroup {
  SplitItem item[RWKVRT_BK_MAX_GROUP];
  uint32_t n;
};
gpuError_t launch_split_group(const rwkvrt_bk_stream* s, WeightStorage storage, int parts,
                              SplitGroup& g);

// The sums of several split GEMMs (items of one panel: parts [P][M][N]) in one launch, each
// followed by y = act(y + bias) when it has an epilogue (first filled by the launcher).
struct CombineItem {
  const float* parts;
  const float* row_scale;  // [M] or null
  uint64_t M, N;
  float* y;
  uint64_t ldy;
  uint32_t accumulate;
  const float* bias;
  int32_t act;
  uint64_t first;
};
struct CombineGroup {
  CombineItem item[RWKVRT_BK_MAX_GROUP];
  uint32_t n;
  int P;
  uint64_t total;
};
gpuError_t launch_combine_group(const rwkvrt_bk_stream* s, CombineGroup& g);

// y[m][n] (+)= row_scale[m] · Σ_p part[p][m][n] for n < np, parts [P][M][np] fp32.
gpuError_t launch_combine_parts(const rwkvrt_bk_stream* s, const float* parts, int P,
                                const float* row_scale, uint64_t M, uint64_t np, float* y,
                                uint64_t ldy, bool accumulate);

// Rows [n0, n0 + np) of a Codes weight decoded into out [np][K] as fp32 (exact) or f16.
gpuError_t launch_dequant_codes(const rwkvrt_bk_stream* s, const rwkvrt_bk_weight* w, uint64_t n0,
                                uint64_t np, bool to_half, void* out);

// ---- small ops ---------------------------------------------------------------------------------

gpuError_t launch_gather_rows(const rwkvrt_bk_stream* s, const float* table, uint64_t C,
                              const int32_t* ids, uint64_t M, float* out);
gpuError_t launch_unary(const rwkvrt_bk_stream* s, rwkvrt_bk_unary op, const float* x, float* y,
                        uint64_t n);
// y[m][n] = act(y[m][n] + bias[n]) for M rows of N floats at stride ldy (a matmul's epilogue).
gpuError_t launch_bias_act(const rwkvrt_bk_stream* s, float* y, uint64_t M, uint64_t N,
                           uint64_t ldy, const float* bias, int32_t act);
// The epilogues of several GEMMs in one launch (items' `first` and `vec` filled by the
// launcher; `first` counts row tiles, not elements).
struct BiasActItem {
  float* y;
  uint64_t M, N, ldy;
  const float* bias;
  int32_t act;
  uint64_t first;
  uint32_t vec = 0;
};
struct BiasActGroup {
  BiasActItem item[RWKVRT_BK_MAX_GROUP];
  uint32_t n;
  uint64_t total;
};
gpuError_t launch_bias_act_group(const rwkvrt_bk_stream* s, BiasActGroup& g);
gpuError_t launch_binary(const rwkvrt_bk_stream* s, rwkvrt_bk_binary op, const float* a,
                         const float* b, float* y, uint64_t M, uint64_t C, bool b_is_row);
// out = v + (v_first − v)·gate over n floats (the v7 value residual, as the mix op computes it).
gpuError_t launch_value_residual(const rwkvrt_bk_stream* s, const float* v, const float* v_first,
                                 const float* gate, float* out, uint64_t n);
gpuError_t launch_layer_norm(const rwkvrt_bk_stream* s, const rwkvrt_bk_norm_args& a);
gpuError_t launch_group_norm(const rwkvrt_bk_stream* s, const rwkvrt_bk_norm_args& a);
gpuError_t launch_token_shift(const rwkvrt_bk_stream* s, const rwkvrt_bk_token_shift_args& a);
// LayerNorm, token shift and mix in one kernel (the three through scratch for unusual shapes).
// `out_type` F16/BF16: a.out holds that type, each output rounded as launch_round_activations.
gpuError_t launch_norm_shift_mix(rwkvrt_bk_stream* s, const rwkvrt_bk_norm_shift_mix_args& a,
                                 WeightStorage out_type = WeightStorage::F32);
gpuError_t launch_mix(const rwkvrt_bk_stream* s, const rwkvrt_bk_mix_args& a);

// ---- WKV and the v7 helpers --------------------------------------------------------------------

// How many blocks share the work of one head in a WKV walk over a prompt: the largest split of
// max_split, max_split / 2, … down to min_split (powers of two) with heads · split at most
// blocks_per_sm blocks on every SM, else min_split.  With few heads (one prompt) a split spreads
// each token's chain over more SMs; each kernel states its limits and the blocks per SM it
// measured best.
inline int blocks_per_head(uint64_t heads, uint64_t sms, uint64_t blocks_per_sm, int max_split,
                           int min_split = 1) {
  for (int split = max_split; split > min_split; split /= 2)
    if (heads * uint64_t(split) <= sms * blocks_per_sm) return split;
  return min_split;
}

gpuError_t launch_wkv4(const rwkvrt_bk_stream* s, const rwkvrt_bk_wkv4_args& a);
gpuError_t launch_wkv5(const rwkvrt_bk_stream* s, const rwkvrt_bk_wkv5_args& a);
// One token (T = 1): the step kernel; sequences: the chunked kernels where they support the
// shape and T ≥ wkv7_chunk_min_tokens, else the sequential kernel (wkv7.cu).  chunk_scratch: room
// for the chunked form (wkv7_chunked_scratch_bytes), or null to take it from the stream's scratch.
gpuError_t launch_wkv7(rwkvrt_bk_stream* s, const rwkvrt_bk_wkv7_args& a,
                       float* chunk_scratch = nullptr);
// The chunked form of RWKV-MATH §4 (wkv7_chunked.cu).
bool wkv7_chunked_supports(uint64_t B, uint64_t T, uint64_t H, uint64_t N);
uint64_t wkv7_chunked_scratch_bytes(uint64_t B, uint64_t T, uint64_t H, uint64_t N);
gpuError_t launch_wkv7_chunked(const rwkvrt_bk_stream* s, const rwkvrt_bk_wkv7_args& a,
                               float* scratch);
// v7_key_prep, the value residual and wkv7 as one op: one kernel for T = 1 (the step kernel
// computing κ, k̃ and v' itself), else the three, κ (and the chunked form's records) through
// scratch.
gpuError_t launch_v7_wkv(rwkvrt_bk_stream* s, const rwkvrt_bk_v7_wkv_args& a);
gpuError_t launch_v7_key_prep(const rwkvrt_bk_stream* s, const rwkvrt_bk_v7_key_args& a);
gpuError_t launch_v7_bonus(const rwkvrt_bk_stream* s, const rwkvrt_bk_v7_bonus_args& a);
// GroupNorm + bonus + gate, one warp per (row, head).  With `out_type` F16/BF16 the result goes
// to `out` ([M][H·N] of that type, rounded as launch_round_activations) and a.y is only read.
gpuError_t launch_v7_output(const rwkvrt_bk_stream* s, const rwkvrt_bk_v7_output_args& a,
                            WeightStorage out_type = WeightStorage::F32, void* out = nullptr);

#if defined(__CUDACC__) || defined(__HIPCC__)
// The fp32 state of sequence b in a state reference (bases[b] + offset bytes).
__device__ __forceinline__ float* state_of(void* const* bases, uint64_t b, uint64_t offset) {
  return reinterpret_cast<float*>(static_cast<char*>(bases[b]) + offset);
}
#endif

}  // namespace rwkvrt::cuda
