// Text generation on a session: what an app calls.  A Generator owns one Session and adds the
// logits after the last fed token, a sampler, the tokenizer, the token history (for the prefix
// cache), and the state of a generation in progress (text assembly, stop strings, limits, cancel).
//
// Contract (the C ABI's, rwkvrt.h "Prompts and streaming generation"): every token a generation
// samples is fed to the state, including the one that ends it, so after a generation the state
// equals feeding the prompt and all generated tokens.  A cancel is seen before sampling; the
// cancelled step samples and feeds nothing.  Used by one thread at a time, except cancel().
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sampling/sampler.h"
#include "session/batch_decoder.h"
#include "session/prefix_cache.h"
#include "session/session.h"
#include "session/text_assembler.h"
#include "tokenizer/tokenizer.h"

namespace rwkvrt {

struct GenerateOptions {
  uint32_t max_tokens = 256;  // 0: no limit
  std::vector<std::string> stop;
  bool stop_at_eos = true;  // ignored without a tokenizer (no end-of-text id is known)
};

enum class FinishReason { None = 0, Stop = 1, Length = 2, Eos = 3, Cancelled = 4 };

struct GeneratedPiece {
  std::string text;
  int32_t token = -1;
  FinishReason finish = FinishReason::None;
  uint32_t n_generated = 0;
};

class Generator {
 public:
  // `tokenizer` may be null (token-level use only: no text, no stop strings, no reference mode).
  Generator(std::shared_ptr<const Model> model, std::shared_ptr<const Tokenizer> tokenizer);

  Session& session() { return *session_; }
  const std::shared_ptr<const Tokenizer>& tokenizer() const { return tokenizer_; }

  // ---- feeding (each keeps the logits after the last token when it computes them) ----
  void reset();
  void feed(const int32_t* tokens, size_t n, LogitsMode mode, float* logits);
  void step(int32_t token, float* logits);
  // Records that a batched decode (outside this class) fed `token` and produced `logits` (V).
  void after_batch_step(int32_t token, const float* logits);
  // Feeds a prompt, keeping its last logits; uses the prefix cache if one is attached.
  void prompt(const int32_t* tokens, size_t n);
  void prompt_text(std::string_view text);
  void import_state(const float* src);
  void load_state(const void* blob, size_t size);
  void set_initial_state(std::vector<float> state);  // and reset
  void set_prefix_cache(std::shared_ptr<PrefixCache> cache);
  size_t prefix_cache_hit() const { return cache_hit_; }
  bool has_logits() const { return has_logits_; }
  // The remembered logits (n_vocab floats); valid when has_logits().
  const std::vector<float>& logits() const { return logits_; }

  // ---- sampling and generation ----
  void set_sampling(const SamplingParams& params);
  void begin(GenerateOptions options);
  bool generating() const { return active_; }
  GeneratedPiece next();
  void cancel() { cancel_.store(true, std::memory_order_relaxed); }

  // A copy with its own state, logits, sampler and history.  Not during a generation.
  std::unique_ptr<Generator> fork();

  // Batched generation: advances every generator (all of one model, each with a generation in
  // progress) by one token in one pass of `decoder`; pieces[i] receives generators[i]'s step.
  static void next_batch(BatchDecoder& decoder, Generator* const* generators, size_t n,
                         GeneratedPiece* pieces);

 private:
  // The sampling half of a step: handles a pending cancel (finishing the piece) or samples the
  // next token.  Returns true if `token` must now be fed.
  bool sample_step(GeneratedPiece& piece, int32_t& token);
  // The text half, after the token was fed and logits_ updated.
  void finish_step(int32_t token, GeneratedPiece& piece);
  void end_generation(GeneratedPiece& piece, FinishReason reason, std::string text);
  void require_active() const;
  void forget_history();

  std::shared_ptr<const Model> model_;
  std::shared_ptr<const Tokenizer> tokenizer_;
  std::unique_ptr<Session> session_;
  std::vector<float> logits_;  // after the last fed token, when has_logits_
  bool has_logits_ = false;
  Sampler sampler_;
  std::vector<float> scratch_;  // sampling modifies logits; it works on this copy

  // Tokens fed since the initial state; unknown after a state import or load.
  std::vector<int32_t> history_;
  bool history_known_ = true;
  std::shared_ptr<PrefixCache> cache_;
  size_t cache_hit_ = 0;

  // Generation in progress.
  bool active_ = false;
  GenerateOptions options_;
  TextAssembler assembler_;
  uint32_t n_generated_ = 0;
  std::atomic<bool> cancel_{false};
};

}  // namespace rwkvrt
