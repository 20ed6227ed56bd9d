#include "scheduler.h"

#include "log.h"

#include <algorithm>
#include <future>

namespace rwkvrtd {
namespace {

using rwkvrt::v1::FinishReason;
using rwkvrt::v1::GenerateEvent;
using Clock = std::chrono::steady_clock;

double millis_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

FinishReason to_proto(rwkvrt_finish_reason reason) {
  switch (reason) {
    case RWKVRT_FINISH_STOP: return rwkvrt::v1::FINISH_REASON_STOP;
    case RWKVRT_FINISH_LENGTH: return rwkvrt::v1::FINISH_REASON_LENGTH;
    case RWKVRT_FINISH_EOS: return rwkvrt::v1::FINISH_REASON_END_OF_TEXT;
    case RWKVRT_FINISH_CANCELLED: return rwkvrt::v1::FINISH_REASON_CANCELLED;
    case RWKVRT_FINISH_NONE: break;
  }
  return rwkvrt::v1::FINISH_REASON_UNSPECIFIED;
}

const char* finish_name(rwkvrt_finish_reason reason) {
  switch (reason) {
    case RWKVRT_FINISH_STOP: return "stop";
    case RWKVRT_FINISH_LENGTH: return "length";
    case RWKVRT_FINISH_EOS: return "end_of_text";
    case RWKVRT_FINISH_CANCELLED: return "cancelled";
    case RWKVRT_FINISH_NONE: break;
  }
  return "none";
}

// The library promises valid UTF-8 pieces; a protobuf string must be valid UTF-8 or the client
// cannot parse the message, so anything else is replaced (U+FFFD) rather than trusted.
std::string valid_utf8(const char* text, size_t size) {
  const auto* p = reinterpret_cast<const unsigned char*>(text);
  std::string out;
  out.reserve(size);
  size_t i = 0;
  while (i < size) {
    const unsigned char c = p[i];
    size_t length = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    bool ok = length > 0 && i + length <= size;
    for (size_t k = 1; ok && k < length; ++k) ok = (p[i + k] & 0xC0) == 0x80;
    if (ok && length > 1) {
      uint32_t cp = c & (0x7F >> length);
      for (size_t k = 1; k < length; ++k) cp = (cp << 6) | (p[i + k] & 0x3F);
      const uint32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
      ok = cp >= min_cp[length] && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
    }
    if (ok) {
      out.append(text + i, length);
      i += length;
    } else {
      out += "\xEF\xBF\xBD";
      i += 1;
    }
  }
  return out;
}

GenerateEvent error_event(const grpc::Status& status) {
  GenerateEvent event;
  event.mutable_error()->set_code(static_cast<int32_t>(status.error_code()));
  event.mutable_error()->set_message(status.error_message());
  return event;
}

}  // namespace

rwkvrt_sampling_params SamplingSpec::view() const {
  rwkvrt_sampling_params out = params;
  out.banned = banned.empty() ? nullptr : banned.data();
  out.n_banned = banned.size();
  out.logit_bias_ids = bias_ids.empty() ? nullptr : bias_ids.data();
  out.logit_bias_values = bias_values.empty() ? nullptr : bias_values.data();
  out.n_logit_bias = bias_ids.size();
  return out;
}

// ---- Persister -----------------------------------------------------------------------------------

Persister::Persister() : thread_([this] { run(); }) {}

Persister::~Persister() { stop(); }

void Persister::submit(std::function<void()> task) {
  {
    std::lock_guard lock(mutex_);
    tasks_.push_back(std::move(task));
  }
  wake_.notify_one();
}

void Persister::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void Persister::run() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !tasks_.empty(); });
      if (tasks_.empty()) return;  // stopping, and everything queued has run
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    task();
  }
}

// ---- Scheduler: lifecycle and hand-over ----------------------------------------------------------

Scheduler::Scheduler(HostedModel& model, SessionStore& store, Persister& persister, Metrics& metrics,
                     const Limits& limits)
    : model_(model), store_(store), persister_(persister), metrics_(metrics), limits_(limits) {}

Scheduler::~Scheduler() { stop(); }

void Scheduler::start() {
  rwkvrt_batch* batch = nullptr;
  if (rwkvrt_status s = rwkvrt_batch_create(model_.model.get(), limits_.max_batch, &batch); s != RWKVRT_OK) {
    throw std::runtime_error(sdk_error("cannot create a decode batch for model " + model_.id, s));
  }
  batch_.reset(batch);
  step_sessions_.reserve(limits_.max_batch);
  step_pieces_.resize(limits_.max_batch);
  thread_ = std::thread([this] { run(); });
}

void Scheduler::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
  // What the thread left (nothing, unless start() never ran) is released here.
  residents_.clear();
  batch_.reset();
}

void Scheduler::submit(std::shared_ptr<GenerationJob> job) {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_) {
      incoming_.push_back(std::move(job));
      queued_ = incoming_.size() + prefilling_.size();
      wake_.notify_one();
      return;
    }
  }
  conclude(job, nullptr, grpc::Status(grpc::StatusCode::UNAVAILABLE, "the daemon is shutting down"));
}

void Scheduler::wake() { wake_.notify_one(); }

grpc::Status Scheduler::call(std::function<grpc::Status()> fn) {
  auto done = std::make_shared<std::promise<grpc::Status>>();
  auto result = done->get_future();
  {
    std::lock_guard lock(mutex_);
    if (stopped_) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the daemon is shutting down");
    commands_.push_back([fn = std::move(fn), done] {
      try {
        done->set_value(fn());
      } catch (const std::exception& e) {
        done->set_value(grpc::Status(grpc::StatusCode::INTERNAL, e.what()));
      }
    });
  }
  wake_.notify_one();
  return result.get();
}

bool Scheduler::has_work_locked() const {
  return stopping_ || !commands_.empty() || !incoming_.empty() || !prefilling_.empty() ||
         !active_.empty();
}

void Scheduler::run() {
  for (;;) {
    std::deque<std::function<void()>> commands;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return has_work_locked(); });
      commands.swap(commands_);
      if (stopping_) {
        for (auto& job : incoming_) job->cancel_requested = true;
        for (auto& r : prefilling_) r->job->cancel_requested = true;
        for (auto& r : active_) r->job->cancel_requested = true;
        if (commands.empty() && incoming_.empty() && prefilling_.empty() && active_.empty()) {
          // Commands queued from now on are refused by call().
          stopped_ = true;
          break;
        }
      }
    }
    for (auto& command : commands) command();
    handle_cancels();
    admit();
    prefill();
    decode_step();
    {
      std::lock_guard lock(mutex_);
      queued_ = incoming_.size() + prefilling_.size();
    }
    running_ = active_.size();
  }
  running_ = 0;
  queued_ = 0;
}

// ---- Scheduler: the generation pipeline ----------------------------------------------------------

void Scheduler::handle_cancels() {
  std::vector<std::shared_ptr<GenerationJob>> unstarted;
  bool stopping = false;
  {
    std::lock_guard lock(mutex_);
    stopping = stopping_;
    for (auto it = incoming_.begin(); it != incoming_.end();) {
      if ((*it)->cancel_requested) {
        unstarted.push_back(std::move(*it));
        it = incoming_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& job : unstarted) {
    conclude(job, nullptr,
             stopping ? grpc::Status(grpc::StatusCode::UNAVAILABLE, "the daemon is shutting down")
                      : grpc::Status(grpc::StatusCode::CANCELLED, "cancelled before it started"));
  }
  for (auto it = prefilling_.begin(); it != prefilling_.end();) {
    if ((*it)->job->cancel_requested) {
      auto r = std::move(*it);
      it = prefilling_.erase(it);
      cancel_before_generation(std::move(r));
    } else {
      ++it;
    }
  }
  for (auto it = active_.begin(); it != active_.end();) {
    if (!(*it)->job->cancel_requested) {
      ++it;
      continue;
    }
    auto r = std::move(*it);
    it = active_.erase(it);
    // The cancel makes the next pull report CANCELLED without feeding another token, and hands
    // over any text held back.
    rwkvrt_session_cancel(r->session);
    rwkvrt_generate_piece piece{};
    if (rwkvrt_status s = rwkvrt_session_generate_next(r->session, &piece); s != RWKVRT_OK) {
      fail(std::move(r), grpc::Status(grpc::StatusCode::INTERNAL, sdk_error("cancel", s)));
      continue;
    }
    forward_piece(*r, piece);
    complete(std::move(r), RWKVRT_FINISH_CANCELLED, piece.n_generated);
  }
}

void Scheduler::admit() {
  for (;;) {
    std::shared_ptr<GenerationJob> job;
    {
      std::lock_guard lock(mutex_);
      if (incoming_.empty() || prefilling_.size() + active_.size() >= limits_.max_batch) return;
      job = std::move(incoming_.front());
      incoming_.pop_front();
    }
    auto r = std::make_unique<Running>();
    r->job = std::move(job);
    if (grpc::Status status = begin(*r); !status.ok()) {
      // Nothing was sent and the session's state is untouched.
      conclude(r->job, nullptr, status);
      continue;
    }
    prefilling_.push_back(std::move(r));
  }
}

grpc::Status Scheduler::begin(Running& r) {
  GenerationJob& job = *r.job;
  if (!job.session_id.empty()) {
    Resident* resident = nullptr;
    if (grpc::Status status = ensure_resident(job.session_id, &resident); !status.ok()) return status;
    r.session = resident->session.get();
  } else {
    rwkvrt_session* session = nullptr;
    if (rwkvrt_status s = rwkvrt_session_create(model_.model.get(), &session); s != RWKVRT_OK) {
      return grpc::Status(s == RWKVRT_ERR_OUT_OF_MEMORY ? grpc::StatusCode::RESOURCE_EXHAUSTED
                                                        : grpc::StatusCode::INTERNAL,
                          sdk_error("cannot create a session", s));
    }
    r.owned.reset(session);
    r.session = session;
  }
  const rwkvrt_sampling_params params = job.sampling.view();
  if (rwkvrt_status s = rwkvrt_session_set_sampling(r.session, &params); s != RWKVRT_OK) {
    return client_data_status("sampling parameters", s);
  }
  r.stop_storage = job.stop;
  for (const auto& s : r.stop_storage) r.stop_pointers.push_back(s.c_str());

  GenerateEvent started;
  auto* s = started.mutable_started();
  s->set_request_id(job.request_id);
  s->set_session_id(job.session_id);
  s->set_model(model_.id);
  s->set_prompt_tokens(static_cast<uint32_t>(job.prompt.size()));
  s->set_seed(job.sampling.params.seed);
  job.sink->send(std::move(started));
  r.begun = true;
  r.prefill_start = Clock::now();
  return grpc::Status::OK;
}

void Scheduler::prefill() {
  // Running streams wait for at most one chunk of prompt per step; with none running, prompts
  // are fed in larger pieces (commands and cancels are still checked between pieces).
  size_t budget = active_.empty() ? std::max<size_t>(limits_.prefill_chunk_tokens, 1024)
                                  : limits_.prefill_chunk_tokens;
  while (budget > 0 && !prefilling_.empty()) {
    Running& r = *prefilling_.front();
    const auto& prompt = r.job->prompt;
    const size_t n = std::min(budget, prompt.size() - r.fed);
    if (rwkvrt_status s = rwkvrt_session_prompt_tokens(r.session, prompt.data() + r.fed, n); s != RWKVRT_OK) {
      auto failed = std::move(prefilling_.front());
      prefilling_.pop_front();
      fail(std::move(failed), client_data_status("prompt", s));
      continue;
    }
    r.fed += n;
    budget -= n;
    if (r.fed < prompt.size()) continue;

    auto ready = std::move(prefilling_.front());
    prefilling_.pop_front();
    metrics_.add_prompt_tokens(model_.id, prompt.size());
    rwkvrt_generate_params params = rwkvrt_generate_params_default();
    params.max_tokens = ready->job->max_tokens;
    params.stop = ready->stop_pointers.empty() ? nullptr : ready->stop_pointers.data();
    params.n_stop = ready->stop_pointers.size();
    params.stop_at_eos = ready->job->stop_at_eos ? 1 : 0;
    if (rwkvrt_status s = rwkvrt_session_generate_begin(ready->session, &params); s != RWKVRT_OK) {
      fail(std::move(ready), client_data_status("generation parameters", s));
      continue;
    }
    ready->decode_start = Clock::now();
    active_.push_back(std::move(ready));
  }
}

void Scheduler::decode_step() {
  if (active_.empty()) return;
  const size_t n = active_.size();
  step_sessions_.clear();
  for (auto& r : active_) step_sessions_.push_back(r->session);
  const auto t0 = Clock::now();
  const rwkvrt_status s =
      rwkvrt_batch_generate_next(batch_.get(), step_sessions_.data(), n, step_pieces_.data());
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  if (s != RWKVRT_OK) {
    const grpc::Status status(grpc::StatusCode::INTERNAL, sdk_error("decode step", s));
    log::error("decode step failed", {{"model", model_.id}, {"batch", n}, {"error", status.error_message()}});
    auto failed = std::move(active_);
    active_.clear();
    for (auto& r : failed) fail(std::move(r), status);
    return;
  }
  metrics_.observe_decode_step(model_.id, n, seconds);
  uint64_t tokens = 0;
  std::vector<std::unique_ptr<Running>> still_running;
  still_running.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const rwkvrt_generate_piece& piece = step_pieces_[i];
    if (piece.token >= 0) ++tokens;
    forward_piece(*active_[i], piece);
    if (piece.finish != RWKVRT_FINISH_NONE) {
      complete(std::move(active_[i]), piece.finish, piece.n_generated);
    } else {
      still_running.push_back(std::move(active_[i]));
    }
  }
  active_ = std::move(still_running);
  metrics_.add_generated_tokens(model_.id, tokens);
}

void Scheduler::forward_piece(Running& r, const rwkvrt_generate_piece& piece) {
  if (piece.text_len == 0 && piece.token < 0) return;
  GenerateEvent event;
  auto* chunk = event.mutable_chunk();
  if (piece.text_len > 0) chunk->set_text(valid_utf8(piece.text, piece.text_len));
  if (piece.token >= 0) chunk->add_token_ids(piece.token);
  r.job->sink->send(std::move(event));
}

void Scheduler::complete(std::unique_ptr<Running> r, rwkvrt_finish_reason reason, uint32_t generated) {
  auto job = r->job;
  const auto now = Clock::now();
  GenerateEvent final_event;
  auto* f = final_event.mutable_final();
  f->set_finish_reason(to_proto(reason));
  f->set_prompt_tokens(static_cast<uint32_t>(job->prompt.size()));
  f->set_completion_tokens(generated);
  f->mutable_timings()->set_queue_ms(millis_between(job->arrived, r->prefill_start));
  f->mutable_timings()->set_prefill_ms(millis_between(r->prefill_start, r->decode_start));
  f->mutable_timings()->set_decode_ms(millis_between(r->decode_start, now));
  metrics_.count_generation(model_.id, finish_name(reason));

  if (job->session_id.empty()) {
    conclude(job, &final_event, grpc::Status::OK);
    return;
  }
  auto it = residents_.find(job->session_id);
  if (it == residents_.end()) {  // cannot happen: a running session stays resident
    fail(std::move(r), grpc::Status(grpc::StatusCode::INTERNAL, "session left memory mid-turn"));
    return;
  }
  SessionMeta& meta = it->second.meta;
  meta.turns += 1;
  meta.tokens += job->prompt.size() + generated;
  meta.last_used_ms = unix_millis_now();
  std::vector<uint8_t> blob;
  if (grpc::Status status = save_blob(r->session, &blob); !status.ok()) {
    fail(std::move(r), status);
    return;
  }
  // The final event leaves only once the turn is on disk: a client that saw it can count on a
  // restart resuming after this turn.
  persister_.submit([this, job, meta, blob = std::move(blob), final_event]() mutable {
    const grpc::Status status = store_.persist(meta, blob);
    if (status.ok()) {
      final_event.mutable_final()->set_persisted(true);
      conclude(job, &final_event, grpc::Status::OK);
      return;
    }
    log::error("session turn not persisted", {{"session", meta.id}, {"error", status.error_message()}});
    // Memory must not run ahead of the disk: the session goes back to its stored turn.  The
    // command is queued before the lock is released, so it runs before the session's next use.
    const std::string id = meta.id;
    std::lock_guard lock(mutex_);
    if (!stopped_) commands_.push_back([this, id] { drop_resident(id); });
    wake_.notify_one();
    const grpc::Status failure(grpc::StatusCode::INTERNAL,
                               "the turn could not be saved (" + status.error_message() +
                                   "); the session stays at its previous turn");
    const GenerateEvent error = error_event(failure);
    conclude(job, &error, failure);
  });
}

void Scheduler::fail(std::unique_ptr<Running> r, const grpc::Status& status) {
  log::warn("generation failed", {{"request", r->job->request_id}, {"session", r->job->session_id},
                                  {"code", static_cast<int>(status.error_code())},
                                  {"error", status.error_message()}});
  metrics_.count_generation(model_.id, "error");
  if (!r->job->session_id.empty()) drop_resident(r->job->session_id);
  if (r->begun) {
    const GenerateEvent error = error_event(status);
    conclude(r->job, &error, status);
  } else {
    conclude(r->job, nullptr, status);
  }
}

void Scheduler::cancel_before_generation(std::unique_ptr<Running> r) {
  // Part of the prompt may have been fed: the session goes back to its stored turn.
  if (!r->job->session_id.empty() && r->fed > 0) drop_resident(r->job->session_id);
  metrics_.count_generation(model_.id, finish_name(RWKVRT_FINISH_CANCELLED));
  GenerateEvent final_event;
  auto* f = final_event.mutable_final();
  f->set_finish_reason(rwkvrt::v1::FINISH_REASON_CANCELLED);
  f->set_prompt_tokens(static_cast<uint32_t>(r->job->prompt.size()));
  f->mutable_timings()->set_queue_ms(millis_between(r->job->arrived, r->prefill_start));
  f->mutable_timings()->set_prefill_ms(millis_between(r->prefill_start, Clock::now()));
  conclude(r->job, &final_event, grpc::Status::OK);
}

void Scheduler::conclude(const std::shared_ptr<GenerationJob>& job, const GenerateEvent* last,
                         const grpc::Status& status) {
  // The session is free again before the client hears the end, so its next turn never finds it
  // busy.
  if (!job->session_id.empty()) store_.release(job->session_id);
  if (last) {
    GenerateEvent event = *last;
    if (event.has_final()) {
      event.mutable_final()->mutable_timings()->set_total_ms(millis_between(job->arrived, Clock::now()));
    }
    job->sink->send(std::move(event));
  }
  job->sink->finish(status);
  if (job->on_done) job->on_done();
}

// ---- Scheduler: resident sessions ----------------------------------------------------------------

grpc::Status Scheduler::save_blob(rwkvrt_session* session, std::vector<uint8_t>* out) {
  size_t size = 0;
  if (rwkvrt_status s = rwkvrt_session_save_state(session, nullptr, 0, &size);
      s != RWKVRT_OK && s != RWKVRT_ERR_BUFFER_TOO_SMALL) {
    return grpc::Status(grpc::StatusCode::INTERNAL, sdk_error("save state", s));
  }
  std::vector<uint8_t> blob(size);
  size_t written = 0;
  if (rwkvrt_status s = rwkvrt_session_save_state(session, blob.data(), blob.size(), &written); s != RWKVRT_OK) {
    return grpc::Status(grpc::StatusCode::INTERNAL, sdk_error("save state", s));
  }
  blob.resize(written);
  *out = std::move(blob);
  return grpc::Status::OK;
}

grpc::Status Scheduler::ensure_resident(const std::string& id, Resident** out) {
  if (auto it = residents_.find(id); it != residents_.end()) {
    it->second.last_used = ++tick_;
    *out = &it->second;
    return grpc::Status::OK;
  }
  SessionMeta meta;
  std::vector<uint8_t> blob;
  if (grpc::Status status = store_.load(id, &meta, &blob); !status.ok()) return status;
  if (meta.model != model_.id) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "session " + id + " belongs to model " + meta.model + ", not " + model_.id);
  }
  rwkvrt_session* raw = nullptr;
  if (rwkvrt_status s = rwkvrt_session_create(model_.model.get(), &raw); s != RWKVRT_OK) {
    return grpc::Status(grpc::StatusCode::INTERNAL, sdk_error("cannot create a session", s));
  }
  SessionPtr session(raw);
  if (rwkvrt_status s = rwkvrt_session_load_state(raw, blob.data(), blob.size()); s != RWKVRT_OK) {
    const grpc::StatusCode code = s == RWKVRT_ERR_STATE_MISMATCH ? grpc::StatusCode::FAILED_PRECONDITION
                                                                 : grpc::StatusCode::DATA_LOSS;
    return grpc::Status(code, sdk_error("the stored state of session " + id + " does not load into model " +
                                            model_.id, s));
  }
  insert_resident(meta, std::move(session));
  *out = &residents_.at(id);
  return grpc::Status::OK;
}

void Scheduler::insert_resident(const SessionMeta& meta, SessionPtr session) {
  Resident& resident = residents_[meta.id];
  resident.session = std::move(session);
  resident.meta = meta;
  resident.last_used = ++tick_;
  store_.set_resident(meta.id, true);
  evict_idle();
}

void Scheduler::evict_idle() {
  // Only unlocked sessions are evicted: their file already holds their state, so eviction only
  // frees memory.  The newest session (just used) is never the least recently used one.
  while (residents_.size() > limits_.max_resident_sessions) {
    auto victim = residents_.end();
    for (auto it = residents_.begin(); it != residents_.end(); ++it) {
      if ((victim == residents_.end() || it->second.last_used < victim->second.last_used) &&
          !store_.holder(it->first)) {
        victim = it;
      }
    }
    if (victim == residents_.end()) return;  // every resident session is in use
    log::debug("session evicted to disk", {{"session", victim->first}});
    store_.set_resident(victim->first, false);
    residents_.erase(victim);
  }
}

void Scheduler::drop_resident(const std::string& id) {
  if (residents_.erase(id)) store_.set_resident(id, false);
}

grpc::Status Scheduler::create_session(const SessionMeta& meta, const std::string* blob,
                                       const std::string* state_file, std::vector<uint8_t>* out_blob) {
  rwkvrt_session* raw = nullptr;
  if (rwkvrt_status s = rwkvrt_session_create(model_.model.get(), &raw); s != RWKVRT_OK) {
    return grpc::Status(grpc::StatusCode::INTERNAL, sdk_error("cannot create a session", s));
  }
  SessionPtr session(raw);
  if (blob) {
    if (rwkvrt_status s = rwkvrt_session_load_state(raw, blob->data(), blob->size()); s != RWKVRT_OK) {
      return client_data_status("state_blob", s);
    }
  }
  if (state_file) {
    if (rwkvrt_status s = rwkvrt_session_load_initial_state(raw, state_file->c_str()); s != RWKVRT_OK) {
      if (s == RWKVRT_ERR_IO) {
        return grpc::Status(grpc::StatusCode::NOT_FOUND, sdk_error("state_file", s));
      }
      return client_data_status("state_file", s);
    }
  }
  if (grpc::Status status = save_blob(raw, out_blob); !status.ok()) return status;
  insert_resident(meta, std::move(session));
  return grpc::Status::OK;
}

grpc::Status Scheduler::fork_session(const std::string& source_id, const SessionMeta& meta,
                                     std::vector<uint8_t>* out_blob) {
  Resident* source = nullptr;
  if (grpc::Status status = ensure_resident(source_id, &source); !status.ok()) return status;
  rwkvrt_session* raw = nullptr;
  if (rwkvrt_status s = rwkvrt_session_fork(source->session.get(), &raw); s != RWKVRT_OK) {
    return grpc::Status(grpc::StatusCode::INTERNAL, sdk_error("fork", s));
  }
  SessionPtr session(raw);
  if (grpc::Status status = save_blob(raw, out_blob); !status.ok()) return status;
  insert_resident(meta, std::move(session));
  return grpc::Status::OK;
}

grpc::Status Scheduler::import_state(const SessionMeta& meta, const std::string& blob,
                                     std::vector<uint8_t>* out_blob) {
  // Loaded into a fresh session first: a bad blob leaves the session as it was.
  rwkvrt_session* raw = nullptr;
  if (rwkvrt_status s = rwkvrt_session_create(model_.model.get(), &raw); s != RWKVRT_OK) {
    return grpc::Status(grpc::StatusCode::INTERNAL, sdk_error("cannot create a session", s));
  }
  SessionPtr session(raw);
  if (rwkvrt_status s = rwkvrt_session_load_state(raw, blob.data(), blob.size()); s != RWKVRT_OK) {
    return client_data_status("state_blob", s);
  }
  if (grpc::Status status = save_blob(raw, out_blob); !status.ok()) return status;
  drop_resident(meta.id);
  insert_resident(meta, std::move(session));
  return grpc::Status::OK;
}

}  // namespace rwkvrtd
