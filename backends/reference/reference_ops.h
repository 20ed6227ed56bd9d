// Plain, scalar reference implementation of every backend op.  This is the specification the fast
// kernels of every backend are tested against: written for clarity, in the order the formulas of
// docs/RWKV-MATH.md state them, with no attempt at speed.  All pointers are host pointers and the
// state references' `bases` arrays are host arrays.
#pragma once

#include <cstdint>

#include "rwkvrt/backend.h"

namespace rwkvrt::reference {

// A dense fp32 weight in the backend's [N][K] orientation.
struct DenseWeight {
  const float* data;
  uint64_t rows;  // N
  uint64_t cols;  // K
};

void matmul(const float* x, uint64_t M, uint64_t ldx, const DenseWeight& w, float* y, uint64_t ldy,
            bool accumulate);
void gather_rows(const float* table, uint64_t C, const int32_t* ids, uint64_t M, float* out);
void layer_norm(const rwkvrt_bk_norm_args& a);
void group_norm(const rwkvrt_bk_norm_args& a);
void token_shift(const rwkvrt_bk_token_shift_args& a);
void mix(const rwkvrt_bk_mix_args& a);
void unary(rwkvrt_bk_unary op, const float* x, float* y, uint64_t n);
void binary(rwkvrt_bk_binary op, const float* a, const float* b, float* y, uint64_t M, uint64_t C,
            bool b_is_row);
void wkv4(const rwkvrt_bk_wkv4_args& a);
void wkv5(const rwkvrt_bk_wkv5_args& a);
void wkv7(const rwkvrt_bk_wkv7_args& a);
void v7_key_prep(const rwkvrt_bk_v7_key_args& a);
void v7_bonus(const rwkvrt_bk_v7_bonus_args& a);

// Scalar element functions, shared by the fast kernels' tails so both compute the same thing.
float apply_unary(rwkvrt_bk_unary op, float x);

}  // namespace rwkvrt::reference
