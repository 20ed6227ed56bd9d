// Internal types of the CPU backend plugin.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "rwkvrt/backend.h"

struct rwkvrt_bk_context {
  int32_t n_threads = 1;
};

struct rwkvrt_bk_stream {
  rwkvrt_bk_context* ctx = nullptr;
};

// A prepared matrix [N][K].  `data` holds rows of `row_bytes` bytes in `dtype`, 64-byte aligned.
struct rwkvrt_bk_weight {
  std::string name;
  rwkvrt_bk_dtype dtype = RWKVRT_BK_F32;
  uint64_t rows = 0;       // N
  uint64_t cols = 0;       // K
  uint64_t row_bytes = 0;
  void* data = nullptr;    // aligned allocation
  uint64_t bytes = 0;
  // Backend-private acceleration state (e.g. a oneDNN primitive cache); may be null.
  std::shared_ptr<void> accel;
};

namespace rwkvrt::cpu {

// Sets the calling thread's plugin error message.  Returns `code` for convenient `return fail(...)`.
int set_error(int code, const std::string& message);

// 64-byte aligned allocation helpers (plain host memory; large ones ask for huge pages).
void* aligned_alloc_bytes(uint64_t bytes);
void aligned_free(void* p);

}  // namespace rwkvrt::cpu
