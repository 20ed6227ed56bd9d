#include "reference_ops.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace rwkvrt::reference {
namespace {

float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

float* state_at(const rwkvrt_bk_state_ref& ref, uint64_t b) {
  return reinterpret_cast<float*>(static_cast<char*>(ref.bases[b]) + ref.offset);
}

}  // namespace

float apply_unary(rwkvrt_bk_unary op, float x) {
  switch (op) {
    case RWKVRT_BK_SIGMOID:
      return sigmoid(x);
    case RWKVRT_BK_TANH:
      return std::tanh(x);
    case RWKVRT_BK_SILU:
      return x * sigmoid(x);
    case RWKVRT_BK_RELU_SQUARE: {
      const float r = x > 0.0f ? x : 0.0f;
      return r * r;
    }
    case RWKVRT_BK_NEG_EXP:
      return -std::exp(x);
    case RWKVRT_BK_V7_LOG_DECAY:
      // The reference computes w = exp(-0.606531 * sigmoid(z)); this is log(w).
      return -0.606531f * sigmoid(x);
  }
  return x;
}

void matmul(const float* x, uint64_t M, uint64_t ldx, const DenseWeight& w, float* y, uint64_t ldy,
            bool accumulate) {
  const uint64_t K = w.cols, N = w.rows;
  if (ldx == 0) ldx = K;
  if (ldy == 0) ldy = N;
  for (uint64_t m = 0; m < M; ++m) {
    for (uint64_t n = 0; n < N; ++n) {
      double acc = 0.0;
      for (uint64_t k = 0; k < K; ++k) acc += double(x[m * ldx + k]) * double(w.data[n * K + k]);
      float& out = y[m * ldy + n];
      out = accumulate ? float(double(out) + acc) : float(acc);
    }
  }
}

void gather_rows(const float* table, uint64_t C, const int32_t* ids, uint64_t M, float* out) {
  for (uint64_t m = 0; m < M; ++m)
    for (uint64_t c = 0; c < C; ++c) out[m * C + c] = table[uint64_t(ids[m]) * C + c];
}

namespace {

// Normalises n values (stride 1) to zero mean and unit variance (biased), then applies gamma/beta.
void normalise(const float* x, float* y, uint64_t n, const float* gamma, const float* beta,
               float eps) {
  double mean = 0.0;
  for (uint64_t i = 0; i < n; ++i) mean += x[i];
  mean /= double(n);
  double var = 0.0;
  for (uint64_t i = 0; i < n; ++i) var += (x[i] - mean) * (x[i] - mean);
  var /= double(n);
  const double inv = 1.0 / std::sqrt(var + double(eps));
  for (uint64_t i = 0; i < n; ++i) y[i] = float((x[i] - mean) * inv) * gamma[i] + beta[i];
}

}  // namespace

void layer_norm(const rwkvrt_bk_norm_args& a) {
  for (uint64_t m = 0; m < a.M; ++m)
    normalise(a.x + m * a.C, a.y + m * a.C, a.C, a.gamma, a.beta, a.eps);
}

void group_norm(const rwkvrt_bk_norm_args& a) {
  const uint64_t n = a.C / a.groups;
  for (uint64_t m = 0; m < a.M; ++m)
    for (uint64_t g = 0; g < a.groups; ++g) {
      const uint64_t off = m * a.C + g * n;
      normalise(a.x + off, a.y + off, n, a.gamma + g * n, a.beta + g * n, a.eps);
    }
}

void token_shift(const rwkvrt_bk_token_shift_args& a) {
  for (uint64_t b = 0; b < a.B; ++b) {
    float* state = state_at(a.shift, b);
    const float* x = a.x + b * a.T * a.C;
    float* prev = a.prev + b * a.T * a.C;
    for (uint64_t c = 0; c < a.C; ++c) prev[c] = state[c];
    for (uint64_t t = 1; t < a.T; ++t)
      for (uint64_t c = 0; c < a.C; ++c) prev[t * a.C + c] = x[(t - 1) * a.C + c];
    for (uint64_t c = 0; c < a.C; ++c) state[c] = x[(a.T - 1) * a.C + c];
  }
}

void mix(const rwkvrt_bk_mix_args& a) {
  for (uint32_t i = 0; i < a.n_out; ++i)
    for (uint64_t m = 0; m < a.M; ++m)
      for (uint64_t c = 0; c < a.C; ++c) {
        const uint64_t j = m * a.C + c;
        float coef = a.mix[i * a.C + c];
        if (a.extra) coef += a.extra[i * a.M * a.C + j];
        a.out[i * a.M * a.C + j] = a.x[j] + (a.prev[j] - a.x[j]) * coef;
      }
}

void unary(rwkvrt_bk_unary op, const float* x, float* y, uint64_t n) {
  for (uint64_t i = 0; i < n; ++i) y[i] = apply_unary(op, x[i]);
}

void binary(rwkvrt_bk_binary op, const float* a, const float* b, float* y, uint64_t M, uint64_t C,
            bool b_is_row) {
  for (uint64_t m = 0; m < M; ++m)
    for (uint64_t c = 0; c < C; ++c) {
      const float av = a[m * C + c];
      const float bv = b_is_row ? b[c] : b[m * C + c];
      float r = 0.0f;
      switch (op) {
        case RWKVRT_BK_ADD: r = av + bv; break;
        case RWKVRT_BK_SUB: r = av - bv; break;
        case RWKVRT_BK_MUL: r = av * bv; break;
      }
      y[m * C + c] = r;
    }
}

void wkv4(const rwkvrt_bk_wkv4_args& a) {
  const uint64_t C = a.C;
  for (uint64_t b = 0; b < a.B; ++b) {
    float* aa = state_at(a.state, b);
    float* bb = aa + C;
    float* pp = bb + C;
    for (uint64_t t = 0; t < a.T; ++t) {
      const uint64_t row = (b * a.T + t) * C;
      for (uint64_t c = 0; c < C; ++c) {
        const float k = a.k[row + c], v = a.v[row + c];
        const float ww = a.u[c] + k;
        float q = std::max(pp[c], ww);
        float e1 = std::exp(pp[c] - q), e2 = std::exp(ww - q);
        a.y[row + c] = (e1 * aa[c] + e2 * v) / (e1 * bb[c] + e2);
        const float wd = pp[c] + a.w[c];
        q = std::max(wd, k);
        e1 = std::exp(wd - q);
        e2 = std::exp(k - q);
        aa[c] = e1 * aa[c] + e2 * v;
        bb[c] = e1 * bb[c] + e2;
        pp[c] = q;
      }
    }
  }
}

void wkv5(const rwkvrt_bk_wkv5_args& a) {
  const uint64_t N = a.N, C = a.H * a.N;
  for (uint64_t b = 0; b < a.B; ++b) {
    float* S_all = state_at(a.state, b);
    for (uint64_t t = 0; t < a.T; ++t) {
      const uint64_t row = (b * a.T + t) * C;
      const float* lam = a.decay_per_token ? a.log_decay + row : a.log_decay;
      for (uint64_t h = 0; h < a.H; ++h) {
        float* S = S_all + h * N * N;  // [key i][value j]
        const uint64_t o = row + h * N;
        for (uint64_t j = 0; j < N; ++j) {
          double y = 0.0;
          for (uint64_t i = 0; i < N; ++i) {
            const float kv = a.k[o + i] * a.v[o + j];
            y += double(a.r[o + i]) * double(S[i * N + j] + a.u[h * N + i] * kv);
          }
          a.y[o + j] = float(y);
        }
        for (uint64_t i = 0; i < N; ++i) {
          const float w = std::exp(lam[h * N + i]);
          for (uint64_t j = 0; j < N; ++j)
            S[i * N + j] = w * S[i * N + j] + a.k[o + i] * a.v[o + j];
        }
      }
    }
  }
}

void wkv7(const rwkvrt_bk_wkv7_args& a) {
  const uint64_t N = a.N, C = a.H * a.N;
  std::vector<double> sk(N);
  for (uint64_t b = 0; b < a.B; ++b) {
    float* S_all = state_at(a.state, b);
    for (uint64_t t = 0; t < a.T; ++t) {
      const uint64_t row = (b * a.T + t) * C;
      for (uint64_t h = 0; h < a.H; ++h) {
        float* S = S_all + h * N * N;  // [value i][key j]
        const uint64_t o = row + h * N;
        // (S κ) with the old S, for the removal term.
        for (uint64_t i = 0; i < N; ++i) {
          double acc = 0.0;
          for (uint64_t j = 0; j < N; ++j) acc += double(S[i * N + j]) * a.kappa[o + j];
          sk[i] = acc;
        }
        for (uint64_t i = 0; i < N; ++i) {
          double y = 0.0;
          for (uint64_t j = 0; j < N; ++j) {
            const float w = std::exp(a.log_decay[o + j]);
            const float s = S[i * N + j] * w - float(sk[i]) * (a.kappa[o + j] * a.a[o + j]) +
                            a.v[o + i] * a.k[o + j];
            S[i * N + j] = s;
            y += double(s) * a.r[o + j];
          }
          a.y[o + i] = float(y);
        }
      }
    }
  }
}

void v7_key_prep(const rwkvrt_bk_v7_key_args& a) {
  const uint64_t N = a.N, C = a.H * a.N;
  for (uint64_t m = 0; m < a.M; ++m)
    for (uint64_t h = 0; h < a.H; ++h) {
      const uint64_t o = m * C + h * N;
      double norm2 = 0.0;
      for (uint64_t i = 0; i < N; ++i) {
        const float kk = a.k[o + i] * a.k_k[h * N + i];
        norm2 += double(kk) * kk;
      }
      const double norm = std::max(std::sqrt(norm2), 1e-12);
      for (uint64_t i = 0; i < N; ++i) {
        const uint64_t c = h * N + i;
        a.kappa[o + i] = float(double(a.k[o + i] * a.k_k[c]) / norm);
        a.ktilde[o + i] = a.k[o + i] * (1.0f + (a.a[o + i] - 1.0f) * a.k_a[c]);
      }
    }
}

void v7_bonus(const rwkvrt_bk_v7_bonus_args& a) {
  const uint64_t N = a.N, C = a.H * a.N;
  for (uint64_t m = 0; m < a.M; ++m)
    for (uint64_t h = 0; h < a.H; ++h) {
      const uint64_t o = m * C + h * N;
      double s = 0.0;
      for (uint64_t j = 0; j < N; ++j) s += double(a.r[o + j]) * a.ktilde[o + j] * a.r_k[h * N + j];
      for (uint64_t i = 0; i < N; ++i) a.y[o + i] += float(s) * a.v[o + i];
    }
}

}  // namespace rwkvrt::reference
