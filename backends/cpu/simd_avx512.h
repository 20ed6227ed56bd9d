// The AVX-512 vector type of the templated kernels (small_ops_impl.h, wkv_impl.h): 16 floats.
// Include only from files compiled with the AVX-512 flags (see CMakeLists.txt).  All functions are
// members of a type no baseline file names, so their code is never shared with a baseline caller.
#pragma once

#include "avx512_intrinsics.h"

#include <cstdint>

#include "simd_math.h"

namespace rwkvrt::cpu {

struct Avx512 {
  using F = __m512;
  static constexpr uint64_t kWidth = 16;

  static F zero() { return _mm512_setzero_ps(); }
  static F set1(float v) { return _mm512_set1_ps(v); }
  static F load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, F v) { _mm512_storeu_ps(p, v); }
  // The first n < kWidth lanes: the others load as 0 and are never touched in memory.
  static F load_part(const float* p, uint64_t n) { return _mm512_maskz_loadu_ps(tail(n), p); }
  static void store_part(float* p, F v, uint64_t n) { _mm512_mask_storeu_ps(p, tail(n), v); }

  // v with lanes n.. (n < kWidth) set to 0.
  static F keep_first(F v, uint64_t n) { return _mm512_maskz_mov_ps(tail(n), v); }
  static F add(F a, F b) { return _mm512_add_ps(a, b); }
  static F sub(F a, F b) { return _mm512_sub_ps(a, b); }
  static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F div(F a, F b) { return _mm512_div_ps(a, b); }
  static F min(F a, F b) { return _mm512_min_ps(a, b); }                // b when either is NaN
  static F max(F a, F b) { return _mm512_max_ps(a, b); }                // b when either is NaN
  static F fmadd(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }    // a·b + c
  static F fnmadd(F a, F b, F c) { return _mm512_fnmadd_ps(a, b, c); }  // c − a·b
  static F abs(F a) { return _mm512_abs_ps(a); }
  static F copysign(F magnitude, F sign) {
    const F sign_bit = _mm512_set1_ps(-0.0f);
    return _mm512_or_ps(_mm512_andnot_ps(sign_bit, magnitude), _mm512_and_ps(sign_bit, sign));
  }
  static F round(F a) {
    return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  // p·2^n for integral n in [-160, 130], rounded once (subnormal results included).
  static F ldexp(F p, F n) { return _mm512_scalef_ps(p, n); }
  static F select_lt(F a, F b, F if_less, F otherwise) {
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_LT_OQ), otherwise, if_less);
  }
  static float reduce_add(F v) { return _mm512_reduce_add_ps(v); }

  static F exp(F x) { return vec_exp<Avx512>(x); }
  static F tanh(F x) { return vec_tanh<Avx512>(x); }
  static F sigmoid(F x) { return vec_sigmoid<Avx512>(x); }

 private:
  static __mmask16 tail(uint64_t n) { return __mmask16((1u << n) - 1u); }
};

}  // namespace rwkvrt::cpu
