// Host allocations of the CPU backend (buffers and prepared weights).
#include <sys/mman.h>

#include <cstdlib>

#include "cpu_backend.h"

namespace rwkvrt::cpu {
namespace {

constexpr uint64_t kHugePage = uint64_t(2) << 20;

uint64_t round_up(uint64_t n, uint64_t to) {
  return (n + to - 1) / to * to;
}

}  // namespace

// Buffers of a huge page or more start on a huge-page boundary and ask for transparent huge pages:
// a weight streamed by the GEMV then needs one TLB entry per 2 MiB instead of per 4 KiB.  The
// advice is only a hint; without THP the memory is ordinary pages.
void* aligned_alloc_bytes(uint64_t bytes) {
  const uint64_t size = round_up(bytes > 0 ? bytes : 1, 64);
  if (size < kHugePage) return std::aligned_alloc(64, size);
  void* p = nullptr;
  const uint64_t huge_size = round_up(size, kHugePage);
  if (posix_memalign(&p, kHugePage, huge_size) != 0) return nullptr;
  ::madvise(p, huge_size, MADV_HUGEPAGE);
  return p;
}

void aligned_free(void* p) {
  std::free(p);
}

}  // namespace rwkvrt::cpu
