/*
 * rwkvrt.hpp — a header-only C++17 wrapper over the C ABI of rwkvrt.h, for C++ applications.
 *
 *   rwkvrt::Model model = rwkvrt::Model::load("model.pth", rwkvrt::ModelParams().threads(4));
 *   rwkvrt::Session session(model);
 *   session.set_sampling(rwkvrt::SamplingParams::greedy());
 *   session.prompt("In the beginning");
 *   rwkvrt::GenerateParams params;
 *   params.max_tokens = 64;
 *   params.stop = {"\n\n"};
 *   session.generate(params, [](const rwkvrt::Piece& piece) { std::cout << piece.text; });
 *
 * Errors.  Every failing C call becomes an rwkvrt::Error carrying the status and the library's
 * message.  No exception ever crosses into the library: a callback that throws (progress, piece)
 * makes the wrapper stop the C call (cancel), and the exception is rethrown once the C call has
 * returned.
 *
 * Ownership.  Model, Tokenizer and PrefixCache are reference-counted handles: copies share one
 * library object, which is freed with the last copy.  Session and Batch are move-only and own
 * their library object.  Every object that depends on another keeps it alive: a Session keeps its
 * Model (and an attached PrefixCache), a Batch and a PrefixCache keep their Model, and the
 * Tokenizer obtained from a model keeps that model.  So the destruction order the C ABI demands
 * (sessions before their cache and model) holds whatever order the C++ objects die in.
 *
 * Thread-safety (that of the C ABI).  Model, Tokenizer and PrefixCache are safe to use from any
 * number of threads (copying or destroying handles included).  A Session or a Batch must be used by
 * one thread at a time, except Session::cancel(), which any thread may call while another thread
 * generates (the Session object itself must not be moved or destroyed meanwhile).
 *
 * The types live in the inline namespace rwkvrt::v1, so programs name them rwkvrt::Session; code
 * that also sees other types called rwkvrt::Session can name these ones rwkvrt::v1::Session.
 */
#ifndef RWKVRT_RWKVRT_HPP_
#define RWKVRT_RWKVRT_HPP_

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "rwkvrt/rwkvrt.h"

namespace rwkvrt {
inline namespace v1 {

// ---- errors -----------------------------------------------------------------------------------

// A failed rwkvrt call: status() is the C status, what() the library's message.
class Error : public std::runtime_error {
 public:
  Error(rwkvrt_status status, const std::string& message)
      : std::runtime_error(message), status_(status) {}
  rwkvrt_status status() const noexcept { return status_; }
  // "RWKVRT_ERR_IO", ...
  const char* status_name() const noexcept { return rwkvrt_status_name(status_); }

 private:
  rwkvrt_status status_;
};

namespace detail {

// Throws Error(status, the thread's last message) unless status is RWKVRT_OK.
inline void check(rwkvrt_status status) {
  if (status == RWKVRT_OK) return;
  const char* message = rwkvrt_last_error();
  throw Error(status, message && *message ? message : rwkvrt_status_name(status));
}

// Holds the first exception a callback threw while the library was calling it, so that it can be
// rethrown on the C++ side once the C call has returned.
class CallbackGuard {
 public:
  // Runs f; returns false (and keeps the exception) if it throws.
  template <typename F>
  bool run(F&& f) noexcept {
    if (exception_) return false;
    try {
      return std::forward<F>(f)();
    } catch (...) {
      exception_ = std::current_exception();
      return false;
    }
  }
  bool failed() const noexcept { return exception_ != nullptr; }
  void rethrow_if_failed() {
    if (exception_) std::rethrow_exception(std::exchange(exception_, nullptr));
  }

 private:
  std::exception_ptr exception_;
};

}  // namespace detail

// ---- library-wide -----------------------------------------------------------------------------

inline std::string version() {
  return rwkvrt_version_string();
}

// Every backend plugin found (usable or not).  The strings stay valid until process exit.
inline std::vector<rwkvrt_backend_info> backends() {
  size_t count = 0;
  detail::check(rwkvrt_backend_count(&count));
  std::vector<rwkvrt_backend_info> out(count);
  for (size_t i = 0; i < count; ++i) {
    out[i].struct_size = sizeof(rwkvrt_backend_info);
    detail::check(rwkvrt_backend_get_info(i, &out[i]));
  }
  return out;
}

// ---- tokenizers -------------------------------------------------------------------------------

struct TokenizerInfo {
  std::string kind;     // "world", "bpe" or "byte"
  uint32_t vocab_size;  // one more than the largest id
  int32_t eos_id;       // end-of-text id, -1 if none
};

// A tokenizer: either owned (load(), byte_level()) or the one a model carries (Model::tokenizer(),
// which keeps the model alive).  Immutable; copies share it; thread-safe.
class Tokenizer {
 public:
  // Loads a World vocabulary (.txt) or a Hugging Face tokenizer.json.
  static Tokenizer load(const std::string& path) {
    rwkvrt_tokenizer* raw = nullptr;
    detail::check(rwkvrt_tokenizer_load(path.c_str(), &raw));
    return Tokenizer(std::shared_ptr<const rwkvrt_tokenizer>(raw, rwkvrt_tokenizer_free));
  }
  // One token per byte (256 ids).
  static Tokenizer byte_level() {
    rwkvrt_tokenizer* raw = nullptr;
    detail::check(rwkvrt_tokenizer_create_byte(&raw));
    return Tokenizer(std::shared_ptr<const rwkvrt_tokenizer>(raw, rwkvrt_tokenizer_free));
  }
  // Wraps a tokenizer `owner` keeps alive (for Model::tokenizer; also usable with other owners).
  explicit Tokenizer(std::shared_ptr<const rwkvrt_tokenizer> handle) : handle_(std::move(handle)) {}

  TokenizerInfo info() const {
    rwkvrt_tokenizer_info raw{};
    raw.struct_size = sizeof(raw);
    detail::check(rwkvrt_tokenizer_get_info(handle_.get(), &raw));
    return TokenizerInfo{raw.kind ? raw.kind : "", raw.vocab_size, raw.eos_id};
  }

  // BPE tokenizers require valid UTF-8 (Error INVALID_ARGUMENT otherwise).
  std::vector<int32_t> encode(std::string_view text) const {
    // Every token of every kind covers at least one byte, so text.size() ids always suffice; the
    // retry only guards against a tokenizer that breaks that rule.
    std::vector<int32_t> ids(text.size());
    size_t count = 0;
    rwkvrt_status status = rwkvrt_tokenizer_encode(handle_.get(), text.data(), text.size(),
                                                   ids.data(), ids.size(), &count);
    if (status == RWKVRT_ERR_BUFFER_TOO_SMALL) {
      ids.resize(count);
      status = rwkvrt_tokenizer_encode(handle_.get(), text.data(), text.size(), ids.data(),
                                       ids.size(), &count);
    }
    detail::check(status);
    ids.resize(count);
    return ids;
  }

  // The bytes of the ids; they may end inside a UTF-8 character (they are not validated).
  std::string decode(const int32_t* ids, size_t n_ids) const {
    std::string bytes(n_ids * 4 + 16, '\0');
    size_t size = 0;
    rwkvrt_status status =
        rwkvrt_tokenizer_decode(handle_.get(), ids, n_ids, bytes.data(), bytes.size(), &size);
    if (status == RWKVRT_ERR_BUFFER_TOO_SMALL) {
      bytes.resize(size);
      status =
          rwkvrt_tokenizer_decode(handle_.get(), ids, n_ids, bytes.data(), bytes.size(), &size);
    }
    detail::check(status);
    bytes.resize(size);
    return bytes;
  }
  std::string decode(const std::vector<int32_t>& ids) const {
    return decode(ids.data(), ids.size());
  }

  const rwkvrt_tokenizer* get() const noexcept { return handle_.get(); }

 private:
  std::shared_ptr<const rwkvrt_tokenizer> handle_;
};

// ---- models -----------------------------------------------------------------------------------

// Options of Model::load, as a builder: ModelParams().backend("cpu").threads(4).
class ModelParams {
 public:
  // Receives the load's progress: fraction in [0,1] and a stage name.  Return false to cancel
  // (the load then fails with Error CANCELLED).  Called on the loading thread; may throw (the
  // load is cancelled and the exception propagates out of Model::load).
  using ProgressFn = std::function<bool(float fraction, std::string_view stage)>;

  ModelParams& backend(std::string name) {
    backend_ = std::move(name);
    return *this;
  }
  ModelParams& device(int32_t index) {
    device_ = index;
    return *this;
  }
  ModelParams& threads(int32_t n) {
    threads_ = n;
    return *this;
  }
  ModelParams& weights(rwkvrt_weight_type type) {
    weights_ = type;
    return *this;
  }
  ModelParams& matmul_precision(rwkvrt_matmul_precision precision) {
    matmul_precision_ = precision;
    return *this;
  }
  ModelParams& group_norm_eps(float eps) {
    group_norm_eps_ = eps;
    return *this;
  }
  ModelParams& tokenizer_path(std::string path) {
    tokenizer_path_ = std::move(path);
    return *this;
  }
  ModelParams& progress(ProgressFn fn) {
    progress_ = std::move(fn);
    return *this;
  }

 private:
  friend class Model;
  // Unset fields keep the library's defaults (rwkvrt_model_params_default).
  std::optional<std::string> backend_;
  std::optional<int32_t> device_;
  std::optional<int32_t> threads_;
  std::optional<rwkvrt_weight_type> weights_;
  std::optional<float> group_norm_eps_;
  std::optional<rwkvrt_matmul_precision> matmul_precision_;
  std::optional<std::string> tokenizer_path_;
  ProgressFn progress_;
};

// A loaded model.  Copies share it (it is immutable); thread-safe.  An empty (moved-from) Model
// makes every call fail with INVALID_ARGUMENT.
class Model {
 public:
  static Model load(const std::string& path, const ModelParams& params = ModelParams()) {
    rwkvrt_model_params c = rwkvrt_model_params_default();
    if (params.backend_) c.backend = params.backend_->c_str();
    if (params.device_) c.device = *params.device_;
    if (params.threads_) c.n_threads = *params.threads_;
    if (params.weights_) c.weights = *params.weights_;
    if (params.group_norm_eps_) c.group_norm_eps = *params.group_norm_eps_;
    if (params.matmul_precision_) c.matmul_precision = *params.matmul_precision_;
    if (params.tokenizer_path_) c.tokenizer_path = params.tokenizer_path_->c_str();
    struct ProgressContext {
      const ModelParams::ProgressFn* fn;
      detail::CallbackGuard guard;
    } context{&params.progress_, {}};
    if (params.progress_) {
      c.progress = [](void* user_data, float fraction, const char* stage) -> int {
        auto* ctx = static_cast<ProgressContext*>(user_data);
        const bool go_on = ctx->guard.run([&] { return (*ctx->fn)(fraction, stage ? stage : ""); });
        return go_on ? 0 : 1;
      };
      c.progress_user_data = &context;
    }
    rwkvrt_model* raw = nullptr;
    const rwkvrt_status status = rwkvrt_model_load(path.c_str(), &c, &raw);
    context.guard.rethrow_if_failed();
    detail::check(status);
    return Model(std::shared_ptr<rwkvrt_model>(raw, rwkvrt_model_free));
  }

  Model() = default;
  // Adopts a handle; `handle`'s deleter must free it (rwkvrt_model_free).
  explicit Model(std::shared_ptr<rwkvrt_model> handle) : handle_(std::move(handle)) {}

  // The model's description; its strings stay valid while any copy of this Model lives.
  rwkvrt_model_info info() const {
    rwkvrt_model_info out{};
    out.struct_size = sizeof(out);
    detail::check(rwkvrt_model_get_info(handle_.get(), &out));
    return out;
  }

  // The model's tokenizer (Error UNSUPPORTED if none was found); it keeps this model alive.
  Tokenizer tokenizer() const {
    const rwkvrt_tokenizer* raw = nullptr;
    detail::check(rwkvrt_model_get_tokenizer(handle_.get(), &raw));
    return Tokenizer(std::shared_ptr<const rwkvrt_tokenizer>(handle_, raw));
  }

  rwkvrt_model* get() const noexcept { return handle_.get(); }
  const std::shared_ptr<rwkvrt_model>& handle() const noexcept { return handle_; }
  explicit operator bool() const noexcept { return handle_ != nullptr; }

 private:
  std::shared_ptr<rwkvrt_model> handle_;
};

// ---- sampling and generation parameters -------------------------------------------------------

struct LogitBias {
  int32_t token;
  float bias;  // added to the token's logit
};

// The sampler of a session (see rwkvrt_sampling_params for each field's meaning and range).
// A default-constructed SamplingParams holds the library's defaults.
struct SamplingParams {
  rwkvrt_sampling_mode mode;
  float temperature;  // 0 = greedy
  int32_t top_k;
  float top_p;
  float min_p;
  float repetition_penalty;
  float presence_penalty;
  float frequency_penalty;
  float penalty_decay;
  int32_t penalty_last_n;
  uint64_t seed;
  std::vector<int32_t> banned;  // ids never sampled
  std::vector<LogitBias> logit_bias;

  SamplingParams() {
    const rwkvrt_sampling_params d = rwkvrt_sampling_params_default();
    mode = d.mode;
    temperature = d.temperature;
    top_k = d.top_k;
    top_p = d.top_p;
    min_p = d.min_p;
    repetition_penalty = d.repetition_penalty;
    presence_penalty = d.presence_penalty;
    frequency_penalty = d.frequency_penalty;
    penalty_decay = d.penalty_decay;
    penalty_last_n = d.penalty_last_n;
    seed = d.seed;
  }
  // Always the most likely token.
  static SamplingParams greedy() {
    SamplingParams p;
    p.temperature = 0.0f;
    return p;
  }
};

// Limits of one generation.  A default-constructed GenerateParams holds the library's defaults.
struct GenerateParams {
  uint32_t max_tokens;            // 0 = no limit
  std::vector<std::string> stop;  // the text is cut before the first occurrence of any
  bool stop_at_eos;               // the tokenizer's end-of-text id ends the generation

  GenerateParams() {
    const rwkvrt_generate_params d = rwkvrt_generate_params_default();
    max_tokens = d.max_tokens;
    stop_at_eos = d.stop_at_eos != 0;
  }
};

// One step of a generation (a copy of rwkvrt_generate_piece; it stays valid).
struct Piece {
  std::string text;    // valid UTF-8; may be empty while bytes are held back
  int32_t token = -1;  // the token sampled in this step, -1 if none
  rwkvrt_finish_reason finish = RWKVRT_FINISH_NONE;
  uint32_t n_generated = 0;  // tokens sampled so far in this generation

  bool finished() const noexcept { return finish != RWKVRT_FINISH_NONE; }

  static Piece from(const rwkvrt_generate_piece& c) {
    Piece p;
    if (c.text_len > 0) p.text.assign(c.text, c.text_len);
    p.token = c.token;
    p.finish = c.finish;
    p.n_generated = c.n_generated;
    return p;
  }
};

// What a whole generation produced.
struct Generated {
  std::string text;
  rwkvrt_finish_reason finish = RWKVRT_FINISH_NONE;
  uint32_t n_generated = 0;
};

namespace detail {

// Keeps the strings of a GenerateParams alive for the C struct that points into them.
class CGenerateParams {
 public:
  explicit CGenerateParams(const GenerateParams& p) : c_(rwkvrt_generate_params_default()) {
    c_.max_tokens = p.max_tokens;
    c_.stop_at_eos = p.stop_at_eos ? 1u : 0u;
    pointers_.reserve(p.stop.size());
    for (const std::string& s : p.stop) pointers_.push_back(s.c_str());
    c_.stop = pointers_.empty() ? nullptr : pointers_.data();
    c_.n_stop = pointers_.size();
  }
  CGenerateParams(const CGenerateParams&) = delete;
  CGenerateParams& operator=(const CGenerateParams&) = delete;
  const rwkvrt_generate_params* get() const noexcept { return &c_; }

 private:
  rwkvrt_generate_params c_;
  std::vector<const char*> pointers_;
};

}  // namespace detail

// ---- prefix cache -----------------------------------------------------------------------------

// States after prompts, shared by sessions of one model (see rwkvrt_prefix_cache).  Copies share
// one cache; thread-safe.  It keeps its model alive; attached sessions keep it alive.
class PrefixCache {
 public:
  PrefixCache(const Model& model, uint64_t max_bytes) {
    rwkvrt_prefix_cache* raw = nullptr;
    detail::check(rwkvrt_prefix_cache_create(model.get(), max_bytes, &raw));
    handle_ = std::shared_ptr<rwkvrt_prefix_cache>(
        raw,
        [keep_model = model.handle()](rwkvrt_prefix_cache* c) { rwkvrt_prefix_cache_free(c); });
  }
  rwkvrt_prefix_cache* get() const noexcept { return handle_.get(); }
  const std::shared_ptr<rwkvrt_prefix_cache>& handle() const noexcept { return handle_; }

 private:
  std::shared_ptr<rwkvrt_prefix_cache> handle_;
};

// ---- sessions ---------------------------------------------------------------------------------

class Session;

// A generation in pull mode, as a range: `for (const Piece& p : session.pieces(params))`.  The
// last piece yielded is the finished one.  Iterating drives the session; do not use the session
// otherwise until the range is exhausted.
class PieceRange {
 public:
  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = Piece;
    using difference_type = std::ptrdiff_t;
    using pointer = const Piece*;
    using reference = const Piece&;

    iterator() = default;
    reference operator*() const { return range_->current_; }
    pointer operator->() const { return &range_->current_; }
    iterator& operator++() {
      range_->advance();
      if (range_->done_) range_ = nullptr;
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& a, const iterator& b) { return a.range_ == b.range_; }
    friend bool operator!=(const iterator& a, const iterator& b) { return a.range_ != b.range_; }

   private:
    friend class PieceRange;
    explicit iterator(PieceRange* range) : range_(range) {}
    PieceRange* range_ = nullptr;
  };

  iterator begin() {
    if (!started_) {
      started_ = true;
      advance();
    }
    return done_ ? iterator() : iterator(this);
  }
  iterator end() { return iterator(); }

 private:
  friend class Session;
  explicit PieceRange(Session& session) : session_(&session) {}
  inline void advance();

  Session* session_;
  Piece current_;
  bool started_ = false;
  bool done_ = false;       // past the last piece
  bool had_final_ = false;  // current_ is the finished piece
};

// A recurrent state plus its sampler: feeding, prompting and generating.  Move-only; one thread
// at a time (cancel() excepted).  It keeps its Model alive.
class Session {
 public:
  explicit Session(const Model& model) : model_(model), n_vocab_(model.info().n_vocab) {
    detail::check(rwkvrt_session_create(model.get(), &raw_));
  }
  ~Session() { rwkvrt_session_free(raw_); }
  Session(Session&& other) noexcept
      : model_(std::move(other.model_)),
        cache_(std::move(other.cache_)),
        n_vocab_(other.n_vocab_),
        raw_(std::exchange(other.raw_, nullptr)) {}
  Session& operator=(Session&& other) noexcept {
    if (this != &other) {
      rwkvrt_session_free(raw_);  // before the model and cache it may hold are released
      raw_ = std::exchange(other.raw_, nullptr);
      model_ = std::move(other.model_);
      cache_ = std::move(other.cache_);
      n_vocab_ = other.n_vocab_;
    }
    return *this;
  }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  const Model& model() const noexcept { return model_; }
  rwkvrt_session* get() const noexcept { return raw_; }
  size_t n_vocab() const noexcept { return n_vocab_; }

  // ---- state ----
  // Back to the model's initial state (zeros, the checkpoint's time_state, or a tuned state).
  void reset() { detail::check(rwkvrt_session_reset(raw_)); }
  // The self-describing state blob (rwkvrt_session_save_state).
  std::vector<uint8_t> save_state() {
    size_t size = 0;
    detail::check(rwkvrt_session_save_state(raw_, nullptr, 0, &size));
    std::vector<uint8_t> blob(size);
    detail::check(rwkvrt_session_save_state(raw_, blob.data(), blob.size(), &size));
    blob.resize(size);
    return blob;
  }
  void load_state(const void* blob, size_t size) {
    detail::check(rwkvrt_session_load_state(raw_, blob, size));
  }
  void load_state(const std::vector<uint8_t>& blob) { load_state(blob.data(), blob.size()); }
  // The canonical fp32 state (layout: rwkvrt_model_state_tensor_info).
  std::vector<float> export_state() {
    std::vector<float> state(size_t(model_.info().state_floats));
    detail::check(rwkvrt_session_export_state(raw_, state.data(), state.size()));
    return state;
  }
  void import_state(const std::vector<float>& state) {
    detail::check(rwkvrt_session_import_state(raw_, state.data(), state.size()));
  }
  // Makes a state-tuning file the initial state (and resets to it).
  void load_initial_state(const std::string& path) {
    detail::check(rwkvrt_session_load_initial_state(raw_, path.c_str()));
  }
  // A new session with a copy of this one's state, logits and sampler.  Not during a generation.
  Session fork() {
    rwkvrt_session* copy = nullptr;
    detail::check(rwkvrt_session_fork(raw_, &copy));
    // The fork may inherit the attachment to the cache, so it keeps the cache alive too.
    return Session(model_, cache_, copy, n_vocab_);
  }

  // ---- feeding ----
  // Feeds tokens in sequence mode; returns the logits `mode` asks for (none, n_vocab, or
  // n_tokens x n_vocab row-major).
  std::vector<float> feed(const int32_t* tokens, size_t n_tokens,
                          rwkvrt_logits_mode mode = RWKVRT_LOGITS_LAST) {
    const size_t rows = mode == RWKVRT_LOGITS_ALL ? n_tokens : mode == RWKVRT_LOGITS_LAST ? 1 : 0;
    std::vector<float> logits(rows * n_vocab_);
    detail::check(rwkvrt_session_feed(raw_, tokens, n_tokens, mode,
                                      logits.empty() ? nullptr : logits.data(), logits.size()));
    return logits;
  }
  std::vector<float> feed(const std::vector<int32_t>& tokens,
                          rwkvrt_logits_mode mode = RWKVRT_LOGITS_LAST) {
    return feed(tokens.data(), tokens.size(), mode);
  }
  // Feeds one token (RNN mode) and returns the n_vocab logits after it.
  std::vector<float> step(int32_t token) {
    std::vector<float> logits(n_vocab_);
    detail::check(rwkvrt_session_step(raw_, token, logits.data(), logits.size()));
    return logits;
  }

  // ---- prompts and generation ----
  void set_sampling(const SamplingParams& p) {
    rwkvrt_sampling_params c = rwkvrt_sampling_params_default();
    c.mode = p.mode;
    c.temperature = p.temperature;
    c.top_k = p.top_k;
    c.top_p = p.top_p;
    c.min_p = p.min_p;
    c.repetition_penalty = p.repetition_penalty;
    c.presence_penalty = p.presence_penalty;
    c.frequency_penalty = p.frequency_penalty;
    c.penalty_decay = p.penalty_decay;
    c.penalty_last_n = p.penalty_last_n;
    c.seed = p.seed;
    c.banned = p.banned.empty() ? nullptr : p.banned.data();
    c.n_banned = p.banned.size();
    std::vector<int32_t> bias_ids;
    std::vector<float> bias_values;
    for (const LogitBias& b : p.logit_bias) {
      bias_ids.push_back(b.token);
      bias_values.push_back(b.bias);
    }
    c.logit_bias_ids = bias_ids.empty() ? nullptr : bias_ids.data();
    c.logit_bias_values = bias_values.empty() ? nullptr : bias_values.data();
    c.n_logit_bias = bias_ids.size();
    detail::check(rwkvrt_session_set_sampling(raw_, &c));
  }
  // Encodes and feeds text, keeping the logits of its last token for the next generation.
  void prompt(std::string_view text) {
    detail::check(rwkvrt_session_prompt(raw_, text.data(), text.size()));
  }
  void prompt(const std::vector<int32_t>& tokens) {
    detail::check(rwkvrt_session_prompt_tokens(raw_, tokens.data(), tokens.size()));
  }
  // Tokens of the last prompt reused from an attached prefix cache.
  size_t prefix_cache_hit() const {
    size_t n = 0;
    detail::check(rwkvrt_session_prefix_cache_hit(raw_, &n));
    return n;
  }
  void set_prefix_cache(const PrefixCache& cache) {
    detail::check(rwkvrt_session_set_prefix_cache(raw_, cache.get()));
    cache_ = cache.handle();
  }
  void detach_prefix_cache() {
    detail::check(rwkvrt_session_set_prefix_cache(raw_, nullptr));
    cache_.reset();
  }

  // Runs a whole generation, calling on_piece(const Piece&) for every piece, the finished one
  // included.  on_piece may return void, or bool (false stops: finish CANCELLED).  If on_piece
  // throws, the generation is cancelled and the exception propagates from here.
  template <typename OnPiece>
  Generated generate(const GenerateParams& params, OnPiece&& on_piece) {
    struct Context {
      std::remove_reference_t<OnPiece>* fn;
      detail::CallbackGuard guard;
      Generated result;
    } context{&on_piece, {}, {}};
    const detail::CGenerateParams c(params);
    rwkvrt_finish_reason finish = RWKVRT_FINISH_NONE;
    const rwkvrt_status status = rwkvrt_session_generate(
        raw_, c.get(),
        [](void* user_data, const rwkvrt_generate_piece* raw) -> int {
          auto* ctx = static_cast<Context*>(user_data);
          if (ctx->guard.failed()) return 1;
          const Piece piece = Piece::from(*raw);
          ctx->result.text += piece.text;
          ctx->result.n_generated = piece.n_generated;
          const bool go_on = ctx->guard.run([&] {
            if constexpr (std::is_void_v<std::invoke_result_t<OnPiece&, const Piece&>>) {
              (*ctx->fn)(piece);
              return true;
            } else {
              return static_cast<bool>((*ctx->fn)(piece));
            }
          });
          return go_on ? 0 : 1;
        },
        &context, &finish);
    context.guard.rethrow_if_failed();
    detail::check(status);
    context.result.finish = finish;
    return std::move(context.result);
  }
  // A whole generation, collected.
  Generated generate(const GenerateParams& params = GenerateParams()) {
    return generate(params, [](const Piece&) {});
  }

  // Pull mode: generate_begin, then generate_next until a piece is finished().
  void generate_begin(const GenerateParams& params = GenerateParams()) {
    const detail::CGenerateParams c(params);
    detail::check(rwkvrt_session_generate_begin(raw_, c.get()));
  }
  Piece generate_next() {
    rwkvrt_generate_piece raw{};
    detail::check(rwkvrt_session_generate_next(raw_, &raw));
    return Piece::from(raw);
  }
  // Pull mode as a range (begins the generation now).
  PieceRange pieces(const GenerateParams& params = GenerateParams()) {
    generate_begin(params);
    return PieceRange(*this);
  }

  // Stops the generation in progress (or the next one) before its next token.  Any thread.
  void cancel() { detail::check(rwkvrt_session_cancel(raw_)); }

 private:
  Session(Model model, std::shared_ptr<rwkvrt_prefix_cache> cache, rwkvrt_session* adopt,
          size_t n_vocab) noexcept
      : model_(std::move(model)), cache_(std::move(cache)), n_vocab_(n_vocab), raw_(adopt) {}

  // The destructor frees raw_ before these two are released (the C ABI's order).
  Model model_;
  std::shared_ptr<rwkvrt_prefix_cache> cache_;
  size_t n_vocab_ = 0;
  rwkvrt_session* raw_ = nullptr;
};

inline void PieceRange::advance() {
  if (had_final_) {
    done_ = true;
    return;
  }
  current_ = session_->generate_next();
  had_final_ = current_.finished();
}

// ---- batches ----------------------------------------------------------------------------------

// Batched decode over sessions of one model (see rwkvrt_batch).  Move-only; one thread at a time,
// and the sessions of a call must not be used elsewhere during it.  It keeps its model alive.
class Batch {
 public:
  Batch(const Model& model, size_t max_batch) : model_(model), n_vocab_(model.info().n_vocab) {
    detail::check(rwkvrt_batch_create(model.get(), max_batch, &raw_));
  }
  ~Batch() { rwkvrt_batch_free(raw_); }
  Batch(Batch&& other) noexcept
      : model_(std::move(other.model_)),
        n_vocab_(other.n_vocab_),
        raw_(std::exchange(other.raw_, nullptr)) {}
  Batch& operator=(Batch&& other) noexcept {
    if (this != &other) {
      rwkvrt_batch_free(raw_);
      raw_ = std::exchange(other.raw_, nullptr);
      model_ = std::move(other.model_);
      n_vocab_ = other.n_vocab_;
    }
    return *this;
  }
  Batch(const Batch&) = delete;
  Batch& operator=(const Batch&) = delete;

  // Feeds tokens[i] to *sessions[i]; returns their logits as rows (sessions.size() x n_vocab).
  std::vector<float> step(const std::vector<Session*>& sessions,
                          const std::vector<int32_t>& tokens) {
    if (tokens.size() != sessions.size())
      throw Error(RWKVRT_ERR_INVALID_ARGUMENT, "Batch::step: " + std::to_string(sessions.size()) +
                                                   " sessions but " +
                                                   std::to_string(tokens.size()) + " tokens");
    const std::vector<rwkvrt_session*> raw = raw_sessions(sessions);
    std::vector<float> logits(raw.size() * n_vocab_);
    detail::check(rwkvrt_batch_step(raw_, raw.data(), tokens.data(), raw.size(), logits.data(),
                                    logits.size()));
    return logits;
  }

  // One generation step for each session (each began its generation with generate_begin).
  // Sessions whose piece is finished() are done: leave them out of the next call.
  std::vector<Piece> generate_next(const std::vector<Session*>& sessions) {
    const std::vector<rwkvrt_session*> raw = raw_sessions(sessions);
    std::vector<rwkvrt_generate_piece> pieces(raw.size());
    detail::check(rwkvrt_batch_generate_next(raw_, raw.data(), raw.size(), pieces.data()));
    std::vector<Piece> out;
    out.reserve(pieces.size());
    for (const rwkvrt_generate_piece& p : pieces) out.push_back(Piece::from(p));
    return out;
  }

  rwkvrt_batch* get() const noexcept { return raw_; }

 private:
  static std::vector<rwkvrt_session*> raw_sessions(const std::vector<Session*>& sessions) {
    std::vector<rwkvrt_session*> raw(sessions.size());
    for (size_t i = 0; i < sessions.size(); ++i)
      raw[i] = sessions[i] ? sessions[i]->get() : nullptr;
    return raw;
  }

  Model model_;  // released after the destructor freed the batch
  size_t n_vocab_ = 0;
  rwkvrt_batch* raw_ = nullptr;
};

}  // namespace v1
}  // namespace rwkvrt

#endif  // RWKVRT_RWKVRT_HPP_
