// oneDNN matmul for the prefill path.
//
// Primitives are shape-specialised (the brgemm kernels are generated for exact M, K, N and
// strides) and creating one costs 0.3–1 ms, so they are cached: the key is the whole shape plus
// the accumulate flag and the thread count, not the weight itself, so the layers of a model that
// share a shape share one primitive, and a new prompt length costs one creation per shape.  The
// cache is process-wide, bounded, and evicts the least recently used entry.
//
// Non-fp32 weights are decoded to fp32 before the product.  One panel covering the whole weight
// measured fastest (M = 32 and 512, K = N = 2048: splitting it into 1–4 MiB panels made each
// oneDNN call pay its setup again and ran up to 4× slower with two threads), so panels are capped
// only to bound the scratch memory.
#include "gemm_onednn.h"

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <mutex>
#include <new>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <vector>

#include "cpu_backend.h"
#include "parallel.h"

namespace rwkvrt::cpu {
namespace {

// Largest fp32 panel decoded from a non-fp32 weight per oneDNN call.
constexpr uint64_t kMaxPanelBytes = uint64_t(64) << 20;
constexpr size_t kCacheCapacity = 256;

struct Shape {
  uint64_t M, K, N, ldx, ldw, ldy;
  bool accumulate;
  int threads;
  bool operator==(const Shape& o) const {
    return M == o.M && K == o.K && N == o.N && ldx == o.ldx && ldw == o.ldw && ldy == o.ldy &&
           accumulate == o.accumulate && threads == o.threads;
  }
};

// oneDNN's OpenMP runtime sizes its parallel regions by omp_get_max_threads() of the calling
// thread, both when a primitive is created and when it runs; this sets it for a scope.
class OmpThreadsScope {
 public:
  explicit OmpThreadsScope(int n) : saved_(omp_get_max_threads()) { omp_set_num_threads(n); }
  ~OmpThreadsScope() { omp_set_num_threads(saved_); }
  OmpThreadsScope(const OmpThreadsScope&) = delete;
  OmpThreadsScope& operator=(const OmpThreadsScope&) = delete;

 private:
  int saved_;
};

// A grow-only, huge-page backed buffer reused across calls by one host thread: allocating the
// several MiB of a panel or scratchpad afresh per call would page-fault through it every time.
class ScratchBuffer {
 public:
  // Returns at least `bytes` bytes; throws std::bad_alloc.
  void* reserve(uint64_t bytes) {
    if (bytes > size_) {
      data_.reset(aligned_alloc_bytes(bytes));
      size_ = data_ ? bytes : 0;
      if (!data_) throw std::bad_alloc();
    }
    return data_.get();
  }

 private:
  struct Free {
    void operator()(void* p) const { aligned_free(p); }
  };
  std::unique_ptr<void, Free> data_;
  uint64_t size_ = 0;
};

const dnnl::engine& cpu_engine() {
  static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

dnnl::memory::desc matrix_desc(uint64_t rows, uint64_t cols, uint64_t row_stride,
                               uint64_t col_stride) {
  return dnnl::memory::desc({dnnl::memory::dim(rows), dnnl::memory::dim(cols)},
                            dnnl::memory::data_type::f32,
                            {dnnl::memory::dim(row_stride), dnnl::memory::dim(col_stride)});
}

// y[M][N] = x[M][K] · B[K][N] (+ y), B being W [N][K] read transposed.
dnnl::memory::desc x_desc(const Shape& s) {
  return matrix_desc(s.M, s.K, s.ldx, 1);
}
dnnl::memory::desc w_desc(const Shape& s) {
  return matrix_desc(s.K, s.N, 1, s.ldw);
}
dnnl::memory::desc y_desc(const Shape& s) {
  return matrix_desc(s.M, s.N, s.ldy, 1);
}

// A primitive and the layout of the scratchpad it needs, which the caller supplies (see run()).
struct Primitive {
  dnnl::matmul matmul;
  dnnl::memory::desc scratchpad;
};

class PrimitiveCache {
 public:
  // Throws dnnl::error when oneDNN cannot create the primitive.
  Primitive get(const Shape& s) {
    std::lock_guard<std::mutex> lock(mutex_);
    ++tick_;
    for (Entry& e : entries_)
      if (e.shape == s) {
        e.last_use = tick_;
        return e.primitive;
      }
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    if (s.accumulate) {
      dnnl::post_ops ops;
      ops.append_sum(1.0f);
      attr.set_post_ops(ops);
    }
    const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(x_desc(s), w_desc(s), y_desc(s)), attr,
                                          cpu_engine());
    if (entries_.size() >= kCacheCapacity) {
      size_t oldest = 0;
      for (size_t i = 1; i < entries_.size(); ++i)
        if (entries_[i].last_use < entries_[oldest].last_use) oldest = i;
      entries_.erase(entries_.begin() + ptrdiff_t(oldest));
    }
    entries_.push_back({s, {dnnl::matmul(pd), pd.scratchpad_desc()}, tick_});
    return entries_.back().primitive;
  }

 private:
  struct Entry {
    Shape shape;
    Primitive primitive;
    uint64_t last_use;
  };
  std::mutex mutex_;
  std::vector<Entry> entries_;
  uint64_t tick_ = 0;
};

PrimitiveCache& primitive_cache() {
  static PrimitiveCache cache;
  return cache;
}

// Runs a primitive on the calling thread's stream; `scratchpad` holds its scratchpad_desc size.
void run(const Primitive& prim, const Shape& s, const float* x, const float* w, float* y,
         void* scratchpad) {
  const dnnl::engine& eng = cpu_engine();
  thread_local dnnl::stream stream(eng);
  dnnl::memory xm(x_desc(s), eng, const_cast<float*>(x));
  dnnl::memory wm(w_desc(s), eng, const_cast<float*>(w));
  dnnl::memory ym(y_desc(s), eng, y);
  dnnl::memory sm(prim.scratchpad, eng, scratchpad);
  prim.matmul.execute(
      stream,
      {{DNNL_ARG_SRC, xm}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DST, ym}, {DNNL_ARG_SCRATCHPAD, sm}});
  stream.wait();
}

}  // namespace

int gemm_onednn(const MatrixView& w, rwkvrt_bk_dtype dtype, const GemvArgs& a, int n_threads) {
  const OmpThreadsScope threads(n_threads);
  const uint64_t K = w.cols, N = w.rows;
  const bool dense = dtype == RWKVRT_BK_F32;
  // fp32 weights are one panel read in place; others are decoded into panels of whole rows.
  uint64_t panel_rows = N;
  if (!dense && N * K * 4 > kMaxPanelBytes)
    panel_rows = kMaxPanelBytes / (K * 4) > 16 ? kMaxPanelBytes / (K * 4) / 16 * 16 : 16;
  const Shape full_shape{
      a.M, K, panel_rows, a.ldx, dense ? w.row_bytes / 4 : K, a.ldy, a.accumulate, n_threads};
  Shape tail_shape = full_shape;
  tail_shape.N = N % panel_rows;
  thread_local ScratchBuffer panel_buffer, scratchpad_buffer;
  // Everything that can fail for want of resources happens before y is touched.
  Primitive full, tail;
  float* panel = nullptr;
  void* scratchpad = nullptr;
  try {
    full = primitive_cache().get(full_shape);
    if (tail_shape.N > 0) tail = primitive_cache().get(tail_shape);
    const uint64_t scratch_bytes =
        std::max(full.scratchpad.get_size(), tail_shape.N > 0 ? tail.scratchpad.get_size() : 0);
    scratchpad = scratchpad_buffer.reserve(scratch_bytes);
    if (!dense) panel = static_cast<float*>(panel_buffer.reserve(panel_rows * K * 4));
  } catch (const dnnl::error&) {
    return RWKVRT_BK_UNSUPPORTED;
  } catch (const std::bad_alloc&) {
    return RWKVRT_BK_UNSUPPORTED;
  }
  try {
    if (dense) {
      run(full, full_shape, a.x, reinterpret_cast<const float*>(w.data), a.y, scratchpad);
      return RWKVRT_BK_OK;
    }
    const auto decode = matrix_kernels().decode_rows[dtype];
    for (uint64_t n0 = 0; n0 < N; n0 += panel_rows) {
      const bool is_tail = N - n0 < panel_rows;
      const uint64_t rows = is_tail ? N - n0 : panel_rows;
      const MatrixView part{w.data + n0 * w.row_bytes, rows, K, w.row_bytes};
      parallel_for(rows, rows * K, n_threads,
                   [&](uint64_t r0, uint64_t r1) { decode(part, r0, r1, panel + r0 * K, K); });
      run(is_tail ? tail : full, is_tail ? tail_shape : full_shape, a.x, panel, a.y + n0,
          scratchpad);
    }
  } catch (const dnnl::error& e) {
    return set_error(RWKVRT_BK_ERROR, std::string("oneDNN matmul failed: ") + e.what());
  }
  return RWKVRT_BK_OK;
}

}  // namespace rwkvrt::cpu
