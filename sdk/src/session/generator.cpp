#include "session/generator.h"

#include <algorithm>

#include "core/error.h"

namespace rwkvrt {

namespace {

// The ids a sampler may draw: the model's rows, but not past the tokenizer's last id (World
// models have 65536 rows for 65530 ids; rows past the vocabulary are not text).
size_t sampling_vocab(const Model& model, const Tokenizer* tokenizer) {
  const size_t rows = model.config().n_vocab;
  return tokenizer ? std::min(rows, tokenizer->vocab_size()) : rows;
}

}  // namespace

Generator::Generator(std::shared_ptr<const Model> model, std::shared_ptr<const Tokenizer> tokenizer)
    : model_(std::move(model)),
      tokenizer_(std::move(tokenizer)),
      session_(std::make_unique<Session>(model_)),
      sampler_(SamplingParams{}, sampling_vocab(*model_, tokenizer_.get()), tokenizer_.get()) {}

void Generator::forget_history() {
  history_.clear();
  history_known_ = false;
}

void Generator::reset() {
  if (active_) fail(RWKVRT_ERR_INVALID_ARGUMENT, "cannot reset a session during a generation");
  session_->reset();
  has_logits_ = false;
  history_.clear();
  history_known_ = true;
}

void Generator::feed(const int32_t* tokens, size_t n, LogitsMode mode, float* logits) {
  if (active_) fail(RWKVRT_ERR_INVALID_ARGUMENT, "cannot feed a session during a generation");
  const size_t V = model_->config().n_vocab;
  // Keep the last row ourselves when the caller wants none, so a generation can follow.
  session_->feed(tokens, n, mode, logits);
  if (mode == LogitsMode::None) {
    has_logits_ = false;
  } else {
    const float* last = logits + (mode == LogitsMode::All ? (n - 1) * V : 0);
    logits_.assign(last, last + V);
    has_logits_ = true;
  }
  if (history_known_) history_.insert(history_.end(), tokens, tokens + n);
}

void Generator::step(int32_t token, float* logits) {
  if (!logits) {
    feed(&token, 1, LogitsMode::None, nullptr);
    return;
  }
  feed(&token, 1, LogitsMode::Last, logits);
}

void Generator::after_batch_step(int32_t token, const float* logits) {
  logits_.assign(logits, logits + model_->config().n_vocab);
  has_logits_ = true;
  if (history_known_) history_.push_back(token);
}

void Generator::prompt(const int32_t* tokens, size_t n) {
  if (active_) fail(RWKVRT_ERR_INVALID_ARGUMENT, "cannot prompt a session during a generation");
  if (n == 0) fail(RWKVRT_ERR_INVALID_ARGUMENT, "the prompt is empty");
  session_->validate_tokens(tokens, n);
  cache_hit_ = 0;
  if (!cache_ || !history_known_) {
    logits_.resize(model_->config().n_vocab);
    feed(tokens, n, LogitsMode::Last, logits_.data());
    return;
  }
  std::vector<int32_t> full = history_;
  full.insert(full.end(), tokens, tokens + n);
  const auto& origin = session_->initial_state_override();
  if (auto hit = cache_->lookup(origin, full, history_.size())) {
    session_->import_state(hit->state.data());
    logits_ = hit->logits;
    has_logits_ = true;
    cache_hit_ = hit->tokens.size() - history_.size();
    history_ = hit->tokens;
  }
  if (history_.size() < full.size()) {
    std::vector<float> row(model_->config().n_vocab);
    feed(full.data() + history_.size(), full.size() - history_.size(), LogitsMode::Last,
         row.data());
  }
  auto entry = std::make_shared<PrefixCache::Entry>();
  entry->origin = origin;
  entry->tokens = history_;
  entry->state.resize(model_->state_floats());
  session_->export_state(entry->state.data());
  entry->logits = logits_;
  cache_->insert(std::move(entry));
}

void Generator::prompt_text(std::string_view text) {
  if (!tokenizer_)
    fail(RWKVRT_ERR_UNSUPPORTED, "this model has no tokenizer; prompt with token ids instead");
  if (text.empty()) fail(RWKVRT_ERR_INVALID_ARGUMENT, "the prompt is empty");
  const std::vector<int32_t> ids = tokenizer_->encode(text);
  if (ids.empty()) fail(RWKVRT_ERR_INVALID_ARGUMENT, "the prompt encodes to no tokens");
  prompt(ids.data(), ids.size());
}

void Generator::import_state(const float* src) {
  if (active_) fail(RWKVRT_ERR_INVALID_ARGUMENT, "cannot import a state during a generation");
  session_->import_state(src);
  has_logits_ = false;
  forget_history();
}

void Generator::load_state(const void* blob, size_t size) {
  if (active_) fail(RWKVRT_ERR_INVALID_ARGUMENT, "cannot load a state during a generation");
  session_->load_state(blob, size);  // validates completely before changing anything
  has_logits_ = false;
  forget_history();
}

void Generator::set_initial_state(std::vector<float> state) {
  if (active_) fail(RWKVRT_ERR_INVALID_ARGUMENT, "cannot change a session during a generation");
  session_->set_initial_state(std::move(state));
  reset();
}

void Generator::set_prefix_cache(std::shared_ptr<PrefixCache> cache) {
  if (cache && cache->model() != model_)
    fail(RWKVRT_ERR_INVALID_ARGUMENT, "the prefix cache belongs to another model");
  cache_ = std::move(cache);
}

void Generator::set_sampling(const SamplingParams& params) {
  if (active_) fail(RWKVRT_ERR_INVALID_ARGUMENT, "cannot change sampling during a generation");
  sampler_ = Sampler(params, sampling_vocab(*model_, tokenizer_.get()), tokenizer_.get());
}

void Generator::begin(GenerateOptions options) {
  if (active_) fail(RWKVRT_ERR_INVALID_ARGUMENT, "a generation is already in progress");
  if (!has_logits_)
    fail(RWKVRT_ERR_INVALID_ARGUMENT,
         "nothing to generate from: prompt the session (or feed a token with logits) first");
  if (!options.stop.empty() && !tokenizer_)
    fail(RWKVRT_ERR_UNSUPPORTED, "stop strings need a tokenizer, and this model has none");
  assembler_ = TextAssembler(options.stop);  // validates the stop strings
  options_ = std::move(options);
  n_generated_ = 0;
  cancel_.store(false, std::memory_order_relaxed);
  active_ = true;
}

void Generator::require_active() const {
  if (!active_)
    fail(RWKVRT_ERR_INVALID_ARGUMENT,
         "no generation in progress on this session (begin one first; a finished one ends it)");
}

void Generator::end_generation(GeneratedPiece& piece, FinishReason reason, std::string text) {
  piece.finish = reason;
  piece.text += text;
  active_ = false;
  cancel_.store(false, std::memory_order_relaxed);
}

bool Generator::sample_step(GeneratedPiece& piece, int32_t& token) {
  require_active();
  piece = GeneratedPiece{};
  piece.n_generated = n_generated_;
  if (cancel_.load(std::memory_order_relaxed)) {
    end_generation(piece, FinishReason::Cancelled, assembler_.finish());
    return false;
  }
  scratch_ = logits_;
  token = sampler_.sample(scratch_.data(), scratch_.size());
  sampler_.accept(token);
  piece.token = token;
  piece.n_generated = ++n_generated_;
  return true;
}

void Generator::finish_step(int32_t token, GeneratedPiece& piece) {
  if (history_known_) history_.push_back(token);
  has_logits_ = true;
  if (tokenizer_ && options_.stop_at_eos && token == tokenizer_->eos_id()) {
    end_generation(piece, FinishReason::Eos, assembler_.finish());
    return;
  }
  if (tokenizer_) {
    TextAssembler::Piece p = assembler_.push(tokenizer_->token_bytes(token));
    piece.text = std::move(p.text);
    if (p.stopped) {
      end_generation(piece, FinishReason::Stop, {});
      return;
    }
  }
  if (options_.max_tokens > 0 && n_generated_ >= options_.max_tokens)
    end_generation(piece, FinishReason::Length, assembler_.finish());
}

GeneratedPiece Generator::next() {
  GeneratedPiece piece;
  int32_t token = -1;
  if (!sample_step(piece, token)) return piece;
  logits_.resize(model_->config().n_vocab);
  try {
    session_->feed(&token, 1, LogitsMode::Last, logits_.data());
  } catch (...) {
    // The state is undefined after a backend failure; the generation cannot go on.
    active_ = false;
    has_logits_ = false;
    throw;
  }
  finish_step(token, piece);
  return piece;
}

void Generator::next_batch(BatchDecoder& decoder, Generator* const* generators, size_t n,
                           GeneratedPiece* pieces) {
  for (size_t i = 0; i < n; ++i) {
    if (!generators[i]) fail(RWKVRT_ERR_INVALID_ARGUMENT, "session {} of the batch is null", i);
    generators[i]->require_active();
    for (size_t j = 0; j < i; ++j)
      if (generators[j] == generators[i])
        fail(RWKVRT_ERR_INVALID_ARGUMENT, "session {} appears twice in the batch", i);
  }
  std::vector<Session*> sessions;
  std::vector<int32_t> tokens;
  std::vector<size_t> which;
  for (size_t i = 0; i < n; ++i) {
    int32_t token = -1;
    if (generators[i]->sample_step(pieces[i], token)) {
      sessions.push_back(&generators[i]->session());
      tokens.push_back(token);
      which.push_back(i);
    }
  }
  if (sessions.empty()) return;
  const size_t V = generators[which[0]]->model_->config().n_vocab;
  const float* logits = nullptr;  // the decoder's rows, valid until its next step
  try {
    logits = decoder.step_logits(sessions.data(), tokens.data(), sessions.size());
  } catch (...) {
    for (size_t k : which) {
      generators[k]->active_ = false;
      generators[k]->has_logits_ = false;
    }
    throw;
  }
  for (size_t r = 0; r < which.size(); ++r) {
    Generator& g = *generators[which[r]];
    g.logits_.assign(logits + r * V, logits + (r + 1) * V);
    g.finish_step(tokens[r], pieces[which[r]]);
  }
}

std::unique_ptr<Generator> Generator::fork() {
  if (active_) fail(RWKVRT_ERR_INVALID_ARGUMENT, "cannot fork a session during a generation");
  auto copy = std::make_unique<Generator>(model_, tokenizer_);
  copy->session_->set_initial_state_override(session_->initial_state_override());
  std::vector<float> state(model_->state_floats());
  session_->export_state(state.data());
  copy->session_->import_state(state.data());
  copy->logits_ = logits_;
  copy->has_logits_ = has_logits_;
  copy->sampler_ = sampler_;
  copy->history_ = history_;
  copy->history_known_ = history_known_;
  copy->cache_ = cache_;
  return copy;
}

}  // namespace rwkvrt
