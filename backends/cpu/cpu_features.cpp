// Instruction-set detection and the choice of kernel tables, made once per process.
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

}  // namespace

const CpuFeatures& cpu_features() {
  // libgcc's __builtin_cpu_supports also checks that the OS saves the YMM/ZMM state (XCR0).
  static const CpuFeatures f = [] {
    CpuFeatures c;
    __builtin_cpu_init();
    c.avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                 __builtin_cpu_supports("f16c");
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
