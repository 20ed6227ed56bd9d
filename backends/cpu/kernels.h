// The CPU backend's compute kernels.  plugin.cpp validates arguments and calls these; each has a
// fast implementation (AVX-512 / AVX2 with a portable fallback, multithreaded) that the op tests
// compare against the reference ops in backends/reference.
#pragma once

#include <cstdint>

#include "cpu_backend.h"

namespace rwkvrt::cpu {

// Instruction sets this process may use (cpuid + OS support), decided once.
struct CpuFeatures {
  bool avx2_fma = false;
  bool avx512 = false;       // F + BW + VL + DQ
  bool avx512_bf16 = false;
};
const CpuFeatures& cpu_features();
// "AVX-512 (bf16)", "AVX2", "portable"
const char* kernel_isa_name();

// Converts and lays out a matrix for matmul (see rwkvrt_bk_weight).  Chooses the stored dtype
// from desc.want_dtype and the source type; returns an RWKVRT_BK_* code.
int prepare_weight(const rwkvrt_bk_weight_desc& desc, rwkvrt_bk_weight* out);

void matmul(const rwkvrt_bk_matmul_args& a, int n_threads);
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
