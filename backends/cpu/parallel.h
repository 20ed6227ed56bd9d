// Splitting a range of independent work items over the context's OpenMP threads.
#pragma once

#include <omp.h>

#include <cstdint>

namespace rwkvrt::cpu {

// An OpenMP fork/join costs a few microseconds, about what one core needs to stream this many
// floats from cache; ops touching fewer run on the calling thread.  A decode step issues dozens
// of tiny ops per layer, which must not pay for a fork each.
constexpr uint64_t kParallelMinFloats = uint64_t(1) << 15;

// Calls fn(begin, end) on contiguous, near-equal parts of [0, n), one per thread, with part
// boundaries on multiples of `grain` (the last part takes the remainder).  `work` is a rough count
// of the floats the whole range touches: below kParallelMinFloats, or with one thread or one
// grain, fn runs once on the calling thread.
template <class Fn>
void parallel_for(uint64_t n, uint64_t work, int n_threads, Fn&& fn, uint64_t grain = 1) {
  const uint64_t units = (n + grain - 1) / grain;
  uint64_t parts = n_threads > 1 && work >= kParallelMinFloats ? uint64_t(n_threads) : 1;
  if (parts > units) parts = units;
  if (parts <= 1) {
    if (n > 0) fn(uint64_t(0), n);
    return;
  }
#pragma omp parallel num_threads(int(parts))
  {
    const uint64_t t = uint64_t(omp_get_thread_num()), nt = uint64_t(omp_get_num_threads());
    const uint64_t begin = units * t / nt * grain;
    const uint64_t end = t + 1 == nt ? n : units * (t + 1) / nt * grain;
    if (begin < end) fn(begin, end);
  }
}

}  // namespace rwkvrt::cpu
