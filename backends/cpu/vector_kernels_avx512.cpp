// The small-op and WKV kernels compiled for AVX-512 (see CMakeLists.txt for the flags).
#include "simd_avx512.h"
#include "small_ops_impl.h"
#include "vector_kernels.h"
#include "wkv_impl.h"

namespace rwkvrt::cpu {

const VectorKernels kVectorKernelsAvx512 = {
    &layer_norm_rows<Avx512>,  &group_norm_rows<Avx512>, &mix_rows<Avx512>,
    &v7_key_prep_rows<Avx512>, &v7_bonus_rows<Avx512>,   &unary_span<Avx512>,
    &binary_span<Avx512>,      &wkv4_channels<Avx512>,   &wkv5_head<Avx512>,
    &wkv7_head<Avx512>,
};

}  // namespace rwkvrt::cpu
