// The WKV recurrences: tokens are sequential, so the parallelism is over sequences and heads
// (v5/v6/v7) or sequences and channel blocks (v4); each task runs all T tokens of its part of the
// state with the vector kernels of the instruction set in use.
#include <vector>

#include "kernels.h"
#include "parallel.h"
#include "vector_kernels.h"

namespace rwkvrt::cpu {
namespace {

// v4 channels per task: a few vectors, enough to hide the exp latency, few enough to balance.
constexpr uint64_t kWkv4Channels = 64;

// Runs head_fn(b, h, scratch) for every (sequence, head), the pairs split over the threads, each
// thread with its own scratch.
template <class HeadFn>
void for_each_head(uint64_t B, uint64_t T, uint64_t H, uint64_t N, int n_threads,
                   HeadFn&& head_fn) {
  parallel_for(B * H, B * T * H * N * N, n_threads, [&](uint64_t p0, uint64_t p1) {
    std::vector<float> scratch(kWkvScratchPerN * N);
    for (uint64_t p = p0; p < p1; ++p) head_fn(p / H, p % H, scratch.data());
  });
}

}  // namespace

void wkv4(const rwkvrt_bk_wkv4_args& a, int n_threads) {
  const VectorKernels& k = vector_kernels();
  const uint64_t blocks = (a.C + kWkv4Channels - 1) / kWkv4Channels;
  // Each channel-token costs four exponentials: weigh it like several copies.
  parallel_for(a.B * blocks, 8 * a.B * a.T * a.C, n_threads, [&](uint64_t p0, uint64_t p1) {
    for (uint64_t p = p0; p < p1; ++p) {
      const uint64_t c0 = (p % blocks) * kWkv4Channels;
      const uint64_t c1 = c0 + kWkv4Channels < a.C ? c0 + kWkv4Channels : a.C;
      k.wkv4(a, p / blocks, c0, c1);
    }
  });
}

void wkv5(const rwkvrt_bk_wkv5_args& a, int n_threads) {
  const VectorKernels& k = vector_kernels();
  for_each_head(a.B, a.T, a.H, a.N, n_threads,
                [&](uint64_t b, uint64_t h, float* scratch) { k.wkv5(a, b, h, scratch); });
}

void wkv7(const rwkvrt_bk_wkv7_args& a, int n_threads) {
  const VectorKernels& k = vector_kernels();
  for_each_head(a.B, a.T, a.H, a.N, n_threads,
                [&](uint64_t b, uint64_t h, float* scratch) { k.wkv7(a, b, h, scratch); });
}

}  // namespace rwkvrt::cpu
