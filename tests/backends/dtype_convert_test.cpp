// Numeric format conversions: half and bfloat16 against exact values, and every block
// quantisation type's round trip against the error its step size allows.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "dtype_convert.h"

namespace rwkvrt {
namespace {

TEST(DtypeConvert, HalfKnownValues) {
  EXPECT_EQ(f16_to_f32(0x3c00), 1.0f);
  EXPECT_EQ(f16_to_f32(0xc000), -2.0f);
  EXPECT_EQ(f16_to_f32(0x7bff), 65504.0f);
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_TRUE(std::isinf(f16_to_f32(0x7c00)));
  EXPECT_TRUE(std::isnan(f16_to_f32(0x7e00)));
  EXPECT_EQ(f32_to_f16(1.0f), 0x3c00);
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7bff);
  EXPECT_EQ(f32_to_f16(1e6f), 0x7c00);
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -24)), 0x0001);
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -26)), 0x0000);
  // 1 + 2^-11 is halfway between 1 and the next half; ties go to even (1.0).
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);
  EXPECT_EQ(f32_to_f16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
}

TEST(DtypeConvert, HalfRoundTripsEveryFiniteValue) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = f16_to_f32(uint16_t(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(f32_to_f16(f), uint16_t(h)) << "half bits " << h;
  }
}

TEST(DtypeConvert, BFloat16RoundsToNearestEven) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(bf16_to_f32(0x3f80), 1.0f);
  // 1 + 2^-8 is halfway between two bf16 values: ties to even (1.0).
  EXPECT_EQ(f32_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);
  EXPECT_EQ(f32_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);
  for (uint32_t h = 0; h < 0x10000; h += 7) {
    const float f = bf16_to_f32(uint16_t(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(f32_to_bf16(f), uint16_t(h));
  }
}

class QuantRoundTrip : public ::testing::TestWithParam<rwkvrt_bk_dtype> {};

TEST_P(QuantRoundTrip, ErrorWithinHalfAStep) {
  const rwkvrt_bk_dtype t = GetParam();
  std::mt19937 rng(42);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  const uint64_t n = 32 * 64;
  std::vector<float> x(n), y(n);
  for (float& v : x) v = dist(rng);
  std::vector<uint8_t> q(n / 32 * quant_block_bytes(t));
  ASSERT_TRUE(quantize_from_f32(t, x.data(), q.data(), n));
  ASSERT_TRUE(convert_to_f32(t, q.data(), y.data(), n));
  for (uint64_t b = 0; b < n / 32; ++b) {
    float lo = x[b * 32], hi = x[b * 32], amax = 0;
    for (int j = 0; j < 32; ++j) {
      lo = std::min(lo, x[b * 32 + j]);
      hi = std::max(hi, x[b * 32 + j]);
      amax = std::max(amax, std::fabs(x[b * 32 + j]));
    }
    // Offset types (Q4_1, Q5_1) spread 16/32 levels over [min, max] and round: error ≤ half a
    // step.  Q8_0 maps ±amax to ±127 and rounds: half a step of amax/127.  Q4_0/Q5_0 map the
    // value of largest magnitude to the most negative code (−8/−16), so the positive side ends
    // one step short and a value there is clamped: error ≤ one step of amax/8 (amax/16).
    // The fp16 scale adds a relative 2^-11 of amax.
    float tol = 0.0f;
    switch (t) {
      case RWKVRT_BK_Q4_1: tol = 0.5f * (hi - lo) / 15.0f; break;
      case RWKVRT_BK_Q5_1: tol = 0.5f * (hi - lo) / 31.0f; break;
      case RWKVRT_BK_Q8_0: tol = 0.5f * amax / 127.0f; break;
      case RWKVRT_BK_Q4_0: tol = amax / 8.0f; break;
      case RWKVRT_BK_Q5_0: tol = amax / 16.0f; break;
      default: FAIL();
    }
    tol = tol * 1.01f + amax * 1e-3f;
    for (int j = 0; j < 32; ++j)
      ASSERT_NEAR(y[b * 32 + j], x[b * 32 + j], tol) << "block " << b << " value " << j;
  }
}

INSTANTIATE_TEST_SUITE_P(AllBlockTypes, QuantRoundTrip,
                         ::testing::Values(RWKVRT_BK_Q4_0, RWKVRT_BK_Q4_1, RWKVRT_BK_Q5_0,
                                           RWKVRT_BK_Q5_1, RWKVRT_BK_Q8_0));

}  // namespace
}  // namespace rwkvrt
