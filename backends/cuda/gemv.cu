// Skinny matmul (M ≤ 8 rows of activations): the decode path.  It is memory-bound, so the kernel
// is built to stream the weight matrix once at full bandwidth:
//   * a logical warp (or, for few rows, a whole block) owns R consecutive weight rows and walks K
//     with 16-byte loads per lane (8 f16/bf16, 4 f32 or 16 int8 codes), U·R loads issued before
//     their arithmetic; rows of at most 64 such vectors get a group of lanes each instead
//     (GemvForm below);
//   * the activations (fp32, any stride and alignment) are read through L1 and reused for R
//     rows, and each weight vector is reused for all M activation rows;
//   * accumulation is fp32; the R·M partial sums of a lane are reduced across the warp with the
//     halving exchange (31 shuffles for 32 sums instead of 160).
// Weights are decoded exactly (f16/bf16 widen exactly; codes are float(code)·d + m, the exact
// product plus one rounding, as the reference dequantisation), so the result is an fp32 dot
// product of the stored values.
#include "activation.h"
#include "kernels.h"

namespace rwkvrt::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarpsPerBlock = kThreads / kWarp;

struct GemvArgs {
  const void* w;
  const float2* scales;  // Codes: (d, m) per 32 values, [N][K/32]
  uint64_t n_rows, kp, k;
  const float* x;
  uint64_t ldx;
  uint32_t m;
  float* y;
  uint64_t ldy;
  uint32_t accumulate;
  uint32_t x_vec;            // x is 16-byte aligned and ldx % 4 == 0
  const float* bias;         // epilogue: [n_rows] or null
  int32_t act;               // epilogue: rwkvrt_bk_unary or RWKVRT_BK_NO_ACTIVATION
  uint32_t preload_weights;  // first weight loads before gpu_wait_prior_grid (see gemv_block)
};

// Per storage: elements per 16-byte vector, the raw load, and its exact decoding.  Loads and
// decoding are separate so that a thread can issue several loads before using any.
template <WeightStorage S>
struct Decode;

template <>
struct Decode<WeightStorage::F32> {
  static constexpr int kEpv = 4;
  using Raw = float4;
  __device__ static Raw load(const GemvArgs& a, uint64_t row, uint64_t v) {
    return gpu_ldg(reinterpret_cast<const float4*>(a.w) + row * (a.kp / 4) + v);
  }
  __device__ static void decode(const Raw& q, float (&out)[kEpv]) {
    out[0] = q.x;
    out[1] = q.y;
    out[2] = q.z;
    out[3] = q.w;
  }
};

template <>
struct Decode<WeightStorage::F16> {
  static constexpr int kEpv = 8;
  using Raw = uint4;
  __device__ static Raw load(const GemvArgs& a, uint64_t row, uint64_t v) {
    return gpu_ldg(reinterpret_cast<const uint4*>(a.w) + row * (a.kp / 8) + v);
  }
  __device__ static void decode(const Raw& q, float (&out)[kEpv]) {
    const uint32_t words[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      gpu_half2 h;
      static_assert(sizeof(h) == 4, "half2 is two halves");
      memcpy(&h, &words[i], 4);
      const float2 f = __half22float2(h);
      out[2 * i] = f.x;
      out[2 * i + 1] = f.y;
    }
  }
};

template <>
struct Decode<WeightStorage::BF16> {
  static constexpr int kEpv = 8;
  using Raw = uint4;
  __device__ static Raw load(const GemvArgs& a, uint64_t row, uint64_t v) {
    return gpu_ldg(reinterpret_cast<const uint4*>(a.w) + row * (a.kp / 8) + v);
  }
  __device__ static void decode(const Raw& q, float (&out)[kEpv]) {
    const uint32_t words[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      out[2 * i] = __uint_as_float(words[i] << 16);
      out[2 * i + 1] = __uint_as_float(words[i] & 0xffff0000u);
    }
  }
};

template <>
struct Decode<WeightStorage::Codes> {
  static constexpr int kEpv = 16;
  struct Raw {
    uint4 q;
    float2 dm;
  };
  __device__ static Raw load(const GemvArgs& a, uint64_t row, uint64_t v) {
    return {gpu_ldg(reinterpret_cast<const uint4*>(a.w) + row * (a.kp / 16) + v),
            gpu_ldg(a.scales + row * (a.kp / 32) + v / 2)};
  }
  __device__ static void decode(const Raw& raw, float (&out)[kEpv]) {
    const uint32_t words[4] = {raw.q.x, raw.q.y, raw.q.z, raw.q.w};
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int b = 0; b < 4; ++b) {
        const int code = int(words[i] << (24 - 8 * b)) >> 24;    // sign-extended byte b
        out[4 * i + b] = fmaf(float(code), raw.dm.x, raw.dm.y);  // exact product, one rounding
      }
  }
};

// Activation row m, elements [k0, k0 + E): zero past K or for rows beyond M.
template <int E>
__device__ __forceinline__ void load_x(const GemvArgs& a, uint32_t m, uint64_t k0,
                                       float (&out)[E]) {
  if (m >= a.m) {
#pragma unroll
    for (int e = 0; e < E; ++e) out[e] = 0.0f;
    return;
  }
  const float* xr = a.x + m * a.ldx + k0;
  if (a.x_vec && k0 + E <= a.k) {
#pragma unroll
    for (int e = 0; e < E; e += 4) {
      const float4 q = gpu_ldg(reinterpret_cast<const float4*>(xr + e));
      out[e] = q.x;
      out[e + 1] = q.y;
      out[e + 2] = q.z;
      out[e + 3] = q.w;
    }
  } else {
#pragma unroll
    for (int e = 0; e < E; ++e) out[e] = k0 + e < a.k ? gpu_ldg(xr + e) : 0.0f;
  }
}

// One halving step of warp_reduce_many: lanes whose `kOffset` bit is set keep the upper half of
// the CNT values, the others the lower half, each adding its partner's copy of the kept half.
template <int CNT, int kOffset>
struct Halve {
  template <int NV>
  __device__ __forceinline__ static void run(float (&v)[NV], int lane) {
    const bool upper = (lane & kOffset) != 0;
#pragma unroll
    for (int j = 0; j < CNT / 2; ++j) {
      const float send = upper ? v[j] : v[j + CNT / 2];
      const float keep = upper ? v[j + CNT / 2] : v[j];
      v[j] = keep + gpu_shfl_xor(send, kOffset);
    }
    Halve<CNT / 2, kOffset / 2>::run(v, lane);
  }
};
template <int kOffset>
struct Halve<1, kOffset> {
  template <int NV>
  __device__ __forceinline__ static void run(float (&)[NV], int) {}
};

// Reduces NV (a power of two ≤ 32) per-lane values over the warp: afterwards lane l holds the
// total of value l / (32 / NV).  Each halving step trades half the values with the partner lane,
// so 32 sums cost 31 shuffles instead of 160.
template <int NV>
__device__ __forceinline__ float warp_reduce_many(float (&v)[NV], int lane) {
  static_assert(NV >= 1 && NV <= kWarp && (NV & (NV - 1)) == 0, "NV must be a power of two");
  Halve<NV, kWarp / 2>::run(v, lane);
  float r = v[0];
#pragma unroll
  for (int offset = kWarp / 2 / NV; offset > 0; offset >>= 1) r += gpu_shfl_xor(r, offset);
  return r;
}

// The decoded weights of R rows at vector v, multiplied into the M activation rows.
template <WeightStorage S, int MT, int R>
__device__ __forceinline__ void accumulate(const GemvArgs& a,
                                           const typename Decode<S>::Raw (&raw)[R], uint64_t v,
                                           float (&acc)[R * MT]) {
  constexpr int E = Decode<S>::kEpv;
  float w[R][E];
#pragma unroll
  for (int r = 0; r < R; ++r) Decode<S>::decode(raw[r], w[r]);
#pragma unroll
  for (int m = 0; m < MT; ++m) {
    float xv[E];
    load_x<E>(a, uint32_t(m), v * E, xv);
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int e = 0; e < E; ++e) acc[r * MT + m] = fmaf(w[r][e], xv[e], acc[r * MT + m]);
  }
}

// How the lanes of a block share the work (GemvShape picks one per matmul):
//   WarpRows   each logical warp owns R rows and walks all of K (many rows: every SM gets warps);
//   SplitK     the 8 warps of a block share R rows, each thread taking every 256th vector, and
//              combine their sums through shared memory (few rows: still every SM busy, and each
//              thread's K share short enough that its U·R loads are all in flight at once);
//   ShortRows  rows of at most kShortVectors vectors (the LoRA up projections, K ≤ 512 in f16):
//              L lanes per row (short_lanes), 32 / L rows per warp, so that every lane loads —
//              split-K would keep 8 threads of 256 busy for a row of 8 vectors.
enum class GemvForm { WarpRows, SplitK, ShortRows };

constexpr uint64_t kShortVectors = 2 * kWarp;

// Lanes per row in the ShortRows form: the power of two covering the row's vectors, at most a
// warp (then each lane takes two).
__host__ __device__ inline uint32_t short_lanes(uint64_t nvec) {
  uint32_t lanes = 1;
  while (lanes < nvec && lanes < uint32_t(kWarp)) lanes *= 2;
  return lanes;
}

// Output `row` of activation row m: the sum, then the epilogue in the order of the separate ops
// (+ bias, activation), stored or added.
__device__ __forceinline__ void store_result(const GemvArgs& a, uint64_t row, uint32_t m,
                                             float result) {
  float* out = a.y + uint64_t(m) * a.ldy + row;
  if (a.bias) result += a.bias[row];
  result = apply_activation(a.act, result);
  *out = a.accumulate ? *out + result : result;
}

// The ShortRows form: a thread loads (before the chained wait, as gemv_block) at most
// kShortVectors / 32 vectors of its row, the L lanes of the row add their sums by halving
// exchanges, and the first of them stores the MT results.
template <WeightStorage S, int MT>
__device__ __forceinline__ void gemv_short_block(const GemvArgs& a, uint64_t block) {
  using D = Decode<S>;
  constexpr int kPerLane = int(kShortVectors / kWarp);
  const uint64_t nvec = a.kp / D::kEpv;
  const uint32_t lanes = short_lanes(nvec);
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const uint64_t row =
      (block * kWarpsPerBlock + uint64_t(warp)) * (uint64_t(kWarp) / lanes) + lane / lanes;
  const uint32_t part = uint32_t(lane) % lanes;
  const bool valid = row < a.n_rows;
  typename D::Raw raw[kPerLane];
  bool has[kPerLane];
#pragma unroll
  for (int u = 0; u < kPerLane; ++u) {
    has[u] = valid && part + u * lanes < nvec;
    if (has[u] && a.preload_weights) raw[u] = D::load(a, row, part + u * lanes);
  }
  gpu_kernel_start();
  float acc[MT];
#pragma unroll
  for (int m = 0; m < MT; ++m) acc[m] = 0.0f;
#pragma unroll
  for (int u = 0; u < kPerLane; ++u) {
    if (!has[u]) continue;
    const uint64_t v = part + u * lanes;
    typename D::Raw one[1] = {a.preload_weights ? raw[u] : D::load(a, row, v)};
    accumulate<S, MT, 1>(a, one, v, acc);
  }
#pragma unroll
  for (int m = 0; m < MT; ++m)
    for (uint32_t offset = lanes / 2; offset > 0; offset /= 2)
      acc[m] += gpu_shfl_xor(acc[m], int(offset));
  if (!valid || part != 0) return;
#pragma unroll
  for (int m = 0; m < MT; ++m)
    if (uint32_t(m) < a.m) store_result(a, row, uint32_t(m), acc[m]);
}

// The WarpRows and SplitK forms.  Either way a thread issues U·R independent 16-byte loads
// before the first FMA that needs them.
//
// `block` is the block's index within this matmul (a group runs several matmuls in one grid).
template <WeightStorage S, int MT, int R, int U, bool kSplitK>
__device__ __forceinline__ void gemv_block(const GemvArgs& a, uint64_t block) {
  __shared__ float partial[kWarpsPerBlock][R * MT];
  using D = Decode<S>;
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const uint64_t row0 = kSplitK ? block * R : (block * kWarpsPerBlock + warp) * R;
  if (row0 >= a.n_rows) {  // split-K: the whole block leaves together
    gpu_kernel_start();    // still ordered after the prior grid (see gpu_launch's contract)
    return;
  }
  // Rows past the end re-read the last row; their sums are never written.
  uint64_t rows[R];
#pragma unroll
  for (int r = 0; r < R; ++r) rows[r] = row0 + r < a.n_rows ? row0 + r : a.n_rows - 1;

  float acc[R * MT];
#pragma unroll
  for (int i = 0; i < R * MT; ++i) acc[i] = 0.0f;

  constexpr uint64_t kStride = kSplitK ? kThreads : kWarp;
  const uint64_t nvec = a.kp / D::kEpv;
  uint64_t v = kSplitK ? threadIdx.x : lane;
  // The first U·R weight vectors are loaded before waiting for the prior grid: weights are
  // written only by weight_prepare (a synchronous upload), never by a kernel, so no chained grid
  // can be producing them.  Blocks that become resident while the previous kernel drains thus
  // have their first loads in flight (or done) when its results become visible, which hides the
  // ramp-up of these short, bandwidth-bound kernels.  Activations are read only after the wait.
  const bool preload = a.preload_weights && v + (U - 1) * kStride < nvec;
  typename D::Raw first[U][R];
  if (preload) {
#pragma unroll
    for (int u = 0; u < U; ++u)
#pragma unroll
      for (int r = 0; r < R; ++r) first[u][r] = D::load(a, rows[r], v + u * kStride);
  }
  gpu_kernel_start();
  if (preload) {
#pragma unroll
    for (int u = 0; u < U; ++u) accumulate<S, MT, R>(a, first[u], v + u * kStride, acc);
    v += U * kStride;
  }
  for (; v + (U - 1) * kStride < nvec; v += U * kStride) {
    typename D::Raw raw[U][R];
#pragma unroll
    for (int u = 0; u < U; ++u)
#pragma unroll
      for (int r = 0; r < R; ++r) raw[u][r] = D::load(a, rows[r], v + u * kStride);
#pragma unroll
    for (int u = 0; u < U; ++u) accumulate<S, MT, R>(a, raw[u], v + u * kStride, acc);
  }
  for (; v < nvec; v += kStride) {
    typename D::Raw raw[R];
#pragma unroll
    for (int r = 0; r < R; ++r) raw[r] = D::load(a, rows[r], v);
    accumulate<S, MT, R>(a, raw, v, acc);
  }

  const float total = warp_reduce_many<R * MT>(acc, lane);
  constexpr int kLanesPerValue = kWarp / (R * MT);
  float result = total;
  int idx = lane / kLanesPerValue;
  bool writer = lane % kLanesPerValue == 0;
  if (kSplitK) {
    if (writer) partial[warp][idx] = total;
    __syncthreads();
    writer = threadIdx.x < R * MT;
    idx = threadIdx.x;
    result = 0.0f;
    if (writer)
#pragma unroll
      for (int w = 0; w < kWarpsPerBlock; ++w) result += partial[w][idx];
  }
  if (writer) {
    const int r = idx / MT, m = idx % MT;
    const uint64_t row = row0 + r;
    if (row < a.n_rows && uint32_t(m) < a.m) store_result(a, row, uint32_t(m), result);
  }
}

template <WeightStorage S, int MT, int R, int U, GemvForm F>
__device__ __forceinline__ void gemv_form_block(const GemvArgs& a, uint64_t block) {
  if constexpr (F == GemvForm::ShortRows)
    gemv_short_block<S, MT>(a, block);
  else
    gemv_block<S, MT, R, U, F == GemvForm::SplitK>(a, block);
}

template <WeightStorage S, int MT, int R, int U, GemvForm F>
__global__ void __launch_bounds__(kThreads) gemv_kernel(GemvArgs a) {
  gemv_form_block<S, MT, R, U, F>(a, blockIdx.x);
}

// Several matmuls of the same storage, M and kernel shape in one grid: blocks
// [first_block[i], first_block[i + 1]) work on item i.
constexpr int kMaxGroup = RWKVRT_BK_MAX_GROUP;
struct GemvGroup {
  GemvArgs item[kMaxGroup];
  uint32_t first_block[kMaxGroup + 1];
  uint32_t n;
};

template <WeightStorage S, int MT, int R, int U, GemvForm F>
__global__ void __launch_bounds__(kThreads) gemv_group_kernel(const GPU_GRID_CONSTANT GemvGroup g) {
  uint32_t i = 0;
  while (i + 1 < g.n && blockIdx.x >= g.first_block[i + 1]) ++i;
  gemv_form_block<S, MT, R, U, F>(g.item[i], blockIdx.x - g.first_block[i]);
}

template <WeightStorage S, int R, GemvForm F>
uint64_t blocks_of(const GemvArgs& a) {
  const uint64_t rows_per_block =
      F == GemvForm::SplitK ? uint64_t(R)
      : F == GemvForm::WarpRows
          ? uint64_t(kWarpsPerBlock) * R
          : uint64_t(kWarpsPerBlock) * (uint64_t(kWarp) / short_lanes(a.kp / Decode<S>::kEpv));
  return (a.n_rows + rows_per_block - 1) / rows_per_block;
}

// Launchers for one matmul and for a group, given the kernel's shape.
struct SingleLaunch {
  const rwkvrt_bk_stream* s;
  const GemvArgs& a;
  template <WeightStorage S, int MT, int R, int U, GemvForm F>
  gpuError_t run() const {
    const dim3 grid(unsigned(blocks_of<S, R, F>(a)));
    return gpu_launch(launch_on(s, grid, dim3(kThreads)), gemv_kernel<S, MT, R, U, F>, a);
  }
};

struct GroupLaunch {
  const rwkvrt_bk_stream* s;
  GemvGroup& g;
  template <WeightStorage S, int MT, int R, int U, GemvForm F>
  gpuError_t run() const {
    g.first_block[0] = 0;
    for (uint32_t i = 0; i < g.n; ++i)
      g.first_block[i + 1] = g.first_block[i] + uint32_t(blocks_of<S, R, F>(g.item[i]));
    const dim3 grid(g.first_block[g.n]);
    return gpu_launch(launch_on(s, grid, dim3(kThreads)), gemv_group_kernel<S, MT, R, U, F>, g);
  }
};

// The kernel shape of a matmul: short rows, split-K or neither, and whether split-K batches 4
// loads.
struct GemvShape {
  bool split, deep, short_rows;
  bool operator==(const GemvShape& o) const {
    return split == o.split && deep == o.deep && short_rows == o.short_rows;
  }
};

// The warp-per-rows form when it yields at least two blocks per SM, else split-K.  Rows per
// warp grow with M so that the activation reads (M per weight vector, from L1) stay a fraction
// of the weight stream.  Split-K batches U = 4 loads only when each thread has that many
// vectors per row to load; otherwise the R rows already give it R loads in flight, and fewer
// registers let more blocks share an SM.
template <WeightStorage S>
GemvShape shape_of(const rwkvrt_bk_stream* s, const GemvArgs& a) {
  const int R = a.m <= 2 ? 2 : 4;
  const uint64_t warp_blocks =
      (a.n_rows + uint64_t(kWarpsPerBlock) * R - 1) / (uint64_t(kWarpsPerBlock) * R);
  const bool split = warp_blocks < 2ull * uint64_t(s->ctx->sm_count);
  const uint64_t nvec = a.kp / Decode<S>::kEpv;
  if (nvec <= kShortVectors && s->ctx->gemv_short_rows) return {false, false, true};
  return {split, split && nvec >= 4ull * kThreads, false};
}

template <WeightStorage S, class Launch>
gpuError_t launch_shape(const Launch& l, uint32_t m, GemvShape sh) {
  constexpr GemvForm kSplit = GemvForm::SplitK, kRows = GemvForm::WarpRows,
                     kShort = GemvForm::ShortRows;
  if (sh.short_rows) {
    if (m <= 1) return l.template run<S, 1, 1, 1, kShort>();
    if (m <= 2) return l.template run<S, 2, 1, 1, kShort>();
    if (m <= 4) return l.template run<S, 4, 1, 1, kShort>();
    return l.template run<S, 8, 1, 1, kShort>();
  }
  if (sh.split) {
    if (m <= 1)
      return sh.deep ? l.template run<S, 1, 4, 4, kSplit>() : l.template run<S, 1, 4, 1, kSplit>();
    if (m <= 2)
      return sh.deep ? l.template run<S, 2, 4, 2, kSplit>() : l.template run<S, 2, 4, 1, kSplit>();
    if (m <= 4) return l.template run<S, 4, 2, 2, kSplit>();
    return l.template run<S, 8, 2, 2, kSplit>();
  }
  if (m <= 1) return l.template run<S, 1, 2, 4, kRows>();
  if (m <= 2) return l.template run<S, 2, 2, 4, kRows>();
  if (m <= 4) return l.template run<S, 4, 4, 2, kRows>();
  return l.template run<S, 8, 4, 2, kRows>();
}

template <WeightStorage S>
gpuError_t launch_storage(const rwkvrt_bk_stream* s, const GemvArgs& a) {
  return launch_shape<S>(SingleLaunch{s, a}, a.m, shape_of<S>(s, a));
}

template <WeightStorage S>
gpuError_t launch_group_storage(const rwkvrt_bk_stream* s, GemvGroup& g, GemvShape sh) {
  return launch_shape<S>(GroupLaunch{s, g}, g.item[0].m, sh);
}

GemvShape shape_for(const rwkvrt_bk_stream* s, WeightStorage storage, const GemvArgs& a) {
  switch (storage) {
    case WeightStorage::F32:
      return shape_of<WeightStorage::F32>(s, a);
    case WeightStorage::F16:
      return shape_of<WeightStorage::F16>(s, a);
    case WeightStorage::BF16:
      return shape_of<WeightStorage::BF16>(s, a);
    case WeightStorage::Codes:
      return shape_of<WeightStorage::Codes>(s, a);
  }
  return {false, false, false};
}

}  // namespace

namespace {

GemvArgs gemv_args(const rwkvrt_bk_stream* s, const rwkvrt_bk_weight* w, const float* x, uint64_t M,
                   uint64_t ldx, float* y, uint64_t ldy, bool accumulate, const float* bias,
                   int32_t act) {
  GemvArgs a{};
  a.w = w->data;
  a.scales = w->scales;
  a.n_rows = w->rows;
  a.kp = w->kp;
  a.k = w->cols;
  a.x = x;
  a.ldx = ldx;
  a.m = uint32_t(M);
  a.y = y;
  a.ldy = ldy;
  a.accumulate = accumulate ? 1u : 0u;
  a.x_vec = (reinterpret_cast<uintptr_t>(x) % 16 == 0 && ldx % 4 == 0) ? 1u : 0u;
  a.bias = bias;
  a.act = act;
  a.preload_weights = s->ctx->gemv_preload_weights ? 1u : 0u;
  return a;
}

}  // namespace

gpuError_t launch_gemv(const rwkvrt_bk_stream* s, const rwkvrt_bk_weight* w, const float* x,
                       uint64_t M, uint64_t ldx, float* y, uint64_t ldy, bool accumulate,
                       const float* bias, int32_t act) {
  const GemvArgs a = gemv_args(s, w, x, M, ldx, y, ldy, accumulate, bias, act);
  switch (w->storage) {
    case WeightStorage::F32:
      return launch_storage<WeightStorage::F32>(s, a);
    case WeightStorage::F16:
      return launch_storage<WeightStorage::F16>(s, a);
    case WeightStorage::BF16:
      return launch_storage<WeightStorage::BF16>(s, a);
    case WeightStorage::Codes:
      return launch_storage<WeightStorage::Codes>(s, a);
  }
  return gpuSuccess;
}

gpuError_t launch_gemv_group(const rwkvrt_bk_stream* s, const rwkvrt_bk_matmul_item* items,
                             uint32_t n) {
  // Consecutive items of the same storage and kernel shape share a launch.
  uint32_t i = 0;
  while (i < n) {
    GemvGroup g{};
    const rwkvrt_bk_weight* w0 = items[i].args.w;
    GemvShape sh{};
    g.n = 0;
    for (; i < n && g.n < uint32_t(kMaxGroup); ++i) {
      const rwkvrt_bk_matmul_item& it = items[i];
      const rwkvrt_bk_weight* w = it.args.w;
      const uint64_t ldx = it.args.ldx ? it.args.ldx : w->cols;
      const uint64_t ldy = it.args.ldy ? it.args.ldy : w->rows;
      const GemvArgs a = gemv_args(s, w, it.args.x, it.args.M, ldx, it.args.y, ldy,
                                   it.args.accumulate != 0, it.bias, it.act);
      const GemvShape ash = shape_for(s, w->storage, a);
      if (g.n > 0 && (w->storage != w0->storage || !(ash == sh))) break;
      if (g.n == 0) sh = ash;
      g.item[g.n++] = a;
    }
    gpuError_t e = gpuSuccess;
    switch (w0->storage) {
      case WeightStorage::F32:
        e = launch_group_storage<WeightStorage::F32>(s, g, sh);
        break;
      case WeightStorage::F16:
        e = launch_group_storage<WeightStorage::F16>(s, g, sh);
        break;
      case WeightStorage::BF16:
        e = launch_group_storage<WeightStorage::BF16>(s, g, sh);
        break;
      case WeightStorage::Codes:
        e = launch_group_storage<WeightStorage::Codes>(s, g, sh);
        break;
    }
    if (e != gpuSuccess) return e;
  }
  return gpuSuccess;
}

}  // namespace rwkvrt::cuda
