// The portable "vector" of the templated kernels (small_ops_impl.h, wkv_impl.h): one float, plain
// C++ the compiler may vectorise with the baseline instruction set.  Used on CPUs without AVX2.
#pragma once

#include <cmath>
#include <cstdint>

namespace rwkvrt::cpu {

struct Scalar {
  using F = float;
  static constexpr uint64_t kWidth = 1;

  static F zero() { return 0.0f; }
  static F set1(float v) { return v; }
  static F load(const float* p) { return *p; }
  static void store(float* p, F v) { *p = v; }
  // With one lane there is never a partial vector: n is always 0.
  static F load_part(const float*, uint64_t) { return 0.0f; }
  static void store_part(float*, F, uint64_t) {}

  // v with lanes n.. (n < kWidth) set to 0.
  static F keep_first(F, uint64_t) { return 0.0f; }
  static F add(F a, F b) { return a + b; }
  static F sub(F a, F b) { return a - b; }
  static F mul(F a, F b) { return a * b; }
  static F div(F a, F b) { return a / b; }
  static F max(F a, F b) { return a > b ? a : b; }  // b when either is NaN, like maxps
  static F fmadd(F a, F b, F c) { return a * b + c; }
  static F fnmadd(F a, F b, F c) { return c - a * b; }
  static float reduce_add(F v) { return v; }

  static F exp(F x) { return std::exp(x); }
  static F tanh(F x) { return std::tanh(x); }
  static F sigmoid(F x) { return 1.0f / (1.0f + std::exp(-x)); }
};

}  // namespace rwkvrt::cpu
