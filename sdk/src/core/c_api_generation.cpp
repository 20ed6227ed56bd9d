// The C ABI of text: tokenizers, sampling, prompts, streaming generation, fork, state-tuning
// files, the prefix cache and batches (rwkvrt.h).  Same rules as c_api.cpp: every entry point
// catches everything and reports a status plus the thread's message.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/c_api_support.h"
#include "loaders/checkpoint_readers.h"

using namespace rwkvrt::capi;

namespace {

const rwkvrt::Tokenizer& tokenizer_of(const rwkvrt_tokenizer* t) {
  require(t, "tokenizer");
  return *t->tokenizer;
}

rwkvrt::SamplingParams to_sampling(const rwkvrt_sampling_params& p) {
  rwkvrt::SamplingParams s;
  switch (c_enum_value(p.mode)) {
    case RWKVRT_SAMPLING_STANDARD:
      s.mode = rwkvrt::SamplingParams::Mode::Standard;
      break;
    case RWKVRT_SAMPLING_REFERENCE_PIPELINE:
      s.mode = rwkvrt::SamplingParams::Mode::ReferencePipeline;
      break;
    default:
      rwkvrt::fail(RWKVRT_ERR_INVALID_ARGUMENT, "sampling mode {} is not a mode",
                   c_enum_value(p.mode));
  }
  s.temperature = p.temperature;
  s.top_k = p.top_k;
  s.top_p = p.top_p;
  s.min_p = p.min_p;
  s.repetition_penalty = p.repetition_penalty;
  s.presence_penalty = p.presence_penalty;
  s.frequency_penalty = p.frequency_penalty;
  s.penalty_decay = p.penalty_decay;
  s.penalty_last_n = p.penalty_last_n;
  s.seed = p.seed;
  s.greedy = p.temperature == 0.0f;
  if (p.n_banned > 0) {
    require(p.banned, "params.banned");
    s.banned.assign(p.banned, p.banned + p.n_banned);
  }
  if (p.n_logit_bias > 0) {
    require(p.logit_bias_ids, "params.logit_bias_ids");
    require(p.logit_bias_values, "params.logit_bias_values");
    for (size_t i = 0; i < p.n_logit_bias; ++i) {
      if (!std::isfinite(p.logit_bias_values[i]))
        rwkvrt::fail(RWKVRT_ERR_INVALID_ARGUMENT, "logit bias {} is not finite", i);
      s.logit_bias.emplace_back(p.logit_bias_ids[i], p.logit_bias_values[i]);
    }
  }
  return s;
}

rwkvrt::GenerateOptions to_options(const rwkvrt_generate_params& p) {
  rwkvrt::GenerateOptions o;
  o.max_tokens = p.max_tokens;
  o.stop_at_eos = p.stop_at_eos != 0;
  if (p.n_stop > 0) {
    require(p.stop, "params.stop");
    for (size_t i = 0; i < p.n_stop; ++i) {
      if (!p.stop[i]) rwkvrt::fail(RWKVRT_ERR_INVALID_ARGUMENT, "stop string {} is null", i);
      o.stop.emplace_back(p.stop[i]);
    }
  }
  return o;
}

void fill_piece(const rwkvrt::GeneratedPiece& from, rwkvrt_generate_piece* to) {
  to->text = from.text.c_str();
  to->text_len = from.text.size();
  to->token = from.token;
  to->finish = static_cast<rwkvrt_finish_reason>(from.finish);
  to->n_generated = from.n_generated;
}

rwkvrt::Generator& generator_of(rwkvrt_session* s) {
  require(s, "session");
  return *s->generator;
}

}  // namespace

extern "C" {

// ---- tokenizers ----------------------------------------------------------------------------

rwkvrt_status rwkvrt_tokenizer_load(const char* path, rwkvrt_tokenizer** out_tokenizer) {
  return guarded([&] {
    require(path, "path");
    require(out_tokenizer, "out_tokenizer");
    auto t = std::make_unique<rwkvrt_tokenizer>();
    t->tokenizer = rwkvrt::load_tokenizer(path);
    *out_tokenizer = t.release();
  });
}

rwkvrt_status rwkvrt_tokenizer_create_byte(rwkvrt_tokenizer** out_tokenizer) {
  return guarded([&] {
    require(out_tokenizer, "out_tokenizer");
    auto t = std::make_unique<rwkvrt_tokenizer>();
    t->tokenizer = rwkvrt::make_byte_tokenizer();
    *out_tokenizer = t.release();
  });
}

void rwkvrt_tokenizer_free(rwkvrt_tokenizer* tokenizer) {
  delete tokenizer;
}

rwkvrt_status rwkvrt_tokenizer_get_info(const rwkvrt_tokenizer* tokenizer,
                                        rwkvrt_tokenizer_info* out_info) {
  return guarded([&] {
    const rwkvrt::Tokenizer& t = tokenizer_of(tokenizer);
    check_out_struct(out_info, "out_info");
    rwkvrt_tokenizer_info info{};
    info.kind = t.kind();
    info.vocab_size = uint32_t(t.vocab_size());
    info.eos_id = t.eos_id();
    copy_out(out_info, info);
  });
}

rwkvrt_status rwkvrt_tokenizer_encode(const rwkvrt_tokenizer* tokenizer, const char* text,
                                      size_t text_len, int32_t* ids, size_t capacity,
                                      size_t* out_count) {
  return guarded([&] {
    const rwkvrt::Tokenizer& t = tokenizer_of(tokenizer);
    require(out_count, "out_count");
    if (text_len > 0) require(text, "text");
    const std::vector<int32_t> out = t.encode(std::string_view(text ? text : "", text_len));
    if (out.size() > capacity) {
      *out_count = out.size();
      rwkvrt::fail(RWKVRT_ERR_BUFFER_TOO_SMALL, "ids holds {} ids, the text has {}", capacity,
                   out.size());
    }
    if (!out.empty()) {
      require(ids, "ids");
      std::copy(out.begin(), out.end(), ids);
    }
    *out_count = out.size();
  });
}

rwkvrt_status rwkvrt_tokenizer_decode(const rwkvrt_tokenizer* tokenizer, const int32_t* ids,
                                      size_t n_ids, char* buffer, size_t capacity,
                                      size_t* out_size) {
  return guarded([&] {
    const rwkvrt::Tokenizer& t = tokenizer_of(tokenizer);
    require(out_size, "out_size");
    if (n_ids > 0) require(ids, "ids");
    const std::string bytes = t.decode(ids, n_ids);
    if (bytes.size() > capacity) {
      *out_size = bytes.size();
      rwkvrt::fail(RWKVRT_ERR_BUFFER_TOO_SMALL, "buffer holds {} bytes, the text has {}", capacity,
                   bytes.size());
    }
    if (!bytes.empty()) {
      require(buffer, "buffer");
      std::memcpy(buffer, bytes.data(), bytes.size());
    }
    *out_size = bytes.size();
  });
}

rwkvrt_status rwkvrt_model_get_tokenizer(const rwkvrt_model* model,
                                         const rwkvrt_tokenizer** out_tokenizer) {
  return guarded([&] {
    require(model, "model");
    require(out_tokenizer, "out_tokenizer");
    if (!model->tokenizer.tokenizer)
      rwkvrt::fail(RWKVRT_ERR_UNSUPPORTED, "{}", model->tokenizer_failure);
    *out_tokenizer = &model->tokenizer;
  });
}

// ---- sampling ------------------------------------------------------------------------------

rwkvrt_sampling_params rwkvrt_sampling_params_default(void) {
  rwkvrt_sampling_params p{};
  p.struct_size = sizeof(p);
  p.mode = RWKVRT_SAMPLING_STANDARD;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.repetition_penalty = 1.0f;
  p.presence_penalty = 0.0f;
  p.frequency_penalty = 0.0f;
  p.penalty_decay = 1.0f;
  p.penalty_last_n = -1;
  p.seed = 0;
  return p;
}

rwkvrt_status rwkvrt_session_set_sampling(rwkvrt_session* session,
                                          const rwkvrt_sampling_params* params) {
  return guarded([&] {
    rwkvrt::Generator& g = generator_of(session);
    require(params, "params");
    g.set_sampling(to_sampling(read_params(params, rwkvrt_sampling_params_default(), "params")));
  });
}

// ---- prompts and generation ----------------------------------------------------------------

rwkvrt_status rwkvrt_session_prompt(rwkvrt_session* session, const char* text, size_t text_len) {
  return guarded([&] {
    rwkvrt::Generator& g = generator_of(session);
    if (text_len > 0) require(text, "text");
    g.prompt_text(std::string_view(text ? text : "", text_len));
  });
}

rwkvrt_status rwkvrt_session_prompt_tokens(rwkvrt_session* session, const int32_t* tokens,
                                           size_t n_tokens) {
  return guarded([&] {
    rwkvrt::Generator& g = generator_of(session);
    if (n_tokens > 0) require(tokens, "tokens");
    g.prompt(tokens, n_tokens);
  });
}

rwkvrt_status rwkvrt_session_get_logits(const rwkvrt_session* session, float* dst,
                                        size_t capacity) {
  return guarded([&] {
    require(session, "session");
    require(dst, "dst");
    const rwkvrt::Generator& g = *session->generator;
    if (!g.has_logits())
      rwkvrt::fail(RWKVRT_ERR_INVALID_ARGUMENT,
                   "the session has no logits (nothing was fed with logits since it was created, "
                   "reset, or given a state)");
    if (capacity < g.logits().size())
      rwkvrt::fail(RWKVRT_ERR_BUFFER_TOO_SMALL, "dst holds {} floats, the logits are {}", capacity,
                   g.logits().size());
    std::copy(g.logits().begin(), g.logits().end(), dst);
  });
}

rwkvrt_generate_params rwkvrt_generate_params_default(void) {
  rwkvrt_generate_params p{};
  p.struct_size = sizeof(p);
  p.max_tokens = 256;
  p.stop = nullptr;
  p.n_stop = 0;
  p.stop_at_eos = 1;
  return p;
}

rwkvrt_status rwkvrt_session_generate_begin(rwkvrt_session* session,
                                            const rwkvrt_generate_params* params) {
  return guarded([&] {
    rwkvrt::Generator& g = generator_of(session);
    g.begin(to_options(read_params(params, rwkvrt_generate_params_default(), "params")));
  });
}

rwkvrt_status rwkvrt_session_generate_next(rwkvrt_session* session,
                                           rwkvrt_generate_piece* out_piece) {
  return guarded([&] {
    rwkvrt::Generator& g = generator_of(session);
    require(out_piece, "out_piece");
    session->piece = g.next();
    fill_piece(session->piece, out_piece);
  });
}

rwkvrt_status rwkvrt_session_generate(rwkvrt_session* session, const rwkvrt_generate_params* params,
                                      rwkvrt_piece_fn fn, void* user_data,
                                      rwkvrt_finish_reason* out_finish) {
  return guarded([&] {
    rwkvrt::Generator& g = generator_of(session);
    g.begin(to_options(read_params(params, rwkvrt_generate_params_default(), "params")));
    rwkvrt_generate_piece piece{};
    do {
      session->piece = g.next();
      fill_piece(session->piece, &piece);
      // A nonzero return asks to stop: the next step reports CANCELLED (and feeds nothing).
      if (fn && fn(user_data, &piece) != 0 && piece.finish == RWKVRT_FINISH_NONE) g.cancel();
    } while (piece.finish == RWKVRT_FINISH_NONE);
    if (out_finish) *out_finish = piece.finish;
  });
}

rwkvrt_status rwkvrt_session_cancel(rwkvrt_session* session) {
  return guarded([&] { generator_of(session).cancel(); });
}

// ---- fork, state files, prefix cache ---------------------------------------------------------

rwkvrt_status rwkvrt_session_fork(rwkvrt_session* session, rwkvrt_session** out_session) {
  return guarded([&] {
    rwkvrt::Generator& g = generator_of(session);
    require(out_session, "out_session");
    auto copy = std::make_unique<rwkvrt_session>();
    copy->generator = g.fork();
    *out_session = copy.release();
  });
}

rwkvrt_status rwkvrt_session_load_initial_state(rwkvrt_session* session, const char* path) {
  return guarded([&] {
    rwkvrt::Generator& g = generator_of(session);
    require(path, "path");
    const rwkvrt::TensorSet tensors = rwkvrt::read_checkpoint(path);
    g.set_initial_state(g.session().model().state_from_time_state(tensors));
  });
}

rwkvrt_status rwkvrt_prefix_cache_create(rwkvrt_model* model, uint64_t max_bytes,
                                         rwkvrt_prefix_cache** out_cache) {
  return guarded([&] {
    require(model, "model");
    require(out_cache, "out_cache");
    auto c = std::make_unique<rwkvrt_prefix_cache>();
    c->cache = std::make_shared<rwkvrt::PrefixCache>(model->model, max_bytes);
    *out_cache = c.release();
  });
}

void rwkvrt_prefix_cache_free(rwkvrt_prefix_cache* cache) {
  delete cache;
}

rwkvrt_status rwkvrt_session_set_prefix_cache(rwkvrt_session* session, rwkvrt_prefix_cache* cache) {
  return guarded([&] { generator_of(session).set_prefix_cache(cache ? cache->cache : nullptr); });
}

rwkvrt_status rwkvrt_session_prefix_cache_hit(const rwkvrt_session* session, size_t* out_tokens) {
  return guarded([&] {
    require(session, "session");
    require(out_tokens, "out_tokens");
    *out_tokens = session->generator->prefix_cache_hit();
  });
}

// ---- batches -------------------------------------------------------------------------------

rwkvrt_status rwkvrt_batch_create(rwkvrt_model* model, size_t max_batch, rwkvrt_batch** out_batch) {
  return guarded([&] {
    require(model, "model");
    require(out_batch, "out_batch");
    if (max_batch == 0 || max_batch > (1u << 16))
      rwkvrt::fail(RWKVRT_ERR_INVALID_ARGUMENT, "max_batch {} is outside [1, 65536]", max_batch);
    auto b = std::make_unique<rwkvrt_batch>();
    b->model = model->model;
    b->decoder = std::make_unique<rwkvrt::BatchDecoder>(model->model, max_batch);
    b->max_batch = max_batch;
    *out_batch = b.release();
  });
}

void rwkvrt_batch_free(rwkvrt_batch* batch) {
  delete batch;
}

}  // extern "C": a helper returning a C++ type must not have C language linkage (clang warns)

namespace {

// The generators of a batch call, checked: non-null, of the batch's model, within max_batch.
std::vector<rwkvrt::Generator*> batch_members(rwkvrt_batch* batch, rwkvrt_session* const* sessions,
                                              size_t n) {
  require(batch, "batch");
  if (n == 0) rwkvrt::fail(RWKVRT_ERR_INVALID_ARGUMENT, "the batch is empty (n is 0)");
  require(sessions, "sessions");
  if (n > batch->max_batch)
    rwkvrt::fail(RWKVRT_ERR_INVALID_ARGUMENT, "{} sessions exceed the batch's max_batch {}", n,
                 batch->max_batch);
  std::vector<rwkvrt::Generator*> gens(n);
  for (size_t i = 0; i < n; ++i) {
    if (!sessions[i]) rwkvrt::fail(RWKVRT_ERR_INVALID_ARGUMENT, "sessions[{}] is null", i);
    if (&sessions[i]->session().model() != batch->model.get())
      rwkvrt::fail(RWKVRT_ERR_INVALID_ARGUMENT, "sessions[{}] belongs to another model", i);
    gens[i] = sessions[i]->generator.get();
  }
  return gens;
}

}  // namespace

extern "C" {

rwkvrt_status rwkvrt_batch_step(rwkvrt_batch* batch, rwkvrt_session* const* sessions,
                                const int32_t* tokens, size_t n, float* logits,
                                size_t logits_capacity) {
  return guarded([&] {
    std::vector<rwkvrt::Generator*> gens = batch_members(batch, sessions, n);
    require(tokens, "tokens");
    const size_t V = batch->model->config().n_vocab;
    if (logits && logits_capacity < n * V)
      rwkvrt::fail(RWKVRT_ERR_BUFFER_TOO_SMALL, "logits holds {} floats, {} are needed",
                   logits_capacity, n * V);
    for (size_t i = 0; i < n; ++i)
      if (gens[i]->generating())
        rwkvrt::fail(RWKVRT_ERR_INVALID_ARGUMENT, "sessions[{}] is generating", i);
    std::vector<rwkvrt::Session*> raw(n);
    for (size_t i = 0; i < n; ++i) raw[i] = &gens[i]->session();
    const float* rows = batch->decoder->step_logits(raw.data(), tokens, n);
    for (size_t i = 0; i < n; ++i) gens[i]->after_batch_step(tokens[i], rows + i * V);
    if (logits) std::copy(rows, rows + n * V, logits);
  });
}

rwkvrt_status rwkvrt_batch_generate_next(rwkvrt_batch* batch, rwkvrt_session* const* sessions,
                                         size_t n, rwkvrt_generate_piece* out_pieces) {
  return guarded([&] {
    std::vector<rwkvrt::Generator*> gens = batch_members(batch, sessions, n);
    require(out_pieces, "out_pieces");
    std::vector<rwkvrt::GeneratedPiece> pieces(n);
    rwkvrt::Generator::next_batch(*batch->decoder, gens.data(), n, pieces.data());
    for (size_t i = 0; i < n; ++i) {
      sessions[i]->piece = std::move(pieces[i]);
      fill_piece(sessions[i]->piece, &out_pieces[i]);
    }
  });
}

}  // extern "C"
