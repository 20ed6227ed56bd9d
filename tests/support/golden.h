// The reference package's golden vectors (../shared/testdata/golden/NAME.json).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace rwkvrt::test {

struct GoldenTensor {
  std::vector<uint64_t> shape;
  std::vector<float> data;
};

struct Golden {
  std::string name;
  std::vector<int32_t> tokens;
  std::vector<std::vector<float>> logits_rnn;  // one row per token
  std::vector<float> logits_seq_last;
  std::vector<GoldenTensor> state_after_seq;   // reference order and layout
  int32_t next_token = 0;
  std::vector<float> logits_after_next;
};

// Parses golden/NAME.json.  Throws std::runtime_error if the file is missing or malformed.
Golden load_golden(const std::string& name);

// All golden model names: v4_L2_C64, v5_L2_C128, v6_L2_C128, v7_L2_C128, v7_L3_C256.
const std::vector<std::string>& golden_names();

// max |a[i] - b[i]|; +inf if the sizes differ or a value is NaN.
double max_abs_diff(const float* a, const float* b, size_t n);
double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b);

}  // namespace rwkvrt::test
