// Loop helpers for kernels written against a SIMD vector type V (Avx512, Avx2 or Scalar): walk a
// span in whole vectors and finish with one partial vector, so no kernel needs a scalar tail.
// Templates on V only, so each instruction set gets its own copies (see simd_math.h).
#pragma once

#include <cstdint>

namespace rwkvrt::cpu {

// Calls body(i, lanes) for i = 0, W, 2W, ... covering [0, n), W = V::kWidth; lanes is W except
// in the last call when W does not divide n.  Inlined, the full-vector calls see a constant W.
template <class V, class Body>
inline void for_vectors(uint64_t n, Body&& body) {
  uint64_t i = 0;
  for (; i + V::kWidth <= n; i += V::kWidth) body(i, V::kWidth);
  if (i < n) body(i, n - i);
}

// Loads / stores `lanes` (1..W) floats: a plain access for a whole vector, a masked one otherwise.
template <class V>
inline typename V::F load_lanes(const float* p, uint64_t lanes) {
  return lanes == V::kWidth ? V::load(p) : V::load_part(p, lanes);
}
template <class V>
inline void store_lanes(float* p, typename V::F v, uint64_t lanes) {
  if (lanes == V::kWidth) {
    V::store(p, v);
  } else {
    V::store_part(p, v, lanes);
  }
}

// y[i] = fn(x[i]) for n floats, one vector at a time; y may equal x.
template <class V, class Fn>
void map_span(const float* x, float* y, uint64_t n, Fn fn) {
  for_vectors<V>(n, [&](uint64_t i, uint64_t lanes) {
    store_lanes<V>(y + i, fn(load_lanes<V>(x + i, lanes)), lanes);
  });
}

// Σ a[i]·b[i] over n floats, in fp32 with several independent accumulators.
template <class V>
inline float dot(const float* a, const float* b, uint64_t n) {
  typename V::F acc0 = V::zero(), acc1 = V::zero();
  uint64_t i = 0;
  for (; i + 2 * V::kWidth <= n; i += 2 * V::kWidth) {
    acc0 = V::fmadd(V::load(a + i), V::load(b + i), acc0);
    acc1 = V::fmadd(V::load(a + i + V::kWidth), V::load(b + i + V::kWidth), acc1);
  }
  for_vectors<V>(n - i, [&](uint64_t j, uint64_t lanes) {
    acc0 = V::fmadd(load_lanes<V>(a + i + j, lanes), load_lanes<V>(b + i + j, lanes), acc0);
  });
  return V::reduce_add(V::add(acc0, acc1));
}

}  // namespace rwkvrt::cpu
