// Transcendental functions over the SIMD vector types of simd_avx512.h and simd_avx2.h, written
// once against their common interface.  Included only by files compiled for those instruction
// sets; every function is a template on the vector type, so each instantiation carries the ISA in
// its symbol name and can never be shared with a baseline caller.
//
// Accuracy: exp within 2 ulp of the correctly rounded result over the whole float range (the
// Cephes expf polynomial after a two-constant Cody–Waite reduction), results below the smallest
// normal float are produced as subnormals like libm's, +inf above 88.72, NaN propagated.  tanh and
// the sigmoid inherit that accuracy; tanh switches to an odd polynomial for |x| < 0.625, where
// 1 − 2/(e^{2x}+1) would cancel.
#pragma once

namespace rwkvrt::cpu {

template <class V>
typename V::F vec_exp(typename V::F x) {
  using F = typename V::F;
  // Outside [-110, 89] the result is 0 or +inf; the operand order keeps a NaN x a NaN.
  x = V::max(V::set1(-110.0f), V::min(V::set1(89.0f), x));
  const F n = V::round(V::mul(x, V::set1(1.44269504088896341f)));
  // r = x − n·ln2, with ln2 split so n·C1 is exact.
  F r = V::fnmadd(n, V::set1(0.693359375f), x);
  r = V::fnmadd(n, V::set1(-2.12194440e-4f), r);
  F p = V::set1(1.9875691500e-4f);
  p = V::fmadd(p, r, V::set1(1.3981999507e-3f));
  p = V::fmadd(p, r, V::set1(8.3334519073e-3f));
  p = V::fmadd(p, r, V::set1(4.1665795894e-2f));
  p = V::fmadd(p, r, V::set1(1.6666665459e-1f));
  p = V::fmadd(p, r, V::set1(5.0000001201e-1f));
  p = V::fmadd(p, V::mul(r, r), V::add(r, V::set1(1.0f)));
  return V::ldexp(p, n);
}

template <class V>
typename V::F vec_sigmoid(typename V::F x) {
  const typename V::F one = V::set1(1.0f);
  return V::div(one, V::add(one, vec_exp<V>(V::sub(V::zero(), x))));
}

template <class V>
typename V::F vec_tanh(typename V::F x) {
  using F = typename V::F;
  const F ax = V::abs(x);
  const F z = V::mul(x, x);
  F p = V::set1(-5.70498872745e-3f);
  p = V::fmadd(p, z, V::set1(2.06390887954e-2f));
  p = V::fmadd(p, z, V::set1(-5.37397155531e-2f));
  p = V::fmadd(p, z, V::set1(1.33314422036e-1f));
  p = V::fmadd(p, z, V::set1(-3.33332819422e-1f));
  const F small = V::fmadd(V::mul(p, z), x, x);
  const F one = V::set1(1.0f);
  const F e = vec_exp<V>(V::add(ax, ax));
  const F large = V::sub(one, V::div(V::set1(2.0f), V::add(e, one)));
  return V::select_lt(ax, V::set1(0.625f), small, V::copysign(large, x));
}

}  // namespace rwkvrt::cpu
