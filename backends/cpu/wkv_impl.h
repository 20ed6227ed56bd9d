// The WKV recurrences (v4, v5/v6, v7) written once against a SIMD vector type V and instantiated
// per instruction set by vector_kernels_*.cpp.  Each function runs one sequence (and one head, or
// one range of channels) over all T tokens on the calling thread; wkv.cpp spreads those tasks over
// the threads.  The state stays fp32 in the caller's block.  Semantics: reference_ops.cpp, to fp32
// rounding (the reference sums some dot products in double, these sum in fp32).
//
// Only templates on V and builtins appear here (no std:: inline functions), so an instruction
// set's code never leaks into another's through a shared inline symbol.
#pragma once

#include <cstdint>

#include "rwkvrt/backend.h"
#include "simd_loops.h"
#include "vector_kernels.h"

namespace rwkvrt::cpu {

template <class V>
float* wkv_state(const rwkvrt_bk_state_ref& ref, uint64_t b) {
  return reinterpret_cast<float*>(static_cast<char*>(ref.bases[b]) + ref.offset);
}

// v4, sequence b, channels [c0, c1): the log-space recurrence, state (aa, bb, pp) kept in
// registers across the tokens.
template <class V>
void wkv4_channels(const rwkvrt_bk_wkv4_args& a, uint64_t b, uint64_t c0, uint64_t c1) {
  using F = typename V::F;
  const uint64_t C = a.C;
  float* aa_p = wkv_state<V>(a.state, b);
  float* bb_p = aa_p + C;
  float* pp_p = bb_p + C;
  for_vectors<V>(c1 - c0, [&](uint64_t i, uint64_t lanes) {
    const uint64_t c = c0 + i;
    F aa = load_lanes<V>(aa_p + c, lanes), bb = load_lanes<V>(bb_p + c, lanes);
    F pp = load_lanes<V>(pp_p + c, lanes);
    const F w = load_lanes<V>(a.w + c, lanes), u = load_lanes<V>(a.u + c, lanes);
    for (uint64_t t = 0; t < a.T; ++t) {
      const uint64_t at = (b * a.T + t) * C + c;
      const F k = load_lanes<V>(a.k + at, lanes), v = load_lanes<V>(a.v + at, lanes);
      const F ww = V::add(u, k);
      F q = V::max(ww, pp);
      F e1 = V::exp(V::sub(pp, q)), e2 = V::exp(V::sub(ww, q));
      const F num = V::fmadd(e1, aa, V::mul(e2, v));
      const F den = V::fmadd(e1, bb, e2);
      store_lanes<V>(a.y + at, V::div(num, den), lanes);
      const F wd = V::add(pp, w);
      q = V::max(k, wd);
      e1 = V::exp(V::sub(wd, q));
      e2 = V::exp(V::sub(k, q));
      aa = V::fmadd(e1, aa, V::mul(e2, v));
      bb = V::fmadd(e1, bb, e2);
      pp = q;
    }
    store_lanes<V>(aa_p + c, aa, lanes);
    store_lanes<V>(bb_p + c, bb, lanes);
    store_lanes<V>(pp_p + c, pp, lanes);
  });
}

// v5/v6, one block of value columns [j0, j0 + G·W) (the last vector holding `tail` lanes when
// kPartial), for one token: y_j = Σ_i r_i (S_ij + u_i k_i v_j), S_ij ← w_i S_ij + k_i v_j.
// Rows i are walked in order with the G column vectors of y in registers.
template <class V, int G, bool kPartial>
void wkv5_columns(float* S, uint64_t N, uint64_t j0, uint64_t tail, const float* r, const float* k,
                  const float* v, const float* w, const float* uk, float* y) {
  using F = typename V::F;
  auto lanes_of = [&](int g) { return kPartial && g == G - 1 ? tail : V::kWidth; };
  F vv[G], acc[G];
  for (int g = 0; g < G; ++g) {
    vv[g] = load_lanes<V>(v + j0 + g * V::kWidth, lanes_of(g));
    acc[g] = V::zero();
  }
  for (uint64_t i = 0; i < N; ++i) {
    const F ri = V::set1(r[i]), uki = V::set1(uk[i]), wi = V::set1(w[i]), ki = V::set1(k[i]);
    float* row = S + i * N + j0;
    for (int g = 0; g < G; ++g) {
      const F s = load_lanes<V>(row + g * V::kWidth, lanes_of(g));
      acc[g] = V::fmadd(ri, V::fmadd(uki, vv[g], s), acc[g]);
      store_lanes<V>(row + g * V::kWidth, V::fmadd(wi, s, V::mul(ki, vv[g])), lanes_of(g));
    }
  }
  for (int g = 0; g < G; ++g) store_lanes<V>(y + j0 + g * V::kWidth, acc[g], lanes_of(g));
}

// v5/v6, sequence b, head h, all tokens.  scratch: 2·N floats (the token's decay and u⊙k).
template <class V>
void wkv5_head(const rwkvrt_bk_wkv5_args& a, uint64_t b, uint64_t h, float* scratch) {
  const uint64_t N = a.N, C = a.H * a.N;
  float* S = wkv_state<V>(a.state, b) + h * N * N;
  float* w = scratch;
  float* uk = scratch + N;
  constexpr uint64_t kGroup = 4;  // column vectors per pass over S
  for (uint64_t t = 0; t < a.T; ++t) {
    const uint64_t o = (b * a.T + t) * C + h * N;
    const float* lam = (a.decay_per_token ? a.log_decay + (b * a.T + t) * C : a.log_decay) + h * N;
    if (t == 0 || a.decay_per_token)
      map_span<V>(lam, w, N, [](typename V::F x) { return V::exp(x); });
    for_vectors<V>(N, [&](uint64_t i, uint64_t lanes) {
      store_lanes<V>(
          uk + i, V::mul(load_lanes<V>(a.u + h * N + i, lanes), load_lanes<V>(a.k + o + i, lanes)),
          lanes);
    });
    const float *r = a.r + o, *k = a.k + o, *v = a.v + o;
    float* y = a.y + o;
    uint64_t j = 0;
    for (; j + kGroup * V::kWidth <= N; j += kGroup * V::kWidth)
      wkv5_columns<V, kGroup, false>(S, N, j, 0, r, k, v, w, uk, y);
    for (; j + V::kWidth <= N; j += V::kWidth)
      wkv5_columns<V, 1, false>(S, N, j, 0, r, k, v, w, uk, y);
    if (j < N) wkv5_columns<V, 1, true>(S, N, j, N - j, r, k, v, w, uk, y);
  }
}

// The tokens of one v7 chunk as one head sees them: inputs are rows of `stride` floats starting at
// the chunk's first token; w (= exp λ) and ka (= κ⊙a) are precomputed rows of N floats.
struct Wkv7Tokens {
  const float* r;
  const float* kappa;
  const float* k;  // k̃
  const float* v;
  float* y;
  uint64_t stride;
  const float* w;
  const float* ka;
  uint64_t count;
};

// v7, rows [i0, i0 + R) of one head's state S[value i][key j] over the chunk's tokens, for
// N = NV·W: each row is NV vectors kept in registers from the first token to the last.
//   S_i ← S_i⊙w − (S_i·κ)(κ⊙a) + v_i k̃;   y_i = S_i·r
template <class V, int NV, int R>
void wkv7_rows_in_registers(float* S, uint64_t N, uint64_t i0, const Wkv7Tokens& tk) {
  using F = typename V::F;
  constexpr uint64_t W = V::kWidth;
  F s[R][NV];
  for (int q = 0; q < R; ++q)
    for (int g = 0; g < NV; ++g) s[q][g] = V::load(S + (i0 + q) * N + g * W);
  for (uint64_t t = 0; t < tk.count; ++t) {
    const uint64_t o = t * tk.stride;
    const float *kappa = tk.kappa + o, *w = tk.w + t * N, *ka = tk.ka + t * N;
    // Sums as two interleaved halves: half the dependency chain of one running sum.
    F dot_k[R];
    for (int q = 0; q < R; ++q) {
      F even = V::mul(s[q][0], V::load(kappa));
      F odd = NV > 1 ? V::mul(s[q][1], V::load(kappa + W)) : V::zero();
      for (int g = 2; g < NV; g += 2) {
        even = V::fmadd(s[q][g], V::load(kappa + g * W), even);
        odd = V::fmadd(s[q][g + 1], V::load(kappa + (g + 1) * W), odd);
      }
      dot_k[q] = V::add(even, odd);
    }
    F dot_r[R];
    for (int q = 0; q < R; ++q) {
      const F sk = V::set1(V::reduce_add(dot_k[q]));
      const F vi = V::set1(tk.v[o + i0 + q]);
      F even = V::zero(), odd = V::zero();
      for (int g = 0; g < NV; ++g) {
        const F decayed = V::fnmadd(sk, V::load(ka + g * W), V::mul(s[q][g], V::load(w + g * W)));
        s[q][g] = V::fmadd(vi, V::load(tk.k + o + g * W), decayed);
        if (g % 2 == 0) {
          even = V::fmadd(s[q][g], V::load(tk.r + o + g * W), even);
        } else {
          odd = V::fmadd(s[q][g], V::load(tk.r + o + g * W), odd);
        }
      }
      dot_r[q] = V::add(even, odd);
    }
    for (int q = 0; q < R; ++q) tk.y[o + i0 + q] = V::reduce_add(dot_r[q]);
  }
  for (int q = 0; q < R; ++q)
    for (int g = 0; g < NV; ++g) V::store(S + (i0 + q) * N + g * W, s[q][g]);
}

// v7 for any N: row i of S updated in memory, one token after another.
template <class V>
void wkv7_row_in_memory(float* S, uint64_t N, uint64_t i, const Wkv7Tokens& tk) {
  using F = typename V::F;
  float* row = S + i * N;
  for (uint64_t t = 0; t < tk.count; ++t) {
    const uint64_t o = t * tk.stride;
    const F sk = V::set1(dot<V>(row, tk.kappa + o, N));
    const F vi = V::set1(tk.v[o + i]);
    const float *w = tk.w + t * N, *ka = tk.ka + t * N;
    F acc = V::zero();
    for_vectors<V>(N, [&](uint64_t j, uint64_t lanes) {
      const F decayed =
          V::fnmadd(sk, load_lanes<V>(ka + j, lanes),
                    V::mul(load_lanes<V>(row + j, lanes), load_lanes<V>(w + j, lanes)));
      const F s = V::fmadd(vi, load_lanes<V>(tk.k + o + j, lanes), decayed);
      store_lanes<V>(row + j, s, lanes);
      acc = V::fmadd(s, load_lanes<V>(tk.r + o + j, lanes), acc);
    });
    tk.y[o + i] = V::reduce_add(acc);
  }
}

template <class V, int NV>
void wkv7_all_rows_in_registers(float* S, uint64_t N, const Wkv7Tokens& tk) {
  // Each row's tokens form one long dependency chain (dot product, reduction, update); four rows
  // at a time give the core four chains to overlap (measured 1.8× the tokens/s of one row at
  // N = 64).  At eight vectors a row, two rows already fill the register file.
  constexpr int R = NV >= 8 ? 2 : 4;
  uint64_t i = 0;
  for (; i + R <= N; i += R) wkv7_rows_in_registers<V, NV, R>(S, N, i, tk);
  for (; i < N; ++i) wkv7_rows_in_registers<V, NV, 1>(S, N, i, tk);
}

// v7, sequence b, head h, all tokens.  scratch: kWkvScratchPerN·N floats.
template <class V>
void wkv7_head(const rwkvrt_bk_wkv7_args& a, uint64_t b, uint64_t h, float* scratch) {
  const uint64_t N = a.N, C = a.H * a.N;
  float* S = wkv_state<V>(a.state, b) + h * N * N;
  float* w = scratch;
  float* ka = scratch + kWkvChunk * N;
  for (uint64_t t0 = 0; t0 < a.T; t0 += kWkvChunk) {
    const uint64_t count = a.T - t0 < kWkvChunk ? a.T - t0 : kWkvChunk;
    const uint64_t o = (b * a.T + t0) * C + h * N;
    for (uint64_t t = 0; t < count; ++t) {
      const uint64_t ot = o + t * C;
      map_span<V>(a.log_decay + ot, w + t * N, N, [](typename V::F x) { return V::exp(x); });
      for_vectors<V>(N, [&](uint64_t j, uint64_t lanes) {
        const typename V::F p =
            V::mul(load_lanes<V>(a.kappa + ot + j, lanes), load_lanes<V>(a.a + ot + j, lanes));
        store_lanes<V>(ka + t * N + j, p, lanes);
      });
    }
    const Wkv7Tokens tk{a.r + o, a.kappa + o, a.k + o, a.v + o, a.y + o, C, w, ka, count};
    const uint64_t nv = N % V::kWidth == 0 ? N / V::kWidth : 0;
    switch (nv) {
      case 1:
        wkv7_all_rows_in_registers<V, 1>(S, N, tk);
        break;
      case 2:
        wkv7_all_rows_in_registers<V, 2>(S, N, tk);
        break;
      case 4:
        wkv7_all_rows_in_registers<V, 4>(S, N, tk);
        break;
      case 8:
        wkv7_all_rows_in_registers<V, 8>(S, N, tk);
        break;
      default:
        for (uint64_t i = 0; i < N; ++i) wkv7_row_in_memory<V>(S, N, i, tk);
    }
  }
}

}  // namespace rwkvrt::cpu
