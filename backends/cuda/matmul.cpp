// The matmul op: y[M][N] (+)= x[M][K] · Wᵀ, dispatched on the number of activation rows M and the
// weight storage.  Every default path keeps fp32-level accuracy, so sequence mode (large M)
// matches RNN mode (M = 1) as on the CPU backend.
//
//   M ≤ 8 (decode)              gemv.cu: weights streamed once, fp32 activations, exact.
//   F32 weights, M > 8          cuBLAS SGEMM in true fp32 (no TF32): matches the reference to
//                               fp32 rounding.
//   F16/BF16, 8 < M < 256       "split" tensor-core GEMM: x = Σ_p x_p with x_p of the weight type
//                               (2 f16 terms, rows scaled by powers of two so they never
//                               overflow; 3 bf16 terms), stacked as 2M or 3M rows of one GEMM
//                               (the weights are still read once) and summed after.  Products
//                               are exact in fp32 and accumulated in fp32: fp32 accuracy.
//   F16/BF16, M ≥ 256           the same with 2 terms as two GEMMs accumulating into y (no
//                               scratch products; compute-bound, so reading W twice is free):
//                               f16 terms within 2^-22 (values beyond ±65504 saturate), bf16
//                               within 2^-16 relative per activation.
//   F16/BF16, M ≥ fast (opt-in) one GEMM on activations rounded to the weight type, for speed:
//                               for every GEMM of a weight prepared with
//                               RWKVRT_BK_MATMUL_ROUNDED_ACTIVATIONS (the SDK's "fast" matmul
//                               precision); RWKVRT_CUDA_FAST_GEMM_ROWS=256 enables it from 256
//                               rows for every weight.
//                               Relative error about u/√3 with u = 2^-11 (f16) or 2^-8 (bf16);
//                               docs/CUDA.md gives the measured figures.
//   Codes (block types), M > 8  rows decoded in panels into scratch as fp32, then SGEMM: exact
//                               (f16 panels and an f16 GEMM on the opt-in fast path).
#include <algorithm>
#include <string>

#include "kernels.h"
#include "matmul.h"

namespace rwkvrt::cuda {
namespace {

constexpr uint64_t kPanelBudget = 64ull << 20;  // bytes of scratch a panel of W or C may take
constexpr uint64_t kLargeRows = 256;  // from here on the split GEMM runs as two accumulating GEMMs
// Scratch the prepared inputs (and products) of a whole group may take at once (beyond it, the
// items run one by one).
constexpr uint64_t kGroupScratchBudget = 256ull << 20;

uint64_t align_up(uint64_t v, uint64_t a) {
  return (v + a - 1) / a * a;
}

// Carves consecutive 256-byte aligned pieces out of one scratch allocation.
class Carver {
 public:
  void add(uint64_t bytes) { sizes_[n_++] = align_up(bytes, 256); }
  uint64_t total() const {
    uint64_t t = 0;
    for (int i = 0; i < n_; ++i) t += sizes_[i];
    return t;
  }
  void* piece(void* base, int i) const {
    uint64_t off = 0;
    for (int j = 0; j < i; ++j) off += sizes_[j];
    return static_cast<char*>(base) + off;
  }

 private:
  uint64_t sizes_[3 * RWKVRT_BK_MAX_GROUP] = {};
  int n_ = 0;
};

// Rows from which a GEMM on `w` rounds its activations (see the table above).
uint64_t rounding_rows(const rwkvrt_bk_stream* s, const rwkvrt_bk_weight* w) {
  return w->round_activations ? kGemvMaxRows + 1 : s->ctx->fast_gemm_rows;
}

// The tensor-core path of a GEMM (M > kGemvMaxRows) on f16/bf16 weights (the table above); every
// caller that decides how such a GEMM runs asks here.
enum class HalfPath { Rounded, SplitStacked, SplitLarge };

HalfPath half_path(const rwkvrt_bk_stream* s, const rwkvrt_bk_weight* w, uint64_t M) {
  return M >= rounding_rows(s, w) ? HalfPath::Rounded
         : M >= kLargeRows        ? HalfPath::SplitLarge
                                  : HalfPath::SplitStacked;
}

int blas_failed(rwkvrt_bk_stream* s, int status, const char* what) {
  abandon_capture(s);  // a failed call inside a capture leaves it unusable
  return set_error(RWKVRT_BK_ERROR, std::string("matmul: cuBLAS ") + what +
                                        " failed: " + blas_status_string(status));
}

// cuBLAS for this stream, created on first use; a capture in progress is abandoned on failure.
int ensure_blas_or_abandon(rwkvrt_bk_stream* s) {
  const int rc = ensure_blas(s);
  if (rc != RWKVRT_BK_OK) abandon_capture(s);
  return rc;
}

BlasType blas_type(WeightStorage st) {
  return st == WeightStorage::F16    ? BlasType::F16
         : st == WeightStorage::BF16 ? BlasType::BF16
                                     : BlasType::F32;
}

int out_of_scratch(uint64_t bytes) {
  return set_error(RWKVRT_BK_OUT_OF_MEMORY,
                   "matmul: cannot allocate " + std::to_string(bytes) + " bytes of scratch");
}

// input_act: an activation applied to x while it is rounded or split (the channel mix's ReLU²).
int dense_fast(rwkvrt_bk_stream* s, const rwkvrt_bk_weight* w, const rwkvrt_bk_matmul_args& a,
               uint64_t ldx, uint64_t ldy, int32_t input_act = RWKVRT_BK_NO_ACTIVATION) {
  const uint64_t M = a.M, N = w->rows, K = w->cols, Kp = w->kp;
  void* xq = s->scratch.get(M * Kp * 2);
  if (!xq) return out_of_scratch(M * Kp * 2);
  int rc = check_op(s, launch_round_activations(s, w->storage, a.x, M, ldx, K, Kp, xq, input_act),
                    "matmul (rounding activations)");
  if (rc != RWKVRT_BK_OK) return rc;
  const int st = blas_gemm(s->blas, blas_type(w->storage), int(N), int(M), int(Kp), w->data,
                           int(Kp), xq, int(Kp), a.y, int(ldy), a.accumulate ? 1.0f : 0.0f);
  return st == 0 ? RWKVRT_BK_OK : blas_failed(s, st, "GEMM");
}

// M ≥ kLargeRows: y = W·x_hi (+ y), then y += W·x_lo.
int dense_split_large(rwkvrt_bk_stream* s, const rwkvrt_bk_weight* w,
                      const rwkvrt_bk_matmul_args& a, uint64_t ldx, uint64_t ldy,
                      int32_t input_act = RWKVRT_BK_NO_ACTIVATION) {
  const uint64_t M = a.M, N = w->rows, K = w->cols, Kp = w->kp;
  const uint64_t bytes = 2 * M * Kp * 2;
  void* terms = s->scratch.get(bytes);
  if (!terms) return out_of_scratch(bytes);
  const int rc = check_op(
      s, launch_split_activations(s, w->storage, 2, a.x, M, ldx, K, Kp, terms, nullptr, input_act),
      "matmul (splitting activations)");
  if (rc != RWKVRT_BK_OK) return rc;
  for (int p = 0; p < 2; ++p) {
    const void* xp = static_cast<const char*>(terms) + uint64_t(p) * M * Kp * 2;
    const float beta = p > 0 || a.accumulate ? 1.0f : 0.0f;
    const int st = blas_gemm(s->blas, blas_type(w->storage), int(N), int(M), int(Kp), w->data,
                             int(Kp), xp, int(Kp), a.y, int(ldy), beta);
    if (st != 0) return blas_failed(s, st, "GEMM");
  }
  return RWKVRT_BK_OK;
}

int dense_split(rwkvrt_bk_stream* s, const rwkvrt_bk_weight* w, const rwkvrt_bk_matmul_args& a,
                uint64_t ldx, uint64_t ldy) {
  const uint64_t M = a.M, N = w->rows, K = w->cols, Kp = w->kp;
  const int P = w->storage == WeightStorage::BF16 ? 3 : 2;
  const uint64_t rows = uint64_t(P) * M;
  uint64_t np = std::max<uint64_t>(64, kPanelBudget / (rows * 4));
  np = std::min(N, np / 64 * 64);
  Carver c;
  c.add(rows * Kp * 2);  // terms
  c.add(M * 4);          // row scales
  c.add(rows * np * 4);  // products of one panel
  void* base = s->scratch.get(c.total());
  if (!base) return out_of_scratch(c.total());
  void* terms = c.piece(base, 0);
  float* row_scale = static_cast<float*>(c.piece(base, 1));
  float* prod = static_cast<float*>(c.piece(base, 2));
  const bool scaled = w->storage == WeightStorage::F16;
  int rc = check_op(s,
                    launch_split_activations(s, w->storage, P, a.x, M, ldx, K, Kp, terms,
                                             scaled ? row_scale : nullptr),
                    "matmul (splitting activations)");
  if (rc != RWKVRT_BK_OK) return rc;
  for (uint64_t n0 = 0; n0 < N; n0 += np) {
    const uint64_t n = std::min(np, N - n0);
    const void* wp = static_cast<const char*>(w->data) + n0 * Kp * 2;
    const int st = blas_gemm(s->blas, blas_type(w->storage), int(n), int(rows), int(Kp), wp,
                             int(Kp), terms, int(Kp), prod, int(n), 0.0f);
    if (st != 0) return blas_failed(s, st, "GEMM");
    rc = check_op(s,
                  launch_combine_parts(s, prod, P, scaled ? row_scale : nullptr, M, n, a.y + n0,
                                       ldy, a.accumulate != 0),
                  "matmul (summing split products)");
    if (rc != RWKVRT_BK_OK) return rc;
  }
  return RWKVRT_BK_OK;
}

int dense_f32(rwkvrt_bk_stream* s, const rwkvrt_bk_weight* w, const rwkvrt_bk_matmul_args& a,
              uint64_t ldx, uint64_t ldy) {
  const int st = blas_gemm(s->blas, BlasType::F32, int(w->rows), int(a.M), int(w->cols), w->data,
                           int(w->kp), a.x, int(ldx), a.y, int(ldy), a.accumulate ? 1.0f : 0.0f);
  return st == 0 ? RWKVRT_BK_OK : blas_failed(s, st, "SGEMM");
}

int codes(rwkvrt_bk_stream* s, const rwkvrt_bk_weight* w, const rwkvrt_bk_matmul_args& a,
          uint64_t ldx, uint64_t ldy) {
  const uint64_t M = a.M, N = w->rows, K = w->cols;
  const bool fast = M >= rounding_rows(s, w);
  const uint64_t elem = fast ? 2 : 4;
  uint64_t np = std::max<uint64_t>(64, kPanelBudget / (K * elem));
  np = std::min(N, np / 64 * 64);
  Carver c;
  c.add(np * K * elem);          // decoded panel of W
  c.add(fast ? M * K * 2 : 16);  // rounded activations
  void* base = s->scratch.get(c.total());
  if (!base) return out_of_scratch(c.total());
  void* panel = c.piece(base, 0);
  void* xq = c.piece(base, 1);
  if (fast) {
    const int rc =
        check_op(s, launch_round_activations(s, WeightStorage::F16, a.x, M, ldx, K, K, xq),
                 "matmul (rounding activations)");
    if (rc != RWKVRT_BK_OK) return rc;
  }
  for (uint64_t n0 = 0; n0 < N; n0 += np) {
    const uint64_t n = std::min(np, N - n0);
    const int rc = check_op(s, launch_dequant_codes(s, w, n0, n, fast, panel),
                            "matmul (decoding block weights)");
    if (rc != RWKVRT_BK_OK) return rc;
    const int st = fast ? blas_gemm(s->blas, BlasType::F16, int(n), int(M), int(K), panel, int(K),
                                    xq, int(K), a.y + n0, int(ldy), a.accumulate ? 1.0f : 0.0f)
                        : blas_gemm(s->blas, BlasType::F32, int(n), int(M), int(K), panel, int(K),
                                    a.x, int(ldx), a.y + n0, int(ldy), a.accumulate ? 1.0f : 0.0f);
    if (st != 0) return blas_failed(s, st, fast ? "GEMM" : "SGEMM");
  }
  return RWKVRT_BK_OK;
}

// The tensor-core or SGEMM paths (M > kGemvMaxRows).
int gemm(rwkvrt_bk_stream* s, const rwkvrt_bk_matmul_args& a, uint64_t ldx, uint64_t ldy) {
  const rwkvrt_bk_weight* w = a.w;
  const int rc = ensure_blas_or_abandon(s);
  if (rc != RWKVRT_BK_OK) return rc;
  switch (w->storage) {
    case WeightStorage::F32:
      return dense_f32(s, w, a, ldx, ldy);
    case WeightStorage::F16:
    case WeightStorage::BF16:
      switch (half_path(s, w, a.M)) {
        case HalfPath::Rounded:
          return dense_fast(s, w, a, ldx, ldy);
        case HalfPath::SplitLarge:
          return dense_split_large(s, w, a, ldx, ldy);
        case HalfPath::SplitStacked:
          return dense_split(s, w, a, ldx, ldy);
      }
      break;
    case WeightStorage::Codes:
      return codes(s, w, a, ldx, ldy);
  }
  return set_error(RWKVRT_BK_UNSUPPORTED, "matmul: unknown weight storage");
}

// The leading dimensions of a call and whether cuBLAS can take its sizes: an ABI code.
int resolve_dims(const rwkvrt_bk_matmul_args& a, uint64_t* ldx, uint64_t* ldy) {
  const rwkvrt_bk_weight* w = a.w;
  *ldx = a.ldx ? a.ldx : w->cols;
  *ldy = a.ldy ? a.ldy : w->rows;
  if (*ldx < w->cols || *ldy < w->rows)
    return set_error(RWKVRT_BK_INVALID, "matmul: leading dimension smaller than the row");
  const uint64_t kIntMax = 0x7fffffffull;
  if (a.M > kIntMax / 3 || w->rows > kIntMax || w->kp > kIntMax || *ldx > kIntMax || *ldy > kIntMax)
    return set_error(RWKVRT_BK_UNSUPPORTED, "matmul: a dimension exceeds 2^31 / 3");
  return RWKVRT_BK_OK;
}

// A group's items one matmul() call each.
int each_item(rwkvrt_bk_stream* s, const rwkvrt_bk_matmul_item* items, uint32_t n) {
  for (uint32_t i = 0; i < n; ++i) {
    const int rc = matmul(s, items[i].args, items[i].bias, items[i].act);
    if (rc != RWKVRT_BK_OK) return rc;
  }
  return RWKVRT_BK_OK;
}

// How a group of GEMMs on f16/bf16 weights runs as a whole: every item on the same storage and
// the same path (false for mixed groups, which run item by item).
bool group_path(const rwkvrt_bk_stream* s, const rwkvrt_bk_matmul_item* items, uint32_t n,
                HalfPath* path) {
  const WeightStorage st = items[0].args.w->storage;
  if (st != WeightStorage::F16 && st != WeightStorage::BF16) return false;
  for (uint32_t i = 0; i < n; ++i) {
    const rwkvrt_bk_matmul_args& a = items[i].args;
    if (a.w->storage != st || a.M <= kGemvMaxRows) return false;
    const HalfPath p = half_path(s, a.w, a.M);
    if (i > 0 && p != *path) return false;
    *path = p;
  }
  return true;
}

// A group of GEMMs with their operand preparation and epilogues batched: one launch rounds or
// splits every input (an input shared by several items prepared once), a GEMM (two for the
// large split) per item, one launch sums the split products (stacked path) or applies the
// epilogues.  Same arithmetic as one matmul() per item, so the same results bit for bit.
int grouped_gemm(rwkvrt_bk_stream* s, const rwkvrt_bk_matmul_item* items, uint32_t n,
                 HalfPath path) {
  const WeightStorage st = items[0].args.w->storage;
  const bool stacked = path == HalfPath::SplitStacked;
  // Terms per input: 1 rounded; 2 (large split); 2 f16 (scaled rows) or 3 bf16 (stacked split).
  const int P = path == HalfPath::Rounded ? 1 : stacked && st == WeightStorage::BF16 ? 3 : 2;
  const bool scaled = stacked && st == WeightStorage::F16;
  uint64_t ldx[RWKVRT_BK_MAX_GROUP], ldy[RWKVRT_BK_MAX_GROUP];
  int source[RWKVRT_BK_MAX_GROUP];  // the prepared input of item i
  struct Input {
    const float* x;
    uint64_t M, ldx, K, Kp;
  } in[RWKVRT_BK_MAX_GROUP];
  uint32_t n_in = 0;
  Carver c;  // pieces: inputs' terms, inputs' row scales, items' products
  for (uint32_t i = 0; i < n; ++i) {
    const rwkvrt_bk_matmul_args& a = items[i].args;
    const int rc = resolve_dims(a, &ldx[i], &ldy[i]);
    if (rc != RWKVRT_BK_OK) return rc;
    source[i] = -1;
    for (uint32_t j = 0; j < n_in; ++j)
      if (in[j].x == a.x && in[j].M == a.M && in[j].ldx == ldx[i] && in[j].K == a.w->cols &&
          in[j].Kp == a.w->kp)
        source[i] = int(j);
    if (source[i] < 0) {
      source[i] = int(n_in);
      in[n_in++] = Input{a.x, a.M, ldx[i], a.w->cols, a.w->kp};
    }
  }
  for (uint32_t j = 0; j < n_in; ++j) c.add(uint64_t(P) * in[j].M * in[j].Kp * 2);
  for (uint32_t j = 0; j < n_in; ++j) c.add(scaled ? in[j].M * 4 : 0);
  bool fits = true;
  for (uint32_t i = 0; i < n && stacked; ++i) {
    const uint64_t bytes = uint64_t(P) * items[i].args.M * items[i].args.w->rows * 4;
    fits = fits && bytes <= kPanelBudget;  // one panel per item
    c.add(bytes);
  }
  // Long prompts: item by item, less scratch.
  if (!fits || c.total() > kGroupScratchBudget) return each_item(s, items, n);
  const int blas_rc = ensure_blas_or_abandon(s);
  if (blas_rc != RWKVRT_BK_OK) return blas_rc;
  void* base = s->scratch.get(c.total());
  if (!base) return out_of_scratch(c.total());
  auto terms = [&](uint32_t j) { return c.piece(base, int(j)); };
  auto row_scale = [&](uint32_t j) {
    return scaled ? static_cast<float*>(c.piece(base, int(n_in + j))) : nullptr;
  };
  auto products = [&](uint32_t i) { return static_cast<float*>(c.piece(base, int(2 * n_in + i))); };

  int rc = RWKVRT_BK_OK;
  if (path == HalfPath::Rounded) {
    RoundGroup g{};
    for (uint32_t j = 0; j < n_in; ++j)
      g.item[g.n++] = RoundItem{in[j].x, in[j].M, in[j].ldx, in[j].K, in[j].Kp, terms(j), 0};
    rc = check_op(s, launch_round_group(s, st, g), "matmul_group (rounding activations)");
  } else {
    SplitGroup g{};
    for (uint32_t j = 0; j < n_in; ++j)
      g.item[g.n++] =
          SplitItem{in[j].x, in[j].M, in[j].ldx, in[j].K, in[j].Kp, terms(j), row_scale(j), 0};
    rc = check_op(s, launch_split_group(s, st, P, g), "matmul_group (splitting activations)");
  }
  if (rc != RWKVRT_BK_OK) return rc;

  BiasActGroup epilogues{};
  CombineGroup sums{};
  sums.P = P;
  for (uint32_t i = 0; i < n; ++i) {
    const rwkvrt_bk_matmul_args& a = items[i].args;
    const rwkvrt_bk_weight* w = a.w;
    const uint32_t j = uint32_t(source[i]);
    const int N = int(w->rows), Kp = int(w->kp);
    const bool epilogue = items[i].bias || items[i].act != RWKVRT_BK_NO_ACTIVATION;
    if (stacked) {  // the P terms as P·M rows of one GEMM, summed by the combine launch
      const int st_gemm = blas_gemm(s->blas, blas_type(st), N, int(P * a.M), Kp, w->data, Kp,
                                    terms(j), Kp, products(i), N, 0.0f);
      if (st_gemm != 0) return blas_failed(s, st_gemm, "GEMM");
      sums.item[sums.n++] = CombineItem{products(i), row_scale(j), a.M,           w->rows,      a.y,
                                        ldy[i],      a.accumulate, items[i].bias, items[i].act, 0};
      continue;
    }
    for (int p = 0; p < P; ++p) {  // rounded: one GEMM; large split: two accumulating GEMMs
      const void* xp = static_cast<const char*>(terms(j)) + uint64_t(p) * a.M * w->kp * 2;
      const float beta = p > 0 || a.accumulate ? 1.0f : 0.0f;
      const int st_gemm = blas_gemm(s->blas, blas_type(st), N, int(a.M), Kp, w->data, Kp, xp, Kp,
                                    a.y, int(ldy[i]), beta);
      if (st_gemm != 0) return blas_failed(s, st_gemm, "GEMM");
    }
    if (epilogue)
      epilogues.item[epilogues.n++] =
          BiasActItem{a.y, a.M, w->rows, ldy[i], items[i].bias, items[i].act, 0, 0};
  }
  if (stacked) return check_op(s, launch_combine_group(s, sums), "matmul_group (summing products)");
  return check_op(s, launch_bias_act_group(s, epilogues), "matmul_group epilogue");
}

const char* storage_name(WeightStorage st) {
  switch (st) {
    case WeightStorage::F32:
      return "f32";
    case WeightStorage::F16:
      return "f16";
    case WeightStorage::BF16:
      return "bf16";
    case WeightStorage::Codes:
      return "block codes";
  }
  return "?";
}

// Refuses a matmul on `half` activations whose weight is not stored as `half`.
int check_half_weight(const rwkvrt_bk_weight* w, WeightStorage half, const std::string& what) {
  if (w->storage == half) return RWKVRT_BK_OK;
  return set_error(RWKVRT_BK_UNSUPPORTED, what + ": the activations are " + storage_name(half) +
                                              " but weight '" + w->name + "' is stored as " +
                                              storage_name(w->storage));
}

// y (+)= W·x with x already of the weight's type ([M][ldx], a *_half entry): one GEMM over the
// K used columns (the weight's padding to Kp is not read), whatever the path the weight's
// precision would pick for fp32 activations.
int gemm_half(rwkvrt_bk_stream* s, const rwkvrt_bk_matmul_args& a, uint64_t ldx, uint64_t ldy) {
  const rwkvrt_bk_weight* w = a.w;
  const int st =
      blas_gemm(s->blas, blas_type(w->storage), int(w->rows), int(a.M), int(w->cols), w->data,
                int(w->kp), a.x, int(ldx), a.y, int(ldy), a.accumulate ? 1.0f : 0.0f);
  return st == 0 ? RWKVRT_BK_OK : blas_failed(s, st, "GEMM");
}

}  // namespace

int matmul_group_half(rwkvrt_bk_stream* s, const rwkvrt_bk_matmul_item* items, uint32_t n,
                      WeightStorage half) {
  uint64_t ldx[RWKVRT_BK_MAX_GROUP], ldy[RWKVRT_BK_MAX_GROUP];
  for (uint32_t i = 0; i < n; ++i) {
    const std::string what = "matmul_group_half item " + std::to_string(i);
    int rc = check_half_weight(items[i].args.w, half, what);
    if (rc == RWKVRT_BK_OK) rc = resolve_dims(items[i].args, &ldx[i], &ldy[i]);
    if (rc != RWKVRT_BK_OK) return rc;
  }
  const int rc = ensure_blas_or_abandon(s);
  if (rc != RWKVRT_BK_OK) return rc;
  BiasActGroup epilogues{};
  for (uint32_t i = 0; i < n; ++i) {
    const rwkvrt_bk_matmul_args& a = items[i].args;
    if (a.M == 0) continue;
    const int st = gemm_half(s, a, ldx[i], ldy[i]);
    if (st != RWKVRT_BK_OK) return st;
    if (items[i].bias || items[i].act != RWKVRT_BK_NO_ACTIVATION)
      epilogues.item[epilogues.n++] =
          BiasActItem{a.y, a.M, a.w->rows, ldy[i], items[i].bias, items[i].act, 0, 0};
  }
  return check_op(s, launch_bias_act_group(s, epilogues), "matmul_group_half epilogue");
}

int matmul_group_gemm(rwkvrt_bk_stream* s, const rwkvrt_bk_matmul_item* items, uint32_t n) {
  HalfPath path = HalfPath::Rounded;
  return group_path(s, items, n, &path) ? grouped_gemm(s, items, n, path) : each_item(s, items, n);
}

namespace {

// The channel mix with its key matmul given as `key_raw` (writing the raw sums W_key·x into
// c.hidden) and `key_relu2` (the same with the ReLU² epilogue).
template <class KeyRaw, class KeyRelu2>
int channel_mix_with(rwkvrt_bk_stream* s, const rwkvrt_bk_channel_mix_args& c, KeyRaw key_raw,
                     KeyRelu2 key_relu2) {
  const rwkvrt_bk_weight* wv = c.value;
  const rwkvrt_bk_matmul_args value{c.hidden, c.M, 0, wv, c.y, c.ldy, c.accumulate};
  // The value GEMM's input passes through a rounding or splitting kernel anyway on the rounded
  // and the two-GEMM split paths: the ReLU² is applied there, and the key GEMM writes its raw
  // sums (same arithmetic as the separate epilogue, one pass over the hidden activations less).
  // Elsewhere (GEMVs, the stacked split, fp32 and block weights) the two ops as they are.
  const bool half = wv->storage == WeightStorage::F16 || wv->storage == WeightStorage::BF16;
  const HalfPath path = half_path(s, wv, c.M);
  if (!half || c.M <= kGemvMaxRows || path == HalfPath::SplitStacked) {
    const int rc = key_relu2();
    return rc != RWKVRT_BK_OK ? rc : matmul(s, value);
  }
  uint64_t ldx = 0, ldy = 0;
  int rc = resolve_dims(value, &ldx, &ldy);
  if (rc == RWKVRT_BK_OK) rc = key_raw();
  if (rc == RWKVRT_BK_OK) rc = ensure_blas_or_abandon(s);
  if (rc != RWKVRT_BK_OK) return rc;
  return path == HalfPath::Rounded
             ? dense_fast(s, wv, value, ldx, ldy, RWKVRT_BK_RELU_SQUARE)
             : dense_split_large(s, wv, value, ldx, ldy, RWKVRT_BK_RELU_SQUARE);
}

}  // namespace

int channel_mix(rwkvrt_bk_stream* s, const rwkvrt_bk_channel_mix_args& c) {
  const rwkvrt_bk_matmul_args key{c.x, c.M, c.ldx, c.key, c.hidden, 0, 0u};
  return channel_mix_with(
      s, c, [&] { return matmul(s, key); },
      [&] { return matmul(s, key, nullptr, RWKVRT_BK_RELU_SQUARE); });
}

int channel_mix_half(rwkvrt_bk_stream* s, const rwkvrt_bk_channel_mix_args& c, WeightStorage half) {
  const rwkvrt_bk_matmul_item key{
      {c.x, c.M, c.ldx, c.key, c.hidden, 0, 0u}, nullptr, RWKVRT_BK_NO_ACTIVATION};
  const rwkvrt_bk_matmul_item key_relu2{key.args, nullptr, RWKVRT_BK_RELU_SQUARE};
  const int rc = check_half_weight(c.key, half, "channel_mix_half");
  if (rc != RWKVRT_BK_OK) return rc;
  return channel_mix_with(
      s, c, [&] { return matmul_group_half(s, &key, 1, half); },
      [&] { return matmul_group_half(s, &key_relu2, 1, half); });
}

int matmul(rwkvrt_bk_stream* s, const rwkvrt_bk_matmul_args& a, const float* bias, int32_t act) {
  const rwkvrt_bk_weight* w = a.w;
  uint64_t ldx = 0, ldy = 0;
  const int dims = resolve_dims(a, &ldx, &ldy);
  if (dims != RWKVRT_BK_OK) return dims;
  if (a.M == 0) return RWKVRT_BK_OK;
  if (a.M <= kGemvMaxRows)
    return check_op(s, launch_gemv(s, w, a.x, a.M, ldx, a.y, ldy, a.accumulate != 0, bias, act),
                    "matmul");
  const int rc = gemm(s, a, ldx, ldy);
  if (rc != RWKVRT_BK_OK || (!bias && act == RWKVRT_BK_NO_ACTIVATION)) return rc;
  return check_op(s, launch_bias_act(s, a.y, a.M, w->rows, ldy, bias, act), "matmul epilogue");
}

}  // namespace rwkvrt::cuda
