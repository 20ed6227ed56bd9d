// The CPU backend's compute kernels.  plugin.cpp validates arguments and calls these; each one
// picks the instruction-set variant chosen at start-up (AVX-512, AVX2 or portable C++, see
// cpu_features.cpp), splits the work over up to `n_threads` OpenMP threads when it is big enough
// to pay for the fork, and matches the reference ops of backends/reference to fp32 rounding.
// Every function is thread-safe for distinct outputs; none allocates device memory.
#pragma once

#include <cstdint>

#include "cpu_backend.h"

namespace rwkvrt::cpu {

// Instruction sets this process may use (cpuid + OS support of the register state), decided once.
struct CpuFeatures {
  bool avx2_fma = false;  // AVX2 + FMA + F16C
  bool avx512 = false;    // AVX-512 F + BW + VL + DQ (and AVX2/FMA/F16C)
};
const CpuFeatures& cpu_features();

// The kernel variant in use: "AVX-512", "AVX2" or "portable".  The best one the CPU supports,
// unless the environment variable RWKVRT_CPU_KERNELS names a lower one (avx2, portable), which
// tests and benchmarks use to exercise every variant on one machine.
const char* kernel_isa_name();

// Converts and lays out a matrix for matmul (see rwkvrt_bk_weight and README.md for the stored
// dtypes).  Fills every field of `out`; on failure returns an RWKVRT_BK_* code with the error
// message set, and `out->data` is either null or an allocation the caller frees.
int prepare_weight(const rwkvrt_bk_weight_desc& desc, rwkvrt_bk_weight* out);

// y (+)= x·Wᵀ.  Arguments are validated by the caller (ld* already checked against the shape).
// Returns RWKVRT_BK_OK, or RWKVRT_BK_ERROR with the error message set if oneDNN fails mid-way.
int matmul(const rwkvrt_bk_matmul_args& a, int n_threads);
void layer_norm(const rwkvrt_bk_norm_args& a, int n_threads);
void group_norm(const rwkvrt_bk_norm_args& a, int n_threads);
void token_shift(const rwkvrt_bk_token_shift_args& a, int n_threads);
void mix(const rwkvrt_bk_mix_args& a, int n_threads);
void unary(rwkvrt_bk_unary op, const float* x, float* y, uint64_t n, int n_threads);
void binary(rwkvrt_bk_binary op, const float* a, const float* b, float* y, uint64_t M, uint64_t C,
            bool b_is_row, int n_threads);
void gather_rows(const float* table, uint64_t C, const int32_t* ids, uint64_t M, float* out,
                 int n_threads);
void wkv4(const rwkvrt_bk_wkv4_args& a, int n_threads);
void wkv5(const rwkvrt_bk_wkv5_args& a, int n_threads);
void wkv7(const rwkvrt_bk_wkv7_args& a, int n_threads);
void v7_key_prep(const rwkvrt_bk_v7_key_args& a, int n_threads);
void v7_bonus(const rwkvrt_bk_v7_bonus_args& a, int n_threads);

}  // namespace rwkvrt::cpu
