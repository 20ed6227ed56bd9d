// The small-op and WKV kernels compiled for AVX2 (see CMakeLists.txt for the flags).
#include "simd_avx2.h"
#include "small_ops_impl.h"
#include "vector_kernels.h"
#include "wkv_impl.h"

namespace rwkvrt::cpu {

const VectorKernels kVectorKernelsAvx2 = {
    &layer_norm_rows<Avx2>, &group_norm_rows<Avx2>, &mix_rows<Avx2>,    &v7_key_prep_rows<Avx2>,
    &v7_bonus_rows<Avx2>,   &unary_span<Avx2>,      &binary_span<Avx2>, &wkv4_channels<Avx2>,
    &wkv5_head<Avx2>,       &wkv7_head<Avx2>,
};

}  // namespace rwkvrt::cpu
