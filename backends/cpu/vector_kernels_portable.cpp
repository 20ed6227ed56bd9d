// The small-op and WKV kernels compiled for portable C++ (see CMakeLists.txt for the flags).
#include "simd_scalar.h"
#include "small_ops_impl.h"
#include "vector_kernels.h"
#include "wkv_impl.h"

namespace rwkvrt::cpu {

const VectorKernels kVectorKernelsPortable = {
    &layer_norm_rows<Scalar>,  &group_norm_rows<Scalar>, &mix_rows<Scalar>,
    &v7_key_prep_rows<Scalar>, &v7_bonus_rows<Scalar>,   &unary_span<Scalar>,
    &binary_span<Scalar>,      &wkv4_channels<Scalar>,   &wkv5_head<Scalar>,
    &wkv7_head<Scalar>,
};

}  // namespace rwkvrt::cpu
