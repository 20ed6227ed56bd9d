// Internal types of the CUDA backend plugin: the opaque ABI handles (context, stream, weight,
// graph), the per-stream scratch arena, and error reporting.  Shared by the host files and the
// kernel launchers; no kernel code here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "blas.h"
#include "gpu_portability.h"
#include "rwkvrt/backend.h"

// One device.  Several contexts may name the same device; they share its primary context.
struct rwkvrt_bk_context {
  int device = 0;
  int cc_major = 0, cc_minor = 0;
  int sm_count = 0;
  // Programmatic dependent launch between consecutive kernels (compute capability 9.0 and newer,
  // unless RWKVRT_CUDA_PDL=0).
  bool chained_launch = false;
  // Matmuls with at least this many rows on f16/bf16 weights round the activations to the weight
  // type and run one tensor-core GEMM (RWKVRT_CUDA_FAST_GEMM_ROWS; default never): fewer rows
  // keep fp32-level accuracy (matmul.cpp, docs/CUDA.md).
  uint64_t fast_gemm_rows = UINT64_MAX;
  // Single-token WKV-7 calls over at least this many (sequence, head) pairs run the unstaged
  // step kernel (wkv7.cu); RWKVRT_CUDA_WKV7_STEP_HEADS overrides it, for measurements.
  uint64_t wkv7_step_min_heads = 1;
  // WKV-7 calls of at least this many tokens run the chunked kernels (wkv7_chunked.cu) where
  // they support the shape; RWKVRT_CUDA_WKV7_CHUNK_TOKENS overrides it (0: never), for
  // measurements and comparisons with the sequential kernel.  Measured on the H200 (one sequence,
  // N = 64): at 16 tokens the two launches of the chunked form cost more than they save (H = 32:
  // 12.4 against 7.4 µs), at 64 they break even (18.6 against 22.8 µs; H = 64 27.3 against 25.8),
  // at 256 the chunked form wins (57.8 against 82.9 µs; H = 64 65.6 against 93.0).
  uint64_t wkv7_chunk_min_tokens = 64;
  // Decode GEMVs issue their first weight loads before waiting for the chained prior kernel
  // (gemv.cu); RWKVRT_CUDA_GEMV_PRELOAD=0 turns it off, for measurements.
  bool gemv_preload_weights = true;
  // Decode GEMVs over short rows (at most 64 vectors: LoRA up projections) use L lanes per row
  // (gemv.cu); RWKVRT_CUDA_GEMV_SHORT_ROWS=0 gives them the split-K or warp-per-rows form, for
  // measurements.
  bool gemv_short_rows = true;
  // The single-token WKV-7 kernel gives each lane group several value rows when there are many
  // heads (wkv7.cu); RWKVRT_CUDA_WKV7_STEP_ROWS=1 keeps one row per group, for measurements.
  bool wkv7_wide_step = true;
};

namespace rwkvrt::cuda {

// Device memory that grows on demand and is never shrunk or freed before its stream: a captured
// graph keeps referring to the addresses it saw, so a buffer outgrown after a capture stays
// alive (retired) until the stream goes.
class Scratch {
 public:
  // Returns `bytes` (rounded up to 256) of device memory, or null on allocation failure.
  void* get(uint64_t bytes);
  void release_all();

 private:
  void* ptr_ = nullptr;
  uint64_t size_ = 0;
  std::vector<void*> retired_;
};

// Pinned host memory for small uploads: the host source is copied into a slot and the DMA reads
// the slot, so upload() returns at once and the caller may reuse its buffer.  A slot is reused
// only after the event recorded behind its copy has completed.
class UploadRing {
 public:
  static constexpr uint64_t kSlotBytes = 64 * 1024;
  static constexpr int kSlots = 16;
  gpuError_t init();
  bool ready() const { return pinned_ != nullptr; }
  void release();
  // Copies `bytes` (<= kSlotBytes) from host `src` to device `dst` on `stream`.
  gpuError_t upload(gpuStream_t stream, void* dst, const void* src, uint64_t bytes);

 private:
  char* pinned_ = nullptr;
  gpuEvent_t events_[kSlots] = {};
  bool used_[kSlots] = {};
  int next_ = 0;
};

}  // namespace rwkvrt::cuda

struct rwkvrt_bk_stream {
  rwkvrt_bk_context* ctx = nullptr;
  gpuStream_t stream = nullptr;
  rwkvrt::cuda::BlasHandle blas = nullptr;
  void* blas_workspace = nullptr;
  rwkvrt::cuda::Scratch scratch;
  rwkvrt::cuda::UploadRing ring;
  bool capturing = false;
};

// How a prepared matrix is stored on the device.
enum class WeightStorage {
  F32,   // float [N][Kp]
  F16,   // half [N][Kp]
  BF16,  // bfloat16 [N][Kp]
  Codes  // block types: int8 codes [N][K] + float2 (scale d, offset m) per 32 values [N][K/32]
};

struct rwkvrt_bk_weight {
  std::string name;
  rwkvrt_bk_dtype dtype = RWKVRT_BK_F32;  // reported precision (the values kept exactly)
  WeightStorage storage = WeightStorage::F32;
  uint64_t rows = 0;  // N
  uint64_t cols = 0;  // K
  uint64_t kp = 0;    // padded row length in elements (dense: K rounded up to 8; codes: K)
  void* data = nullptr;
  float2* scales = nullptr;  // Codes only
  uint64_t bytes = 0;
  // RWKVRT_BK_MATMUL_ROUNDED_ACTIVATIONS was asked for: GEMMs (M > kGemvMaxRows) on f16/bf16
  // weights and block codes round the activations and run one tensor-core pass.
  bool round_activations = false;
};

struct rwkvrt_bk_graph {
  gpuGraph_t graph = nullptr;
  gpuGraphExec_t exec = nullptr;
};

namespace rwkvrt::cuda {

// Records `message` as the calling thread's last error and returns `code`.
int set_error(int code, const std::string& message);
// Maps a runtime error to an ABI code with a message naming `what`; RWKVRT_BK_OK for success.
int check(gpuError_t err, const char* what);
// For ops on a stream: like check(), and when the stream is being captured, the capture is
// abandoned so the stream stays usable for eager work (the host then gets no graph).
int check_op(rwkvrt_bk_stream* s, gpuError_t err, const char* what);
// Ends a capture in progress on `s` (if any) and discards its graph.
void abandon_capture(rwkvrt_bk_stream* s);
// Creates the stream's cuBLAS handle (and workspace) if it has none yet.  Returns an ABI code.
int ensure_blas(rwkvrt_bk_stream* s);
// Makes `device` current on the calling thread (cached per thread).
gpuError_t use_device(int device);

// Launch geometry for a stream.
inline GpuLaunch launch_on(const rwkvrt_bk_stream* s, dim3 grid, dim3 block, unsigned smem = 0) {
  return GpuLaunch{grid, block, s->stream, s->ctx->chained_launch, smem};
}

// Blocks of `threads` needed to cover `n` items, capped for grid-stride loops.
inline unsigned blocks_for(uint64_t n, unsigned threads, unsigned cap = 65535u * 8u) {
  const uint64_t b = (n + threads - 1) / threads;
  return unsigned(b < cap ? b : cap);
}

}  // namespace rwkvrt::cuda
