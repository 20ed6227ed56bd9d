// Decode-path matrix kernels for AVX2 (compiled with the AVX2 flags, see CMakeLists.txt).
//
// Same scheme as gemv_avx512.cpp with 8-lane vectors: each weight row is decoded 32 values at a
// time into fp32 registers bit-identically to the reference dequantisation (ggml codes converted
// and scaled, float(q)·d (+ m)) and multiplied into fp32 accumulators; rows are walked one after
// another (one prefetched stream per thread), two rows of x per pass, which with the decoded
// weights fills the 16 vector registers.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "matrix_kernels.h"

namespace rwkvrt::cpu {
namespace {

float load_half(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, sizeof(h));
  return _cvtsh_ss(h);
}

uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

__m256i first_lanes(uint64_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(int32_t(n)),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// 8 bytes at p, extended to 32-bit lanes.
__m256i widen_bytes(const uint8_t* p) {
  return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}

// 8 halfwords of a row tail: the first `lanes` from p, the rest 0.
__m128i load_halfwords_part(const uint8_t* p, uint64_t lanes) {
  uint16_t tmp[8] = {};
  std::memcpy(tmp, p, lanes * sizeof(uint16_t));
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(tmp));
}

// Codecs: decode(row, c, out) writes values [32c, 32c + 32) of a row, kChunkBytes bytes from
// row + c·kChunkBytes, as four vectors.  The dense ones also decode up to 8 values at k for the
// row's tail (K need not be a multiple of 32); block types have K % 32 == 0.
struct F32Codec {
  static constexpr bool kDense = true;
  static constexpr uint64_t kChunkBytes = 128;
  static void decode(const uint8_t* row, uint64_t c, __m256* out) {
    const float* p = reinterpret_cast<const float*>(row) + c * 32;
    for (int v = 0; v < 4; ++v) out[v] = _mm256_load_ps(p + 8 * v);
  }
  static __m256 decode_part(const uint8_t* row, uint64_t k, uint64_t lanes) {
    return _mm256_maskload_ps(reinterpret_cast<const float*>(row) + k, first_lanes(lanes));
  }
};

struct Bf16Codec {
  static constexpr bool kDense = true;
  static constexpr uint64_t kChunkBytes = 64;
  static __m256 widen(__m128i h) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
  static void decode(const uint8_t* row, uint64_t c, __m256* out) {
    const auto* p = reinterpret_cast<const __m128i*>(row + c * 64);
    for (int v = 0; v < 4; ++v) out[v] = widen(_mm_load_si128(p + v));
  }
  static __m256 decode_part(const uint8_t* row, uint64_t k, uint64_t lanes) {
    return widen(load_halfwords_part(row + 2 * k, lanes));
  }
};

struct F16Codec {
  static constexpr bool kDense = true;
  static constexpr uint64_t kChunkBytes = 64;
  static void decode(const uint8_t* row, uint64_t c, __m256* out) {
    const auto* p = reinterpret_cast<const __m128i*>(row + c * 64);
    for (int v = 0; v < 4; ++v) out[v] = _mm256_cvtph_ps(_mm_load_si128(p + v));
  }
  static __m256 decode_part(const uint8_t* row, uint64_t k, uint64_t lanes) {
    return _mm256_cvtph_ps(load_halfwords_part(row + 2 * k, lanes));
  }
};

// Q8_0: d(f16) q[32] int8; value = float(q)·d.
struct Q8_0Codec {
  static constexpr bool kDense = false;
  static constexpr uint64_t kChunkBytes = 34;
  static void decode(const uint8_t* row, uint64_t c, __m256* out) {
    const uint8_t* b = row + c * 34;
    const __m256 d = _mm256_set1_ps(load_half(b));
    for (int v = 0; v < 4; ++v) {
      const __m128i q = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(b + 2 + 8 * v));
      out[v] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), d);
    }
  }
};

// The 32 codes of a 4/5-bit block in value order: low nibbles of qs[0..15], then high nibbles.
void nibble_codes(const uint8_t* qs, __m256i* codes) {
  const __m256i mask = _mm256_set1_epi32(15);
  const __m256i b0 = widen_bytes(qs), b1 = widen_bytes(qs + 8);
  codes[0] = _mm256_and_si256(b0, mask);
  codes[1] = _mm256_and_si256(b1, mask);
  codes[2] = _mm256_srli_epi32(b0, 4);
  codes[3] = _mm256_srli_epi32(b1, 4);
}

// Adds bit j of qh as bit 4 of code j.
void add_high_bits(uint32_t qh, __m256i* codes) {
  const __m256i bits = _mm256_set1_epi32(int32_t(qh));
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (int v = 0; v < 4; ++v) {
    const __m256i shift = _mm256_add_epi32(lane, _mm256_set1_epi32(8 * v));
    const __m256i bit = _mm256_and_si256(_mm256_srlv_epi32(bits, shift), _mm256_set1_epi32(1));
    codes[v] = _mm256_or_si256(codes[v], _mm256_slli_epi32(bit, 4));
  }
}

// value = float(code − offset)·d
void scale_codes(const __m256i* codes, int offset, float d, __m256* out) {
  const __m256 dv = _mm256_set1_ps(d);
  for (int v = 0; v < 4; ++v)
    out[v] = _mm256_mul_ps(
        _mm256_cvtepi32_ps(_mm256_sub_epi32(codes[v], _mm256_set1_epi32(offset))), dv);
}

// value = float(code)·d + m, rounded twice like the reference.
void scale_codes_min(const __m256i* codes, float d, float m, __m256* out) {
  const __m256 dv = _mm256_set1_ps(d), mv = _mm256_set1_ps(m);
  for (int v = 0; v < 4; ++v)
    out[v] = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(codes[v]), dv), mv);
}

// Q4_0: d(f16) qs[16]; value = float(nibble − 8)·d.
struct Q4_0Codec {
  static constexpr bool kDense = false;
  static constexpr uint64_t kChunkBytes = 18;
  static void decode(const uint8_t* row, uint64_t c, __m256* out) {
    const uint8_t* b = row + c * 18;
    __m256i codes[4];
    nibble_codes(b + 2, codes);
    scale_codes(codes, 8, load_half(b), out);
  }
};

// Q4_1: d(f16) m(f16) qs[16]; value = float(nibble)·d + m.
struct Q4_1Codec {
  static constexpr bool kDense = false;
  static constexpr uint64_t kChunkBytes = 20;
  static void decode(const uint8_t* row, uint64_t c, __m256* out) {
    const uint8_t* b = row + c * 20;
    __m256i codes[4];
    nibble_codes(b + 4, codes);
    scale_codes_min(codes, load_half(b), load_half(b + 2), out);
  }
};

// Q5_0: d(f16) qh(u32) qs[16]; value = float(code − 16)·d.
struct Q5_0Codec {
  static constexpr bool kDense = false;
  static constexpr uint64_t kChunkBytes = 22;
  static void decode(const uint8_t* row, uint64_t c, __m256* out) {
    const uint8_t* b = row + c * 22;
    __m256i codes[4];
    nibble_codes(b + 6, codes);
    add_high_bits(load_u32(b + 2), codes);
    scale_codes(codes, 16, load_half(b), out);
  }
};

// Q5_1: d(f16) m(f16) qh(u32) qs[16]; value = float(code)·d + m.
struct Q5_1Codec {
  static constexpr bool kDense = false;
  static constexpr uint64_t kChunkBytes = 24;
  static void decode(const uint8_t* row, uint64_t c, __m256* out) {
    const uint8_t* b = row + c * 24;
    __m256i codes[4];
    nibble_codes(b + 8, codes);
    add_high_bits(load_u32(b + 4), codes);
    scale_codes_min(codes, load_half(b), load_half(b + 2), out);
  }
};

float reduce_add(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// How far ahead of the current chunk each thread prefetches its stream of W.
constexpr uint64_t kPrefetchBytes = 4096;

// y[m0 + m][n] (+)= x[m0 + m]·W[n] for m < MB.
template <class Codec, int MB>
void dot_row(const MatrixView& w, const GemvArgs& a, uint64_t n, uint64_t m0) {
  const uint64_t K = w.cols, chunks = K / 32;
  const uint8_t* row = w.data + n * w.row_bytes;
  const float* x[MB];
  for (int m = 0; m < MB; ++m) x[m] = a.x + (m0 + m) * a.ldx;
  // Two accumulators per row of x, alternating over a chunk's four vectors.
  __m256 acc[MB][2];
  for (int m = 0; m < MB; ++m) acc[m][0] = acc[m][1] = _mm256_setzero_ps();
  const bool prefetch = m0 == 0;  // later passes over the row find it in cache
  for (uint64_t c = 0; c < chunks; ++c) {
    if (prefetch)
      for (uint64_t b = 0; b < Codec::kChunkBytes; b += 64)
        _mm_prefetch(
            reinterpret_cast<const char*>(row + c * Codec::kChunkBytes + b + kPrefetchBytes),
            _MM_HINT_T0);
    __m256 wv[4];
    Codec::decode(row, c, wv);
    for (int m = 0; m < MB; ++m)
      for (int v = 0; v < 4; ++v)
        acc[m][v & 1] =
            _mm256_fmadd_ps(wv[v], _mm256_loadu_ps(x[m] + 32 * c + 8 * v), acc[m][v & 1]);
  }
  if constexpr (Codec::kDense) {
    for (uint64_t k = chunks * 32; k < K; k += 8) {
      const uint64_t lanes = K - k < 8 ? K - k : 8;
      const __m256 wv = Codec::decode_part(row, k, lanes);
      for (int m = 0; m < MB; ++m)
        acc[m][0] =
            _mm256_fmadd_ps(wv, _mm256_maskload_ps(x[m] + k, first_lanes(lanes)), acc[m][0]);
    }
  }
  for (int m = 0; m < MB; ++m) {
    const float v = reduce_add(_mm256_add_ps(acc[m][0], acc[m][1]));
    float* out = a.y + (m0 + m) * a.ldy + n;
    *out = a.accumulate ? *out + v : v;
  }
}

// Rows [n0, n1) for every m, two rows of x per pass over a row.
template <class Codec>
void gemv(const MatrixView& w, const GemvArgs& a, uint64_t n0, uint64_t n1) {
  for (uint64_t n = n0; n < n1; ++n) {
    uint64_t m = 0;
    for (; m + 2 <= a.M; m += 2) dot_row<Codec, 2>(w, a, n, m);
    if (m < a.M) dot_row<Codec, 1>(w, a, n, m);
  }
}

template <class Codec>
void decode_rows(const MatrixView& w, uint64_t n0, uint64_t n1, float* out, uint64_t ld) {
  const uint64_t K = w.cols, chunks = K / 32;
  for (uint64_t n = n0; n < n1; ++n) {
    const uint8_t* row = w.data + n * w.row_bytes;
    float* dst = out + (n - n0) * ld;
    for (uint64_t c = 0; c < chunks; ++c) {
      __m256 wv[4];
      Codec::decode(row, c, wv);
      for (int v = 0; v < 4; ++v) _mm256_storeu_ps(dst + 32 * c + 8 * v, wv[v]);
    }
    if constexpr (Codec::kDense) {
      for (uint64_t k = chunks * 32; k < K; k += 8) {
        const uint64_t lanes = K - k < 8 ? K - k : 8;
        _mm256_maskstore_ps(dst + k, first_lanes(lanes), Codec::decode_part(row, k, lanes));
      }
    }
  }
}

}  // namespace

// Indexed by rwkvrt_bk_dtype: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0.
const MatrixKernels kMatrixKernelsAvx2 = {
    {&gemv<F32Codec>, &gemv<F16Codec>, &gemv<Bf16Codec>, &gemv<Q4_0Codec>, &gemv<Q4_1Codec>,
     &gemv<Q5_0Codec>, &gemv<Q5_1Codec>, &gemv<Q8_0Codec>},
    {&decode_rows<F32Codec>, &decode_rows<F16Codec>, &decode_rows<Bf16Codec>,
     &decode_rows<Q4_0Codec>, &decode_rows<Q4_1Codec>, &decode_rows<Q5_0Codec>,
     &decode_rows<Q5_1Codec>, &decode_rows<Q8_0Codec>},
};

}  // namespace rwkvrt::cpu
