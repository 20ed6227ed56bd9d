#include "dtype_convert.h"

#include <algorithm>
#include <cmath>

namespace rwkvrt {

float f16_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      exp = 127 - 15 + 1;
      while ((mant & 0x400u) == 0) {
        mant <<= 1;
        --exp;
      }
      mant &= 0x3ffu;
      bits = sign | (exp << 23) | (mant << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t f32_to_f16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  const uint16_t sign = uint16_t((bits >> 16) & 0x8000u);
  const uint32_t absbits = bits & 0x7fffffffu;
  if (absbits > 0x7f800000u) return uint16_t(sign | 0x7e00u);  // NaN
  if (absbits >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // overflow (rounds to inf)
  if (absbits < 0x38800000u) {  // below the smallest normal half: subnormal or zero
    if (absbits <= 0x33000000u) return sign;  // at most half the smallest subnormal: rounds to 0
    // value = mant24 * 2^(exp-150) and a half subnormal is m * 2^-24, so m = mant24 >> (126-exp).
    const uint32_t exp = absbits >> 23;
    const uint32_t mant = (absbits & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - exp;
    const uint32_t q = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1u);
    const uint32_t halfway = 1u << (shift - 1);
    const uint32_t r = q + ((rem > halfway || (rem == halfway && (q & 1u))) ? 1u : 0u);
    return uint16_t(sign | r);
  }
  // Normal: rebias exponent, round mantissa to 10 bits (nearest even).
  uint32_t v = absbits - (uint32_t(127 - 15) << 23);
  const uint32_t rem = v & 0x1fffu;
  v >>= 13;
  if (rem > 0x1000u || (rem == 0x1000u && (v & 1u))) ++v;
  return uint16_t(sign | v);
}

uint32_t quant_block_bytes(rwkvrt_bk_dtype t) {
  switch (t) {
    case RWKVRT_BK_Q4_0: return 18;
    case RWKVRT_BK_Q4_1: return 20;
    case RWKVRT_BK_Q5_0: return 22;
    case RWKVRT_BK_Q5_1: return 24;
    case RWKVRT_BK_Q8_0: return 34;
    default: return 0;
  }
}

namespace {

uint16_t rd16(const uint8_t* p) { return uint16_t(p[0] | (p[1] << 8)); }
uint32_t rd32(const uint8_t* p) {
  return uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24);
}
void wr16(uint8_t* p, uint16_t v) {
  p[0] = uint8_t(v);
  p[1] = uint8_t(v >> 8);
}
void wr32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = uint8_t(v >> (8 * i));
}

// Dequantises one block of 32 values.  Layouts (little-endian):
//   Q4_0: d(f16) qs[16]            value j = ((j<16 ? qs[j]&15 : qs[j-16]>>4) - 8) * d
//   Q4_1: d(f16) m(f16) qs[16]     value j = nibble * d + m
//   Q5_0: d(f16) qh(u32) qs[16]    value j = (nibble | bit j of qh << 4) - 16) * d
//   Q5_1: d(f16) m(f16) qh qs[16]  value j = (nibble | bit j of qh << 4) * d + m
//   Q8_0: d(f16) qs[32] int8       value j = qs[j] * d
void dequant_block(rwkvrt_bk_dtype t, const uint8_t* b, float* out) {
  switch (t) {
    case RWKVRT_BK_Q4_0: {
      const float d = f16_to_f32(rd16(b));
      const uint8_t* qs = b + 2;
      for (int j = 0; j < 16; ++j) {
        out[j] = float(int(qs[j] & 15) - 8) * d;
        out[j + 16] = float(int(qs[j] >> 4) - 8) * d;
      }
      break;
    }
    case RWKVRT_BK_Q4_1: {
      const float d = f16_to_f32(rd16(b)), m = f16_to_f32(rd16(b + 2));
      const uint8_t* qs = b + 4;
      for (int j = 0; j < 16; ++j) {
        out[j] = float(qs[j] & 15) * d + m;
        out[j + 16] = float(qs[j] >> 4) * d + m;
      }
      break;
    }
    case RWKVRT_BK_Q5_0: {
      const float d = f16_to_f32(rd16(b));
      const uint32_t qh = rd32(b + 2);
      const uint8_t* qs = b + 6;
      for (int j = 0; j < 16; ++j) {
        const int lo = int((qs[j] & 15) | (((qh >> j) & 1u) << 4));
        const int hi = int((qs[j] >> 4) | (((qh >> (j + 16)) & 1u) << 4));
        out[j] = float(lo - 16) * d;
        out[j + 16] = float(hi - 16) * d;
      }
      break;
    }
    case RWKVRT_BK_Q5_1: {
      const float d = f16_to_f32(rd16(b)), m = f16_to_f32(rd16(b + 2));
      const uint32_t qh = rd32(b + 4);
      const uint8_t* qs = b + 8;
      for (int j = 0; j < 16; ++j) {
        const int lo = int((qs[j] & 15) | (((qh >> j) & 1u) << 4));
        const int hi = int((qs[j] >> 4) | (((qh >> (j + 16)) & 1u) << 4));
        out[j] = float(lo) * d + m;
        out[j + 16] = float(hi) * d + m;
      }
      break;
    }
    case RWKVRT_BK_Q8_0: {
      const float d = f16_to_f32(rd16(b));
      for (int j = 0; j < 32; ++j) out[j] = float(int8_t(b[2 + j])) * d;
      break;
    }
    default:
      break;
  }
}

// Quantises one block of 32 values with ggml's reference rounding.
void quant_block(rwkvrt_bk_dtype t, const float* x, uint8_t* b) {
  switch (t) {
    case RWKVRT_BK_Q4_0:
    case RWKVRT_BK_Q5_0: {
      // Scale chosen so the value of largest magnitude maps to the most negative code.
      float amax = 0.0f, max = 0.0f;
      for (int j = 0; j < 32; ++j)
        if (std::fabs(x[j]) > amax) {
          amax = std::fabs(x[j]);
          max = x[j];
        }
      const bool five = t == RWKVRT_BK_Q5_0;
      const float d = max / (five ? -16.0f : -8.0f);
      const float id = d != 0.0f ? 1.0f / d : 0.0f;
      const uint16_t dh = f32_to_f16(d);
      wr16(b, dh);
      uint32_t qh = 0;
      uint8_t* qs = b + (five ? 6 : 2);
      const int top = five ? 31 : 15;
      const float off = five ? 16.5f : 8.5f;
      for (int j = 0; j < 16; ++j) {
        const int q0 = std::min(top, int(x[j] * id + off));
        const int q1 = std::min(top, int(x[j + 16] * id + off));
        qs[j] = uint8_t((q0 & 15) | ((q1 & 15) << 4));
        qh |= uint32_t((q0 >> 4) & 1) << j;
        qh |= uint32_t((q1 >> 4) & 1) << (j + 16);
      }
      if (five) wr32(b + 2, qh);
      break;
    }
    case RWKVRT_BK_Q4_1:
    case RWKVRT_BK_Q5_1: {
      float mn = x[0], mx = x[0];
      for (int j = 1; j < 32; ++j) {
        mn = std::min(mn, x[j]);
        mx = std::max(mx, x[j]);
      }
      const bool five = t == RWKVRT_BK_Q5_1;
      const float d = (mx - mn) / (five ? 31.0f : 15.0f);
      const float id = d != 0.0f ? 1.0f / d : 0.0f;
      wr16(b, f32_to_f16(d));
      wr16(b + 2, f32_to_f16(mn));
      uint32_t qh = 0;
      uint8_t* qs = b + (five ? 8 : 4);
      const int top = five ? 31 : 15;
      for (int j = 0; j < 16; ++j) {
        const int q0 = std::min(top, int((x[j] - mn) * id + 0.5f));
        const int q1 = std::min(top, int((x[j + 16] - mn) * id + 0.5f));
        qs[j] = uint8_t((q0 & 15) | ((q1 & 15) << 4));
        qh |= uint32_t((q0 >> 4) & 1) << j;
        qh |= uint32_t((q1 >> 4) & 1) << (j + 16);
      }
      if (five) wr32(b + 4, qh);
      break;
    }
    case RWKVRT_BK_Q8_0: {
      float amax = 0.0f;
      for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
      const float d = amax / 127.0f;
      const float id = d != 0.0f ? 1.0f / d : 0.0f;
      wr16(b, f32_to_f16(d));
      for (int j = 0; j < 32; ++j) b[2 + j] = uint8_t(int8_t(std::lround(x[j] * id)));
      break;
    }
    default:
      break;
  }
}

}  // namespace

bool convert_to_f32(rwkvrt_bk_dtype t, const void* src, float* dst, uint64_t n) {
  const auto* s = static_cast<const uint8_t*>(src);
  switch (t) {
    case RWKVRT_BK_F32:
      std::memcpy(dst, src, n * 4);
      return true;
    case RWKVRT_BK_F16:
      for (uint64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(rd16(s + 2 * i));
      return true;
    case RWKVRT_BK_BF16:
      for (uint64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(rd16(s + 2 * i));
      return true;
    default: {
      const uint32_t bb = quant_block_bytes(t);
      if (bb == 0) return false;
      for (uint64_t blk = 0; blk < n / kQuantBlock; ++blk)
        dequant_block(t, s + blk * bb, dst + blk * kQuantBlock);
      return true;
    }
  }
}

bool quantize_from_f32(rwkvrt_bk_dtype t, const float* src, void* dst, uint64_t n) {
  const uint32_t bb = quant_block_bytes(t);
  if (bb == 0) return false;
  auto* d = static_cast<uint8_t*>(dst);
  for (uint64_t blk = 0; blk < n / kQuantBlock; ++blk)
    quant_block(t, src + blk * kQuantBlock, d + blk * bb);
  return true;
}

}  // namespace rwkvrt
