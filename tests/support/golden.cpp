#include "support/golden.h"

#include <cmath>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "support/test_data.h"

namespace rwkvrt::test {

Golden load_golden(const std::string& name) {
  const std::string path = testdata_path("golden/" + name + ".json");
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  const nlohmann::json j = nlohmann::json::parse(in);
  Golden g;
  g.name = name;
  g.tokens = j.at("tokens").get<std::vector<int32_t>>();
  g.logits_rnn = j.at("logits_rnn").get<std::vector<std::vector<float>>>();
  g.logits_seq_last = j.at("logits_seq_last").get<std::vector<float>>();
  for (const auto& t : j.at("state_after_seq"))
    g.state_after_seq.push_back(
        {t.at("shape").get<std::vector<uint64_t>>(), t.at("data").get<std::vector<float>>()});
  g.next_token = j.at("next_token").get<int32_t>();
  g.logits_after_next = j.at("logits_after_next").get<std::vector<float>>();
  return g;
}

const std::vector<std::string>& golden_names() {
  static const std::vector<std::string> names = {"v4_L2_C64", "v5_L2_C128", "v6_L2_C128",
                                                 "v7_L2_C128", "v7_L3_C256"};
  return names;
}

double max_abs_diff(const float* a, const float* b, size_t n) {
  double m = 0.0;
  for (size_t i = 0; i < n; ++i) {
    const double d = std::fabs(double(a[i]) - double(b[i]));
    if (std::isnan(d)) return std::numeric_limits<double>::infinity();
    m = std::max(m, d);
  }
  return m;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return std::numeric_limits<double>::infinity();
  return max_abs_diff(a.data(), b.data(), a.size());
}

}  // namespace rwkvrt::test
