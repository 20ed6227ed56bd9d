// The small ops (norms, mixing, element-wise maps, v7 key preparation and bonus) written once
// against a SIMD vector type V and instantiated per instruction set by vector_kernels_*.cpp.
// Each function works on a range of rows or elements on the calling thread; small_ops.cpp splits
// the work.  Semantics: reference_ops.cpp, to fp32 rounding (sums are fp32 here, double there).
//
// Only templates on V and builtins appear here (no std:: inline functions), so an instruction
// set's code never leaks into another's through a shared inline symbol.
#pragma once

#include <cstdint>

#include "rwkvrt/backend.h"
#include "simd_loops.h"

namespace rwkvrt::cpu {

// y = (x − mean)/√(var + eps) ⊙ gamma + beta over n floats (biased variance).  The mean is
// corrected by a second pass (Σ(x − mean) is the rounding error of the first), so rows whose mean
// is large against their spread keep full precision.  y may equal x.
template <class V>
void normalise_span(const float* x, float* y, uint64_t n, const float* gamma, const float* beta,
                    float eps) {
  using F = typename V::F;
  F sum = V::zero();
  for_vectors<V>(
      n, [&](uint64_t i, uint64_t lanes) { sum = V::add(sum, load_lanes<V>(x + i, lanes)); });
  const float mean0 = V::reduce_add(sum) / float(n);
  const F m0 = V::set1(mean0);
  F dev = V::zero(), sq = V::zero();
  for_vectors<V>(n, [&](uint64_t i, uint64_t lanes) {
    F c = V::sub(load_lanes<V>(x + i, lanes), m0);
    if (lanes != V::kWidth) c = V::keep_first(c, lanes);
    dev = V::add(dev, c);
    sq = V::fmadd(c, c, sq);
  });
  const float correction = V::reduce_add(dev) / float(n);
  const float var = V::reduce_add(sq) / float(n) - correction * correction;
  const F mean = V::set1(mean0 + correction);
  const F inv = V::set1(1.0f / __builtin_sqrtf(var + eps));
  for_vectors<V>(n, [&](uint64_t i, uint64_t lanes) {
    const F t = V::mul(V::sub(load_lanes<V>(x + i, lanes), mean), inv);
    const F r = V::fmadd(t, load_lanes<V>(gamma + i, lanes), load_lanes<V>(beta + i, lanes));
    store_lanes<V>(y + i, r, lanes);
  });
}

template <class V>
void layer_norm_rows(const rwkvrt_bk_norm_args& a, uint64_t m0, uint64_t m1) {
  for (uint64_t m = m0; m < m1; ++m)
    normalise_span<V>(a.x + m * a.C, a.y + m * a.C, a.C, a.gamma, a.beta, a.eps);
}

template <class V>
void group_norm_rows(const rwkvrt_bk_norm_args& a, uint64_t m0, uint64_t m1) {
  const uint64_t n = a.C / a.groups;
  for (uint64_t m = m0; m < m1; ++m)
    for (uint64_t g = 0; g < a.groups; ++g) {
      const uint64_t off = m * a.C + g * n;
      normalise_span<V>(a.x + off, a.y + off, n, a.gamma + g * n, a.beta + g * n, a.eps);
    }
}

// Rows [m0, m1) of every output: out_i = x + (prev − x)·(mix_i + extra_i).
template <class V>
void mix_rows(const rwkvrt_bk_mix_args& a, uint64_t m0, uint64_t m1) {
  using F = typename V::F;
  const uint64_t plane = a.M * a.C;
  for (uint64_t m = m0; m < m1; ++m) {
    const uint64_t row = m * a.C;
    for_vectors<V>(a.C, [&](uint64_t c, uint64_t lanes) {
      const F x = load_lanes<V>(a.x + row + c, lanes);
      const F d = V::sub(load_lanes<V>(a.prev + row + c, lanes), x);
      for (uint32_t i = 0; i < a.n_out; ++i) {
        F coef = load_lanes<V>(a.mix + i * a.C + c, lanes);
        if (a.extra) coef = V::add(coef, load_lanes<V>(a.extra + i * plane + row + c, lanes));
        store_lanes<V>(a.out + i * plane + row + c, V::fmadd(d, coef, x), lanes);
      }
    });
  }
}

// y[i] = op(x[i]) for n elements; y may equal x.
template <class V>
void unary_span(rwkvrt_bk_unary op, const float* x, float* y, uint64_t n) {
  using F = typename V::F;
  switch (op) {
    case RWKVRT_BK_SIGMOID:
      map_span<V>(x, y, n, [](F v) { return V::sigmoid(v); });
      break;
    case RWKVRT_BK_TANH:
      map_span<V>(x, y, n, [](F v) { return V::tanh(v); });
      break;
    case RWKVRT_BK_SILU:
      map_span<V>(x, y, n, [](F v) { return V::mul(v, V::sigmoid(v)); });
      break;
    case RWKVRT_BK_RELU_SQUARE:
      // max(v, 0) returns 0 for a NaN v, as the reference's comparison does.
      map_span<V>(x, y, n, [](F v) {
        const F r = V::max(v, V::zero());
        return V::mul(r, r);
      });
      break;
    case RWKVRT_BK_NEG_EXP:
      map_span<V>(x, y, n, [](F v) { return V::sub(V::zero(), V::exp(v)); });
      break;
    case RWKVRT_BK_V7_LOG_DECAY:
      map_span<V>(x, y, n, [](F v) { return V::mul(V::set1(-0.606531f), V::sigmoid(v)); });
      break;
  }
}

// y[i] = a[i] op b[i] for n elements; y may alias a or b.
template <class V>
void binary_span(rwkvrt_bk_binary op, const float* a, const float* b, float* y, uint64_t n) {
  using F = typename V::F;
  auto apply = [&](auto fn) {
    for_vectors<V>(n, [&](uint64_t i, uint64_t lanes) {
      store_lanes<V>(y + i, fn(load_lanes<V>(a + i, lanes), load_lanes<V>(b + i, lanes)), lanes);
    });
  };
  switch (op) {
    case RWKVRT_BK_ADD:
      apply([](F p, F q) { return V::add(p, q); });
      break;
    case RWKVRT_BK_SUB:
      apply([](F p, F q) { return V::sub(p, q); });
      break;
    case RWKVRT_BK_MUL:
      apply([](F p, F q) { return V::mul(p, q); });
      break;
  }
}

// Rows [m0, m1): κ = normalise_L2(k⊙k_k) and k̃ = k⊙(1 + (a − 1)⊙k_a), per head.
template <class V>
void v7_key_prep_rows(const rwkvrt_bk_v7_key_args& a, uint64_t m0, uint64_t m1) {
  using F = typename V::F;
  const uint64_t N = a.N, C = a.H * a.N;
  const F one = V::set1(1.0f);
  for (uint64_t m = m0; m < m1; ++m)
    for (uint64_t h = 0; h < a.H; ++h) {
      const uint64_t o = m * C + h * N, p = h * N;
      F sq = V::zero();
      for_vectors<V>(N, [&](uint64_t i, uint64_t lanes) {
        const F kk = V::mul(load_lanes<V>(a.k + o + i, lanes), load_lanes<V>(a.k_k + p + i, lanes));
        sq = V::fmadd(kk, kk, sq);
      });
      const float norm = __builtin_fmaxf(__builtin_sqrtf(V::reduce_add(sq)), 1e-12f);
      const F nv = V::set1(norm);
      for_vectors<V>(N, [&](uint64_t i, uint64_t lanes) {
        const F k = load_lanes<V>(a.k + o + i, lanes);
        const F kk = V::mul(k, load_lanes<V>(a.k_k + p + i, lanes));
        store_lanes<V>(a.kappa + o + i, V::div(kk, nv), lanes);
        const F am1 = V::sub(load_lanes<V>(a.a + o + i, lanes), one);
        const F scale = V::fmadd(am1, load_lanes<V>(a.k_a + p + i, lanes), one);
        store_lanes<V>(a.ktilde + o + i, V::mul(k, scale), lanes);
      });
    }
}

// Rows [m0, m1): y_h += (Σ_j r_j k̃_j r_k,j)·v_h, per head.
template <class V>
void v7_bonus_rows(const rwkvrt_bk_v7_bonus_args& a, uint64_t m0, uint64_t m1) {
  using F = typename V::F;
  const uint64_t N = a.N, C = a.H * a.N;
  for (uint64_t m = m0; m < m1; ++m)
    for (uint64_t h = 0; h < a.H; ++h) {
      const uint64_t o = m * C + h * N, p = h * N;
      F acc = V::zero();
      for_vectors<V>(N, [&](uint64_t j, uint64_t lanes) {
        const F rk =
            V::mul(load_lanes<V>(a.r + o + j, lanes), load_lanes<V>(a.ktilde + o + j, lanes));
        acc = V::fmadd(rk, load_lanes<V>(a.r_k + p + j, lanes), acc);
      });
      const F s = V::set1(V::reduce_add(acc));
      for_vectors<V>(N, [&](uint64_t i, uint64_t lanes) {
        const F y = load_lanes<V>(a.y + o + i, lanes);
        store_lanes<V>(a.y + o + i, V::fmadd(s, load_lanes<V>(a.v + o + i, lanes), y), lanes);
      });
    }
}

}  // namespace rwkvrt::cpu
