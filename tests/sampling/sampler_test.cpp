// The sampler on hand-computed cases: each filter alone and combined, penalties (which logits
// change and by how much), bias and bans, greedy, the fixed-draw rule, the reference pipeline's
// rules and quirks, and reproducibility of the random stream.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <vector>

#include "core/error.h"
#include "sampling/rng.h"
#include "sampling/sampler.h"
#include "tokenizer/tokenizer.h"

namespace rwkvrt {
namespace {

using Mode = SamplingParams::Mode;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Logits whose softmax is proportional to `weights`.
std::vector<float> logits_for(const std::vector<double>& weights) {
  std::vector<float> logits;
  for (double w : weights) logits.push_back(w > 0 ? static_cast<float>(std::log(w)) : kNegInf);
  return logits;
}

// The distribution as id -> probability.
std::map<int32_t, double> dist_of(const Sampler& s, std::vector<float> logits) {
  std::map<int32_t, double> out;
  for (const auto& t : s.distribution(logits.data(), logits.size())) out[t.id] = t.probability;
  return out;
}

void expect_dist(const std::map<int32_t, double>& actual,
                 const std::map<int32_t, double>& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  for (const auto& [id, p] : expected) {
    ASSERT_EQ(actual.count(id), 1u) << "token " << id << " missing";
    EXPECT_NEAR(actual.at(id), p, 1e-6) << "token " << id;
  }
}

SamplingParams with(std::function<void(SamplingParams&)> set) {
  SamplingParams p;
  set(p);
  return p;
}

const std::vector<double> k1234 = {1, 2, 3, 4};  // probabilities 0.1 0.2 0.3 0.4

TEST(Sampler, PlainSoftmax) {
  Sampler s(SamplingParams{}, 4);
  expect_dist(dist_of(s, logits_for(k1234)), {{0, 0.1}, {1, 0.2}, {2, 0.3}, {3, 0.4}});
}

TEST(Sampler, FixedDrawPicksTheFirstTokenWhoseCumulativeProbabilityExceedsIt) {
  const std::vector<TokenProbability> d = {{0, 0.1}, {1, 0.2}, {2, 0.3}, {3, 0.4}};
  EXPECT_EQ(Sampler::pick(d, 0.0), 0);
  EXPECT_EQ(Sampler::pick(d, 0.05), 0);
  EXPECT_EQ(Sampler::pick(d, 0.15), 1);
  EXPECT_EQ(Sampler::pick(d, 0.35), 2);
  EXPECT_EQ(Sampler::pick(d, 0.65), 3);
  EXPECT_EQ(Sampler::pick(d, 0.999999), 3);
}

TEST(Sampler, TopKKeepsExactlyKCandidates) {
  expect_dist(dist_of(Sampler(with([](auto& p) { p.top_k = 2; }), 4), logits_for(k1234)),
              {{2, 3.0 / 7}, {3, 4.0 / 7}});
  expect_dist(dist_of(Sampler(with([](auto& p) { p.top_k = 1; }), 4), logits_for(k1234)),
              {{3, 1.0}});
  EXPECT_EQ(dist_of(Sampler(with([](auto& p) { p.top_k = 4; }), 4), logits_for(k1234)).size(), 4u);
  EXPECT_EQ(dist_of(Sampler(with([](auto& p) { p.top_k = 9; }), 4), logits_for(k1234)).size(), 4u);
  // Ties at the boundary go to the lower id.
  expect_dist(dist_of(Sampler(with([](auto& p) { p.top_k = 2; }), 4), logits_for({1, 2, 2, 2})),
              {{1, 0.5}, {2, 0.5}});
}

TEST(Sampler, TopPKeepsTheSmallestSetReachingP) {
  auto top_p = [](float p) { return Sampler(with([&](auto& s) { s.top_p = p; }), 4); };
  expect_dist(dist_of(top_p(0.35f), logits_for(k1234)), {{3, 1.0}});
  expect_dist(dist_of(top_p(0.5f), logits_for(k1234)), {{2, 3.0 / 7}, {3, 4.0 / 7}});
  expect_dist(dist_of(top_p(0.75f), logits_for(k1234)), {{1, 2.0 / 9}, {2, 3.0 / 9}, {3, 4.0 / 9}});
  expect_dist(dist_of(top_p(0.0f), logits_for(k1234)), {{3, 1.0}});
  EXPECT_EQ(dist_of(top_p(1.0f), logits_for(k1234)).size(), 4u);
  // A long tail is cut without changing the result.
  std::vector<double> w(10000, 1e-6);
  w[7] = 0.6;
  w[9] = 0.39;
  expect_dist(dist_of(Sampler(with([](auto& p) { p.top_p = 0.9f; }), w.size()), logits_for(w)),
              {{7, 0.6 / 0.99}, {9, 0.39 / 0.99}});
}

TEST(Sampler, MinPKeepsTokensWithinAFactorOfTheBest) {
  expect_dist(dist_of(Sampler(with([](auto& p) { p.min_p = 0.6f; }), 4), logits_for(k1234)),
              {{2, 3.0 / 7}, {3, 4.0 / 7}});
  expect_dist(dist_of(Sampler(with([](auto& p) { p.min_p = 1.0f; }), 4), logits_for(k1234)),
              {{3, 1.0}});
}

TEST(Sampler, FiltersApplyInOrderEachOnWhatThePreviousKept) {
  // top_k 3 leaves 0.2 0.3 0.4 (renormalised 2/9 3/9 4/9); top_p 0.5 then needs 4/9 + 3/9.
  expect_dist(dist_of(Sampler(with([](auto& p) {
                                p.top_k = 3;
                                p.top_p = 0.5f;
                              }),
                              4),
                      logits_for(k1234)),
              {{2, 3.0 / 7}, {3, 4.0 / 7}});
}

TEST(Sampler, TemperatureShapesTheSurvivors) {
  // T = 0.5 squares the probabilities: 1 4 9 16 over 30.
  expect_dist(dist_of(Sampler(with([](auto& p) { p.temperature = 0.5f; }), 4), logits_for(k1234)),
              {{0, 1.0 / 30}, {1, 4.0 / 30}, {2, 9.0 / 30}, {3, 16.0 / 30}});
  // After truncation: top_k 2 then squared, 9 and 16 over 25 (truncation ignores temperature).
  expect_dist(dist_of(Sampler(with([](auto& p) {
                                p.temperature = 0.5f;
                                p.top_k = 2;
                              }),
                              4),
                      logits_for(k1234)),
              {{2, 9.0 / 25}, {3, 16.0 / 25}});
  // T = 2 takes square roots.
  const double z = 1 + std::sqrt(2.0) + std::sqrt(3.0) + 2;
  expect_dist(dist_of(Sampler(with([](auto& p) { p.temperature = 2.0f; }), 4), logits_for(k1234)),
              {{0, 1 / z}, {1, std::sqrt(2.0) / z}, {2, std::sqrt(3.0) / z}, {3, 2 / z}});
}

TEST(Sampler, GreedyIsArgmaxWithTheLowestIdOnTies) {
  Sampler greedy(with([](auto& p) { p.greedy = true; }), 5);
  Sampler cold(with([](auto& p) { p.temperature = 0; }), 5);
  std::vector<float> logits = {1, 5, 5, -2, 0};
  EXPECT_EQ(greedy.sample(logits.data(), logits.size()), 1);
  logits = {1, 5, 5, -2, 0};
  EXPECT_EQ(cold.sample(logits.data(), logits.size()), 1);
  logits = {1, 2, 3, 9, 0};
  for (int i = 0; i < 10; ++i) {
    std::vector<float> copy = logits;
    EXPECT_EQ(greedy.sample(copy.data(), copy.size()), 3);
  }
}

TEST(Sampler, LogitBiasIsAddedToTheLogit) {
  Sampler s(with([](auto& p) { p.logit_bias = {{0, static_cast<float>(std::log(4.0))}}; }), 4);
  expect_dist(dist_of(s, logits_for(k1234)),
              {{0, 4.0 / 13}, {1, 2.0 / 13}, {2, 3.0 / 13}, {3, 4.0 / 13}});
}

TEST(Sampler, BannedTokensAreNeverSampled) {
  Sampler s(with([](auto& p) {
              p.banned = {3, 1};
              p.seed = 7;
            }),
            4);
  expect_dist(dist_of(s, logits_for(k1234)), {{0, 0.25}, {2, 0.75}});
  for (int i = 0; i < 1000; ++i) {
    std::vector<float> logits = {0, 50, 0, 50};  // the banned ones would otherwise always win
    const int32_t t = s.sample(logits.data(), logits.size());
    ASSERT_TRUE(t == 0 || t == 2) << t;
  }
}

TEST(Sampler, LogitsPastTheVocabularyAreIgnored) {
  Sampler s(SamplingParams{}, 2);
  expect_dist(dist_of(s, logits_for({1, 3, 1000})), {{0, 0.25}, {1, 0.75}});
}

TEST(Sampler, PresenceAndFrequencyPenaltiesChangeExactlyTheSeenTokens) {
  Sampler s(with([](auto& p) {
              p.presence_penalty = 0.5f;
              p.frequency_penalty = 0.25f;
            }),
            5);
  s.accept(1);
  s.accept(1);
  s.accept(2);
  std::vector<float> logits(5, 0.0f);
  s.distribution(logits.data(), logits.size());
  EXPECT_EQ(logits, (std::vector<float>{0, -1.0f, -0.75f, 0, 0}));
}

TEST(Sampler, PenaltyWeightsDecayPerAcceptedToken) {
  Sampler s(with([](auto& p) {
              p.presence_penalty = 0.5f;
              p.frequency_penalty = 0.25f;
              p.penalty_decay = 0.5f;
            }),
            5);
  s.accept(1);  // w1 = 1
  s.accept(1);  // w1 = 0.5 + 1
  s.accept(2);  // w1 = 0.75, w2 = 1
  std::vector<float> logits(5, 0.0f);
  s.distribution(logits.data(), logits.size());
  EXPECT_FLOAT_EQ(logits[1], -(0.5f + 0.25f * 0.75f));
  EXPECT_FLOAT_EQ(logits[2], -(0.5f + 0.25f));
  EXPECT_EQ(logits[0], 0);
  EXPECT_EQ(logits[3], 0);
}

TEST(Sampler, RepetitionPenaltyDividesPositiveAndMultipliesNegativeLogits) {
  Sampler s(with([](auto& p) { p.repetition_penalty = 2.0f; }), 4);
  s.accept(0);
  s.accept(1);
  s.accept(1);  // counted once: repetition is about presence
  std::vector<float> logits = {2, -2, 2, -2};
  s.distribution(logits.data(), logits.size());
  EXPECT_EQ(logits, (std::vector<float>{1, -4, 2, -2}));
}

TEST(Sampler, PenaltyWindowSeesOnlyTheLastN) {
  Sampler s(with([](auto& p) {
              p.frequency_penalty = 1.0f;
              p.penalty_decay = 0.5f;
              p.penalty_last_n = 2;
            }),
            5);
  s.accept(1);
  s.accept(1);
  s.accept(2);  // window {1, 2}: the older 1 left it
  std::vector<float> logits(5, 0.0f);
  s.distribution(logits.data(), logits.size());
  EXPECT_FLOAT_EQ(logits[1], -0.5f);  // one occurrence, age 1
  EXPECT_FLOAT_EQ(logits[2], -1.0f);  // age 0
  s.accept(3);
  s.accept(4);  // window {3, 4}
  logits.assign(5, 0.0f);
  s.distribution(logits.data(), logits.size());
  EXPECT_EQ(logits, (std::vector<float>{0, 0, 0, -0.5f, -1.0f}));

  Sampler off(with([](auto& p) {
                p.presence_penalty = 1.0f;
                p.penalty_last_n = 0;
              }),
              5);
  off.accept(1);
  logits.assign(5, 0.0f);
  off.distribution(logits.data(), logits.size());
  EXPECT_EQ(logits, std::vector<float>(5, 0.0f));
}

TEST(Sampler, ResetForgetsPenaltiesAndRestartsTheStream) {
  Sampler s(with([](auto& p) {
              p.presence_penalty = 1.0f;
              p.seed = 3;
            }),
            4);
  std::vector<int32_t> first;
  for (int i = 0; i < 20; ++i) {
    std::vector<float> logits = logits_for(k1234);
    first.push_back(s.sample(logits.data(), logits.size()));
    s.accept(first.back());
  }
  s.reset();
  std::vector<float> logits(4, 0.0f);
  s.distribution(logits.data(), logits.size());
  EXPECT_EQ(logits, std::vector<float>(4, 0.0f));
  std::vector<int32_t> again;
  for (int i = 0; i < 20; ++i) {
    logits = logits_for(k1234);
    again.push_back(s.sample(logits.data(), logits.size()));
    s.accept(again.back());
  }
  EXPECT_EQ(first, again);
}

std::vector<int32_t> run(Sampler& s, int n) {
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) {
    std::vector<float> logits = logits_for({5, 1, 4, 1, 5, 9, 2, 6});
    out.push_back(s.sample(logits.data(), logits.size()));
  }
  return out;
}

TEST(Sampler, SameSeedSameSequenceOtherSeedAnother) {
  Sampler a(with([](auto& p) { p.seed = 42; }), 8);
  Sampler b(with([](auto& p) { p.seed = 42; }), 8);
  Sampler c(with([](auto& p) { p.seed = 43; }), 8);
  const auto sa = run(a, 200), sb = run(b, 200), sc = run(c, 200);
  EXPECT_EQ(sa, sb);
  EXPECT_NE(sa, sc);
  // The draws follow the distribution: token 5 (9 of 33) is the most frequent.
  std::map<int32_t, int> counts;
  for (int32_t t : sa) ++counts[t];
  for (const auto& [t, n] : counts) EXPECT_LE(n, counts[5]) << t;
}

TEST(Sampler, CopyingForksTheStream) {
  Sampler a(with([](auto& p) { p.seed = 5; }), 8);
  run(a, 10);
  Sampler fork = a;
  EXPECT_EQ(run(a, 50), run(fork, 50));
}

TEST(Sampler, RngIsPortable) {
  // xoshiro256** seeded by SplitMix64, checked against an independent Python implementation.
  Xoshiro256 zero(0);
  EXPECT_EQ(zero.next(), 0x99ec5f36cb75f2b4ull);
  EXPECT_EQ(zero.next(), 0xbf6e1f784956452aull);
  EXPECT_EQ(zero.next(), 0x1a5f849d4933e6e0ull);
  Xoshiro256 other(12345);
  EXPECT_EQ(other.next(), 0xbe6a36374160d49bull);
  for (int i = 0; i < 1000; ++i) {
    const double u = other.uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
  }
}

TEST(Sampler, RejectsBadInputAndParameters) {
  auto status = [](auto f) {
    try {
      f();
    } catch (const Error& e) {
      return e.status();
    }
    return RWKVRT_OK;
  };
  Sampler s(SamplingParams{}, 3);
  std::vector<float> nan = {0, std::nanf(""), 0};
  EXPECT_EQ(status([&] { s.sample(nan.data(), nan.size()); }), RWKVRT_ERR_INVALID_ARGUMENT);
  std::vector<float> none = {kNegInf, kNegInf, kNegInf};
  EXPECT_EQ(status([&] { s.sample(none.data(), none.size()); }), RWKVRT_ERR_INVALID_ARGUMENT);
  for (auto set : std::vector<std::function<void(SamplingParams&)>>{
           [](auto& p) { p.temperature = -1; }, [](auto& p) { p.top_k = -1; },
           [](auto& p) { p.top_p = 1.5f; }, [](auto& p) { p.min_p = -0.1f; },
           [](auto& p) { p.repetition_penalty = 0; }, [](auto& p) { p.penalty_decay = 2; },
           [](auto& p) { p.penalty_last_n = -2; }, [](auto& p) { p.banned = {3}; },
           [](auto& p) {
             p.logit_bias = {{-1, 1.0f}};
           },
           [](auto& p) { p.mode = Mode::ReferencePipeline; }}) {  // no tokenizer
    EXPECT_EQ(status([&] { Sampler(with(set), 3); }), RWKVRT_ERR_INVALID_ARGUMENT);
  }
  const auto bytes = make_byte_tokenizer();
  EXPECT_EQ(status([&] {
              Sampler(with([](auto& p) {
                        p.mode = Mode::ReferencePipeline;
                        p.min_p = 0.1f;
                      }),
                      256, bytes.get());
            }),
            RWKVRT_ERR_INVALID_ARGUMENT);
}

// ---- ReferencePipeline mode ----

SamplingParams reference(std::function<void(SamplingParams&)> set = [](SamplingParams&) {}) {
  SamplingParams p;
  p.mode = Mode::ReferencePipeline;
  set(p);
  return p;
}

TEST(Sampler, ReferencePenaltiesSkipFrequencyForSpacesAndDigits) {
  const auto bytes = make_byte_tokenizer();
  Sampler s(reference([](auto& p) {
              p.presence_penalty = 0.3f;
              p.frequency_penalty = 0.2f;
              p.penalty_decay = 0.5f;
            }),
            256, bytes.get());
  s.accept(' ');  // weight 0
  s.accept('a');  // 1
  s.accept('a');  // 0.5 + 1
  s.accept('5');  // weight 0; 'a' now 0.75
  std::vector<float> logits(256, 1.0f);
  s.distribution(logits.data(), logits.size());
  EXPECT_FLOAT_EQ(logits[' '], 1.0f - 0.3f);
  EXPECT_FLOAT_EQ(logits['5'], 1.0f - 0.3f);
  EXPECT_FLOAT_EQ(logits['a'], 1.0f - (0.3f + 0.75f * 0.2f));
  EXPECT_EQ(logits['b'], 1.0f);
}

TEST(Sampler, ReferenceWeightUsesPythonSubstringTest) {
  // `text in ' \t0123456789'`: "89" and " \t" are substrings (weight 0), "21" is not (weight 1).
  const auto vocab = make_world_tokenizer_from_text("1 '89' 2\n2 '21' 2\n3 ' \\t' 2\n");
  Sampler s(reference([](auto& p) { p.frequency_penalty = 1.0f; }), 4, vocab.get());
  for (int32_t t : {1, 2, 3}) s.accept(t);
  std::vector<float> logits(4, 0.0f);
  s.distribution(logits.data(), logits.size());
  EXPECT_EQ(logits, (std::vector<float>{0, 0, -1.0f, 0}));
}

TEST(Sampler, ReferenceBanAndPenaltyOrder) {
  const auto bytes = make_byte_tokenizer();
  Sampler s(reference([](auto& p) {
              p.banned = {0};
              p.presence_penalty = 1.0f;
            }),
            4, bytes.get());
  s.accept(0);
  std::vector<float> logits = {5, 0, 0, 0};
  s.distribution(logits.data(), logits.size());
  EXPECT_EQ(logits[0], kNegInf);
}

TEST(Sampler, ReferenceTopPKeepsEveryTokenTiedWithTheCutoff) {
  const auto bytes = make_byte_tokenizer();
  auto top_p = [&](float p) {
    return Sampler(reference([&](auto& s) { s.top_p = p; }), 4, bytes.get());
  };
  expect_dist(dist_of(top_p(0.5f), logits_for(k1234)), {{2, 3.0 / 7}, {3, 4.0 / 7}});
  expect_dist(dist_of(top_p(0.35f), logits_for(k1234)), {{3, 1.0}});
  expect_dist(dist_of(top_p(0.3f), logits_for({1, 1, 1, 1})),
              {{0, 0.25}, {1, 0.25}, {2, 0.25}, {3, 0.25}});
  // The standard pipeline keeps just enough: 2 of the 4.
  EXPECT_EQ(
      dist_of(Sampler(with([](auto& p) { p.top_p = 0.3f; }), 4), logits_for({1, 1, 1, 1})).size(),
      2u);
}

TEST(Sampler, ReferenceTopPOfOneCanCollapseToTheMaximumLikeNumpy) {
  // softmax([1, 0, 0]) in float32 sums to 0.99999994 < 1, so no cumulative sum reaches top_p = 1;
  // numpy's argmax of the all-false array is 0 and the cutoff becomes the largest probability.
  const auto bytes = make_byte_tokenizer();
  Sampler s(reference([](auto& p) { p.top_p = 1.0f; }), 3, bytes.get());
  expect_dist(dist_of(s, {1, 0, 0}), {{0, 1.0}});
}

TEST(Sampler, ReferenceTopKThenTemperatureAsPower) {
  const auto bytes = make_byte_tokenizer();
  Sampler s(reference([](auto& p) {
              p.top_k = 2;
              p.temperature = 0.5f;
            }),
            4, bytes.get());
  expect_dist(dist_of(s, logits_for(k1234)), {{2, 9.0 / 25}, {3, 16.0 / 25}});
}

TEST(Sampler, ReferenceTemperatureZeroKeepsAllTiesForTheMaximum) {
  const auto bytes = make_byte_tokenizer();
  Sampler s(reference([](auto& p) { p.temperature = 0; }), 4, bytes.get());
  expect_dist(dist_of(s, logits_for({1, 4, 2, 4})), {{1, 0.5}, {3, 0.5}});
}

TEST(Sampler, ReferenceFixedDraw) {
  const auto bytes = make_byte_tokenizer();
  Sampler s(reference([](auto& p) { p.top_p = 0.75f; }), 4, bytes.get());
  std::vector<float> logits = logits_for(k1234);
  const auto d = s.distribution(logits.data(), logits.size());  // 2/9 3/9 4/9 on ids 1 2 3
  EXPECT_EQ(Sampler::pick(d, 0.2), 1);
  EXPECT_EQ(Sampler::pick(d, 0.3), 2);
  EXPECT_EQ(Sampler::pick(d, 0.6), 3);
}

}  // namespace
}  // namespace rwkvrt
