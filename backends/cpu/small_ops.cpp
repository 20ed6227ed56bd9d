// The small ops: split into row or element ranges over the threads (parallel.h) and run by the
// vector kernels of the instruction set in use.  Copy-only ops (token shift, gather) use memcpy.
#include <cstring>

#include "kernels.h"
#include "parallel.h"
#include "vector_kernels.h"

namespace rwkvrt::cpu {
namespace {

// Element ranges split on whole cache lines, so two threads never write the same line.
constexpr uint64_t kElementGrain = 16;

float* state_of(const rwkvrt_bk_state_ref& ref, uint64_t b) {
  return reinterpret_cast<float*>(static_cast<char*>(ref.bases[b]) + ref.offset);
}

}  // namespace

void layer_norm(const rwkvrt_bk_norm_args& a, int n_threads) {
  const VectorKernels& k = vector_kernels();
  parallel_for(a.M, a.M * a.C, n_threads,
               [&](uint64_t m0, uint64_t m1) { k.layer_norm(a, m0, m1); });
}

void group_norm(const rwkvrt_bk_norm_args& a, int n_threads) {
  const VectorKernels& k = vector_kernels();
  parallel_for(a.M, a.M * a.C, n_threads,
               [&](uint64_t m0, uint64_t m1) { k.group_norm(a, m0, m1); });
}

void token_shift(const rwkvrt_bk_token_shift_args& a, int n_threads) {
  const uint64_t C = a.C, T = a.T, row_bytes = C * sizeof(float);
  // Every row of prev first (row t = 0 reads the old state), then the new states.
  parallel_for(a.B * T, a.B * T * C, n_threads, [&](uint64_t r0, uint64_t r1) {
    for (uint64_t r = r0; r < r1; ++r) {
      const uint64_t b = r / T, t = r % T;
      const float* src = t == 0 ? state_of(a.shift, b) : a.x + (r - 1) * C;
      std::memcpy(a.prev + r * C, src, row_bytes);
    }
  });
  for (uint64_t b = 0; b < a.B; ++b)
    std::memcpy(state_of(a.shift, b), a.x + (b * T + T - 1) * C, row_bytes);
}

void mix(const rwkvrt_bk_mix_args& a, int n_threads) {
  const VectorKernels& k = vector_kernels();
  parallel_for(a.M, a.M * a.C * (a.n_out + 2), n_threads,
               [&](uint64_t m0, uint64_t m1) { k.mix(a, m0, m1); });
}

void unary(rwkvrt_bk_unary op, const float* x, float* y, uint64_t n, int n_threads) {
  const VectorKernels& k = vector_kernels();
  // The transcendental ops cost several times a copy per element.
  parallel_for(
      n, 4 * n, n_threads, [&](uint64_t i0, uint64_t i1) { k.unary(op, x + i0, y + i0, i1 - i0); },
      kElementGrain);
}

void binary(rwkvrt_bk_binary op, const float* a, const float* b, float* y, uint64_t M, uint64_t C,
            bool b_is_row, int n_threads) {
  const VectorKernels& k = vector_kernels();
  if (!b_is_row) {
    parallel_for(
        M * C, M * C, n_threads,
        [&](uint64_t i0, uint64_t i1) { k.binary(op, a + i0, b + i0, y + i0, i1 - i0); },
        kElementGrain);
    return;
  }
  parallel_for(M, M * C, n_threads, [&](uint64_t m0, uint64_t m1) {
    for (uint64_t m = m0; m < m1; ++m) k.binary(op, a + m * C, b, y + m * C, C);
  });
}

void gather_rows(const float* table, uint64_t C, const int32_t* ids, uint64_t M, float* out,
                 int n_threads) {
  parallel_for(M, M * C, n_threads, [&](uint64_t m0, uint64_t m1) {
    for (uint64_t m = m0; m < m1; ++m)
      std::memcpy(out + m * C, table + uint64_t(ids[m]) * C, C * sizeof(float));
  });
}

void v7_key_prep(const rwkvrt_bk_v7_key_args& a, int n_threads) {
  const VectorKernels& k = vector_kernels();
  parallel_for(a.M, a.M * a.H * a.N, n_threads,
               [&](uint64_t m0, uint64_t m1) { k.v7_key_prep(a, m0, m1); });
}

void v7_bonus(const rwkvrt_bk_v7_bonus_args& a, int n_threads) {
  const VectorKernels& k = vector_kernels();
  parallel_for(a.M, a.M * a.H * a.N, n_threads,
               [&](uint64_t m0, uint64_t m1) { k.v7_bonus(a, m0, m1); });
}

}  // namespace rwkvrt::cpu
