// Instruction-set detection and the choice of kernel tables, made once per process.
#include <cpuid.h>

#include <cstdlib>
#include <cstring>

#include "kernels.h"
#include "matrix_kernels.h"
#include "vector_kernels.h"

namespace rwkvrt::cpu {
namespace {

enum class Isa { kPortable, kAvx2, kAvx512 };

// The best instruction set the CPU supports, lowered to the one RWKVRT_CPU_KERNELS names
// ("avx2", "portable"); other values are ignored.
Isa choose_isa() {
  const CpuFeatures& f = cpu_features();
  Isa isa = f.avx512 ? Isa::kAvx512 : f.avx2_fma ? Isa::kAvx2 : Isa::kPortable;
  if (const char* want = std::getenv("RWKVRT_CPU_KERNELS")) {
    if (std::strcmp(want, "portable") == 0) isa = Isa::kPortable;
    if (std::strcmp(want, "avx2") == 0 && isa == Isa::kAvx512) isa = Isa::kAvx2;
  }
  return isa;
}

Isa active_isa() {
  static const Isa isa = choose_isa();
  return isa;
}

// F16C from CPUID leaf 1 (ECX bit 29): clang 14's __builtin_cpu_supports does not know "f16c".
// It needs no OS support of its own beyond the YMM state that the AVX2 check already covers.
bool cpu_has_f16c() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  return __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 && (ecx & bit_F16C) != 0;
}

}  // namespace

const CpuFeatures& cpu_features() {
  // __builtin_cpu_supports (libgcc or compiler-rt) also checks that the OS saves the YMM/ZMM
  // state (XCR0).
  static const CpuFeatures f = [] {
    CpuFeatures c;
    __builtin_cpu_init();
    c.avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
    c.avx512 = c.avx2_fma && __builtin_cpu_supports("avx512f") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx512dq");
    return c;
  }();
  return f;
}

const char* kernel_isa_name() {
  switch (active_isa()) {
    case Isa::kAvx512:
      return "AVX-512";
    case Isa::kAvx2:
      return "AVX2";
    case Isa::kPortable:
      break;
  }
  return "portable";
}

const VectorKernels& vector_kernels() {
  switch (active_isa()) {
    case Isa::kAvx512:
      return kVectorKernelsAvx512;
    case Isa::kAvx2:
      return kVectorKernelsAvx2;
    case Isa::kPortable:
      break;
  }
  return kVectorKernelsPortable;
}

const MatrixKernels& matrix_kernels() {
  switch (active_isa()) {
    case Isa::kAvx512:
      return kMatrixKernelsAvx512;
    case Isa::kAvx2:
      return kMatrixKernelsAvx2;
    case Isa::kPortable:
      break;
  }
  return kMatrixKernelsPortable;
}

}  // namespace rwkvrt::cpu
