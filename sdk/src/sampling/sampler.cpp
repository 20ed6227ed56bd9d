#include "sampling/sampler.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <string_view>

#include "core/error.h"
#include "tokenizer/tokenizer.h"

namespace rwkvrt {
namespace {

using Mode = SamplingParams::Mode;

// More probable first; the lower id first among equals.
bool more_probable(const TokenProbability& a, const TokenProbability& b) {
  return a.probability != b.probability ? a.probability > b.probability : a.id < b.id;
}

void sort_by_id(std::vector<TokenProbability>& dist) {
  std::sort(dist.begin(), dist.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
}

void normalize(std::vector<TokenProbability>& dist) {
  double total = 0;
  for (const auto& t : dist) total += t.probability;
  for (auto& t : dist) t.probability /= total;
}

// The largest logit of logits[0..n) and its id (the lowest among equals).  Throws for NaN or +inf,
// and if every logit is -inf.
std::pair<float, int32_t> max_logit(const float* logits, size_t n) {
  float best = -std::numeric_limits<float>::infinity();
  int32_t best_id = -1;
  for (size_t i = 0; i < n; ++i) {
    const float l = logits[i];
    if (std::isnan(l) || l == std::numeric_limits<float>::infinity()) {
      fail(RWKVRT_ERR_INVALID_ARGUMENT, "the logit of token {} is {}; cannot sample", i, l);
    }
    if (l > best) {
      best = l;
      best_id = static_cast<int32_t>(i);
    }
  }
  if (best_id < 0) {
    fail(RWKVRT_ERR_INVALID_ARGUMENT,
         "no token can be sampled: every one of the {} is banned or "
         "has logit -inf",
         n);
  }
  return {best, best_id};
}

}  // namespace

Sampler::Sampler(SamplingParams params, size_t vocab_size, const Tokenizer* tokenizer)
    : params_(std::move(params)),
      vocab_size_(vocab_size),
      tokenizer_(tokenizer),
      rng_(params_.seed) {
  const SamplingParams& p = params_;
  auto invalid = [](const char* what, auto value) {
    fail(RWKVRT_ERR_INVALID_ARGUMENT, "sampling parameter {} = {} is out of range", what, value);
  };
  if (vocab_size_ == 0) invalid("vocab_size", vocab_size_);
  if (!(p.temperature >= 0) || std::isinf(p.temperature)) invalid("temperature", p.temperature);
  if (p.top_k < 0) invalid("top_k", p.top_k);
  if (!(p.top_p >= 0 && p.top_p <= 1)) invalid("top_p", p.top_p);
  if (!(p.min_p >= 0 && p.min_p <= 1)) invalid("min_p", p.min_p);
  if (!(p.repetition_penalty > 0) || std::isinf(p.repetition_penalty)) {
    invalid("repetition_penalty", p.repetition_penalty);
  }
  if (!std::isfinite(p.presence_penalty)) invalid("presence_penalty", p.presence_penalty);
  if (!std::isfinite(p.frequency_penalty)) invalid("frequency_penalty", p.frequency_penalty);
  if (!(p.penalty_decay >= 0 && p.penalty_decay <= 1)) invalid("penalty_decay", p.penalty_decay);
  if (p.penalty_last_n < -1) invalid("penalty_last_n", p.penalty_last_n);
  for (const auto& [id, bias] : p.logit_bias) {
    if (id < 0 || static_cast<size_t>(id) >= vocab_size_) invalid("logit_bias id", id);
    if (std::isnan(bias)) invalid("logit_bias value", bias);
  }
  for (int32_t id : p.banned) {
    if (id < 0 || static_cast<size_t>(id) >= vocab_size_) invalid("banned id", id);
  }
  if (p.mode == Mode::ReferencePipeline) {
    if (tokenizer_ == nullptr) {
      fail(RWKVRT_ERR_INVALID_ARGUMENT, "the reference sampling pipeline needs a tokenizer");
    }
    if (p.min_p != 0 || p.repetition_penalty != 1 || !p.logit_bias.empty() ||
        p.penalty_last_n != -1) {
      fail(RWKVRT_ERR_INVALID_ARGUMENT,
           "the reference sampling pipeline has no min_p, repetition_penalty, logit_bias or "
           "penalty_last_n; leave them at their defaults");
    }
  }
}

int32_t Sampler::sample(float* logits, size_t n) {
  const std::vector<TokenProbability> dist = distribution(logits, n);
  return pick(dist, rng_.uniform());
}

std::vector<TokenProbability> Sampler::distribution(float* logits, size_t n) const {
  n = std::min(n, vocab_size_);
  apply_bias_and_penalties(logits, n);
  return params_.mode == Mode::Standard ? standard_distribution(logits, n)
                                        : reference_distribution(logits, n);
}

int32_t Sampler::pick(const std::vector<TokenProbability>& dist, double u) {
  if (dist.empty()) fail(RWKVRT_ERR_INVALID_ARGUMENT, "cannot pick from an empty distribution");
  double total = 0;
  for (const auto& t : dist) total += t.probability;
  const double target = u * total;
  double cumulative = 0;
  for (const auto& t : dist) {
    cumulative += t.probability;
    if (cumulative > target) return t.id;
  }
  return dist.back().id;  // u * total rounded up to the full sum
}

// Both modes share this step: the reference's ban and penalty rules are the standard ones with
// repetition_penalty 1 and no bias, which the constructor enforces in reference mode.
void Sampler::apply_bias_and_penalties(float* logits, size_t n) const {
  for (const auto& [id, bias] : params_.logit_bias) {
    if (static_cast<size_t>(id) < n) logits[id] += bias;
  }
  for (int32_t id : params_.banned) {
    if (static_cast<size_t>(id) < n) logits[id] = -std::numeric_limits<float>::infinity();
  }
  const float rp = params_.repetition_penalty;
  for (const auto& [id, occ] : occurrences_) {
    if (static_cast<size_t>(id) >= n) continue;
    float l = logits[id];
    if (rp != 1) l = l > 0 ? l / rp : l * rp;
    logits[id] =
        l - static_cast<float>(params_.presence_penalty + params_.frequency_penalty * occ.weight);
  }
}

std::vector<TokenProbability> Sampler::standard_distribution(const float* logits, size_t n) const {
  const auto [max_l, max_id] = max_logit(logits, n);
  if (params_.greedy || params_.temperature == 0) return {{max_id, 1.0}};

  std::vector<TokenProbability> cands;
  for (size_t i = 0; i < n; ++i) {
    if (logits[i] != -std::numeric_limits<float>::infinity()) {
      cands.push_back({static_cast<int32_t>(i), std::exp(static_cast<double>(logits[i]) - max_l)});
    }
  }

  const auto k = static_cast<size_t>(params_.top_k);
  if (k > 0 && k < cands.size()) {
    std::nth_element(cands.begin(), cands.begin() + k - 1, cands.end(), more_probable);
    cands.resize(k);
  }

  if (params_.top_p < 1) {
    double total = 0;
    for (const auto& t : cands) total += t.probability;
    // Tokens below eps = (1 - top_p) * total / (2 m) hold less than half the mass top_p leaves
    // out, so they all lie past the cut: dropping them first keeps the sort short.
    const double eps = (1 - params_.top_p) * total / (2.0 * static_cast<double>(cands.size()));
    cands.erase(std::remove_if(cands.begin(), cands.end(),
                               [&](const auto& t) { return t.probability < eps; }),
                cands.end());
    std::sort(cands.begin(), cands.end(), more_probable);
    const double target = params_.top_p * total;
    double cumulative = 0;
    size_t keep = 0;
    while (keep < cands.size()) {
      cumulative += cands[keep++].probability;
      if (cumulative >= target) break;
    }
    cands.resize(keep);
  }

  if (params_.min_p > 0) {
    double top = 0;
    for (const auto& t : cands) top = std::max(top, t.probability);
    const double floor = params_.min_p * top;
    cands.erase(std::remove_if(cands.begin(), cands.end(),
                               [&](const auto& t) { return t.probability < floor; }),
                cands.end());
  }

  if (params_.temperature != 1) {
    for (auto& t : cands) {
      t.probability = std::exp((static_cast<double>(logits[t.id]) - max_l) / params_.temperature);
    }
  }
  normalize(cands);
  sort_by_id(cands);
  return cands;
}

std::vector<TokenProbability> Sampler::reference_distribution(const float* logits, size_t n) const {
  const auto [max_l, max_id] = max_logit(logits, n);
  double temperature = params_.temperature;
  double top_p = params_.top_p;
  if (params_.greedy || temperature == 0) {
    temperature = 1;
    top_p = 0;
  }

  // softmax in float32, as the reference's logits.float()
  std::vector<float> probs(n);
  double total = 0;
  for (size_t i = 0; i < n; ++i) total += std::exp(static_cast<double>(logits[i]) - max_l);
  for (size_t i = 0; i < n; ++i) {
    probs[i] = static_cast<float>(std::exp(static_cast<double>(logits[i]) - max_l) / total);
  }

  // cutoff = sorted[first i with cumsum[i] >= top_p], the cumsum accumulated in float32 as numpy
  // does.  Sorting only the probabilities at least eps = (1 - top_p) / (2 n) is enough when their
  // cumsum reaches top_p, as the rest is a tail of the same order; otherwise (top_p near 1, or
  // float32 rounding) everything is sorted and, failing again, index 0 is used.
  auto find_cutoff = [&](float floor) -> std::pair<bool, float> {
    std::vector<float> sorted;
    for (float p : probs) {
      if (p >= floor) sorted.push_back(p);
    }
    std::sort(sorted.begin(), sorted.end(), std::greater<float>());
    float cumulative = 0;
    for (float p : sorted) {
      cumulative += p;
      if (cumulative >= top_p) return {true, p};
    }
    return {false, sorted.empty() ? 0.0f : sorted.front()};
  };
  float cutoff = probs[max_id];  // top_p 0: index 0 of the sorted probabilities
  if (top_p > 0) {
    const auto eps = static_cast<float>((1 - top_p) / (2.0 * static_cast<double>(n)));
    auto found = eps > 0 ? find_cutoff(eps) : std::make_pair(false, 0.0f);
    if (!found.first) found = find_cutoff(0);
    cutoff = found.second;
  }

  std::vector<TokenProbability> cands;
  for (size_t i = 0; i < n; ++i) {
    if (probs[i] >= cutoff && probs[i] > 0) cands.push_back({static_cast<int32_t>(i), probs[i]});
  }
  const auto k = static_cast<size_t>(params_.top_k);
  if (k > 0 && k < n && k < cands.size()) {
    std::nth_element(cands.begin(), cands.begin() + k - 1, cands.end(), more_probable);
    cands.resize(k);
  }
  if (temperature != 1) {
    for (auto& t : cands) t.probability = std::pow(t.probability, 1.0 / temperature);
  }
  normalize(cands);
  sort_by_id(cands);
  return cands;
}

void Sampler::accept(int32_t token) {
  if (token < 0) fail(RWKVRT_ERR_INVALID_ARGUMENT, "cannot accept token id {}", token);
  if (params_.penalty_last_n == 0) return;
  if (params_.penalty_decay != 1) {
    for (auto& entry : occurrences_) entry.second.weight *= params_.penalty_decay;
  }

  double weight = 1;
  if (params_.mode == Mode::ReferencePipeline) {
    const std::string text = tokenizer_->decode(&token, 1);
    if (std::string_view(" \t0123456789").find(text) != std::string_view::npos) weight = 0;
  }
  Occurrence& occ = occurrences_[token];
  occ.weight += weight;
  ++occ.count;

  if (params_.penalty_last_n > 0) {
    window_.push_back(token);
    if (window_.size() > static_cast<size_t>(params_.penalty_last_n)) {
      // The oldest occurrence was counted penalty_last_n tokens ago, so it now weighs decay^n.
      auto it = occurrences_.find(window_.front());
      window_.pop_front();
      if (--it->second.count == 0) {
        occurrences_.erase(it);
      } else {
        it->second.weight -= std::pow(static_cast<double>(params_.penalty_decay),
                                      static_cast<double>(params_.penalty_last_n));
      }
    }
  }
}

void Sampler::reset() {
  occurrences_.clear();
  window_.clear();
  rng_ = Xoshiro256(params_.seed);
}

}  // namespace rwkvrt
