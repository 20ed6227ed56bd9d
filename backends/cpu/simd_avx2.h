// The AVX2 vector type of the templated kernels (small_ops_impl.h, wkv_impl.h): 8 floats.
// Include only from files compiled with the AVX2 flags (see CMakeLists.txt).  All functions are
// members of a type no baseline file names, so their code is never shared with a baseline caller.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "simd_math.h"

namespace rwkvrt::cpu {

struct Avx2 {
  using F = __m256;
  static constexpr uint64_t kWidth = 8;

  static F zero() { return _mm256_setzero_ps(); }
  static F set1(float v) { return _mm256_set1_ps(v); }
  static F load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, F v) { _mm256_storeu_ps(p, v); }
  // The first n < kWidth lanes: the others load as 0 and are never touched in memory.
  static F load_part(const float* p, uint64_t n) { return _mm256_maskload_ps(p, tail(n)); }
  static void store_part(float* p, F v, uint64_t n) { _mm256_maskstore_ps(p, tail(n), v); }

  // v with lanes n.. (n < kWidth) set to 0.
  static F keep_first(F v, uint64_t n) { return _mm256_and_ps(v, _mm256_castsi256_ps(tail(n))); }
  static F add(F a, F b) { return _mm256_add_ps(a, b); }
  static F sub(F a, F b) { return _mm256_sub_ps(a, b); }
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F div(F a, F b) { return _mm256_div_ps(a, b); }
  static F min(F a, F b) { return _mm256_min_ps(a, b); }                // b when either is NaN
  static F max(F a, F b) { return _mm256_max_ps(a, b); }                // b when either is NaN
  static F fmadd(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }    // a·b + c
  static F fnmadd(F a, F b, F c) { return _mm256_fnmadd_ps(a, b, c); }  // c − a·b
  static F abs(F a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
  static F copysign(F magnitude, F sign) {
    const F sign_bit = _mm256_set1_ps(-0.0f);
    return _mm256_or_ps(_mm256_andnot_ps(sign_bit, magnitude), _mm256_and_ps(sign_bit, sign));
  }
  static F round(F a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  // p·2^n for integral n in [-160, 130], rounded once: two exact power-of-two factors, each in
  // the normal exponent range, so only the final product can round (into a subnormal).
  static F ldexp(F p, F n) {
    const F half = _mm256_floor_ps(_mm256_mul_ps(n, _mm256_set1_ps(0.5f)));
    return _mm256_mul_ps(_mm256_mul_ps(p, pow2(half)), pow2(_mm256_sub_ps(n, half)));
  }
  static F select_lt(F a, F b, F if_less, F otherwise) {
    return _mm256_blendv_ps(otherwise, if_less, _mm256_cmp_ps(a, b, _CMP_LT_OQ));
  }
  static float reduce_add(F v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }

  static F exp(F x) { return vec_exp<Avx2>(x); }
  static F tanh(F x) { return vec_tanh<Avx2>(x); }
  static F sigmoid(F x) { return vec_sigmoid<Avx2>(x); }

 private:
  // 2^k for integral k in [-126, 127], built in the exponent field.
  static F pow2(F k) {
    const __m256i e = _mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127));
    return _mm256_castsi256_ps(_mm256_slli_epi32(e, 23));
  }
  static __m256i tail(uint64_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(int32_t(n)),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
};

}  // namespace rwkvrt::cpu
