// Choosing the next token from a model's logits.
//
// Standard mode (the usual chain, in llama.cpp's order):
//   1. logit_bias is added; banned tokens get -inf.
//   2. Penalties, for each token t seen in the penalty window (the last penalty_last_n accepted
//      tokens; all of them if -1; none if 0), with w(t) = sum over its occurrences of
//      penalty_decay^age (age 0 for the most recent accepted token):
//        repetition (llama.cpp): logit /= repetition_penalty if logit > 0, else *= it;
//        presence and frequency (OpenAI): logit -= presence_penalty + frequency_penalty * w(t).
//   3. greedy, or temperature == 0: the largest logit wins (the lowest id among equals).
//   4. Truncation on the softmax of the penalised logits, in this order, each on what the
//      previous one kept: top_k keeps the k most probable; top_p keeps the smallest most-probable
//      set whose probability reaches top_p of the kept mass; min_p keeps tokens whose probability
//      is at least min_p times the largest.  Ties are broken towards the lower id.
//   5. Temperature shapes the survivors: p ~ exp(logit / temperature).  Applied after truncation,
//      so the candidate set does not depend on it (as in llama.cpp and the reference pipeline).
//
// ReferencePipeline mode reproduces rwkv.utils.PIPELINE (the official `rwkv` package):
//   generate():  logits[banned] = -inf; then for every token t in `occurrence`:
//                logits[t] -= presence_penalty + occurrence[t] * frequency_penalty.
//                After a token is chosen (accept()): every occurrence is multiplied by
//                penalty_decay, then occurrence[token] += w, where w = 0 if the token's decoded
//                text is a substring of " \t0123456789" (so " ", "\t", "7", "89", and also text
//                like "345", get the presence penalty but never the frequency one) and 1 otherwise.
//   sample_logits():  p = softmax(logits) over the whole vocabulary; with temperature 0 (or
//                greedy) temperature becomes 1 and top_p 0.  Sort p descending, c = cumsum;
//                cutoff = p_sorted[first i with c[i] >= top_p] (index 0 if none, as numpy's argmax
//                of an all-false array); p[p < cutoff] = 0 (ties with the cutoff survive, so top_p
//                0 keeps every token tied for the maximum).  Then if 0 < top_k < vocabulary,
//                every token outside the top_k most probable is zeroed.  Then p =
//                p^(1/temperature), renormalised, and the token is drawn as numpy.random.choice
//                does: the first id whose cumulative probability exceeds a uniform draw.
//   The fields the reference does not have (min_p, repetition_penalty, logit_bias,
//   penalty_last_n) must keep their defaults in this mode.  Known differences: ties at the top-k
//   boundary go to the lower id (numpy's order is unspecified); World's reference decoder turns
//   id 0 into U+FFFD (weight 1) where this one decodes it to nothing (weight 0); softmax and cumsum
//   rounding can differ in the last bit from PyTorch/numpy.
//
// Draws come from Xoshiro256 (rng.h) seeded with `seed`, so a run is reproducible bit for bit on
// every platform.  A Sampler is a value: copying it forks the random stream and the penalty state.
// Not thread-safe; use one per sequence.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <unordered_map>
#include <utility>
#include <vector>

#include "sampling/rng.h"

namespace rwkvrt {

class Tokenizer;

struct SamplingParams {
  enum class Mode { Standard, ReferencePipeline };

  float temperature = 1.0f;         // >= 0; 0 means greedy
  int top_k = 0;                    // 0: off
  float top_p = 1.0f;               // in [0, 1]; 1: off
  float min_p = 0.0f;               // in [0, 1]; 0: off
  float repetition_penalty = 1.0f;  // > 0; 1: off
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  float penalty_decay = 1.0f;  // in [0, 1]: weight kept by past occurrences per accepted token
  int penalty_last_n = -1;     // window of accepted tokens the penalties see; -1: all
  std::vector<std::pair<int32_t, float>> logit_bias;  // added to the logit of the token
  std::vector<int32_t> banned;                        // never sampled
  bool greedy = false;
  uint64_t seed = 0;
  Mode mode = Mode::Standard;
};

// One entry of the distribution a token is drawn from.
struct TokenProbability {
  int32_t id;
  double probability;
};

class Sampler {
 public:
  // `vocab_size`: the number of ids that may be sampled; logits past it are ignored (a model may
  // have more rows than its tokenizer has ids).  `tokenizer` is needed in ReferencePipeline mode
  // (to weigh accepted tokens by their text) and must outlive the sampler and its copies; it is
  // unused otherwise.  Throws Error(INVALID_ARGUMENT) for parameters out of range, ids in
  // logit_bias/banned outside the vocabulary, or a reference-mode sampler without a tokenizer or
  // with parameters the reference lacks.
  Sampler(SamplingParams params, size_t vocab_size, const Tokenizer* tokenizer = nullptr);

  // Draws the next token from logits[0..n).  The logits are overwritten (bias, bans and penalties
  // are applied in place).  Does not record the token: call accept() with the token actually
  // used.  Throws Error(INVALID_ARGUMENT) if a logit is NaN or no token can be drawn.
  int32_t sample(float* logits, size_t n);

  // The distribution sample() draws from, sorted by id, probabilities summing to 1 (up to
  // rounding); tokens not listed have probability 0.  Modifies logits like sample(); leaves the
  // random stream alone.
  std::vector<TokenProbability> distribution(float* logits, size_t n) const;

  // The token a uniform draw `u` in [0, 1) selects from `dist`: the first whose cumulative
  // probability exceeds u (numpy.random.choice's rule).
  static int32_t pick(const std::vector<TokenProbability>& dist, double u);

  // Records a generated (or, at the caller's choice, prompt) token for the penalties: decays the
  // weight of earlier occurrences by penalty_decay, then counts this one.
  void accept(int32_t token);

  // Forgets accepted tokens and restarts the random stream from the seed.
  void reset();

  const SamplingParams& params() const { return params_; }

 private:
  struct Occurrence {
    double weight = 0;  // sum of decayed occurrence weights
    int32_t count = 0;  // occurrences in the window
  };

  void apply_bias_and_penalties(float* logits, size_t n) const;
  std::vector<TokenProbability> standard_distribution(const float* logits, size_t n) const;
  std::vector<TokenProbability> reference_distribution(const float* logits, size_t n) const;

  SamplingParams params_;
  size_t vocab_size_;
  const Tokenizer* tokenizer_;
  Xoshiro256 rng_;
  std::unordered_map<int32_t, Occurrence> occurrences_;
  std::deque<int32_t> window_;  // accepted tokens still in the window (penalty_last_n > 0 only)
};

}  // namespace rwkvrt
