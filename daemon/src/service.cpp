#include "service.h"

#include "log.h"

#include <chrono>
#include <deque>
#include <optional>
#include <random>

namespace rwkvrtd {

using grpc::Status;
using grpc::StatusCode;
namespace v1 = rwkvrt::v1;

const char* status_code_name(StatusCode code) {
  switch (code) {
    case StatusCode::OK: return "OK";
    case StatusCode::CANCELLED: return "CANCELLED";
    case StatusCode::UNKNOWN: return "UNKNOWN";
    case StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case StatusCode::NOT_FOUND: return "NOT_FOUND";
    case StatusCode::ALREADY_EXISTS: return "ALREADY_EXISTS";
    case StatusCode::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case StatusCode::ABORTED: return "ABORTED";
    case StatusCode::OUT_OF_RANGE: return "OUT_OF_RANGE";
    case StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case StatusCode::INTERNAL: return "INTERNAL";
    case StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case StatusCode::DATA_LOSS: return "DATA_LOSS";
    case StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
    default: return "UNKNOWN";
  }
}

namespace {

std::string new_request_id() {
  static std::mutex mutex;
  static std::random_device device;
  std::lock_guard lock(mutex);
  static const char* hex = "0123456789abcdef";
  std::string id = "r-";
  for (int i = 0; i < 2; ++i) {
    uint32_t word = device();
    for (int j = 0; j < 8; ++j, word >>= 4) id += hex[word & 15];
  }
  return id;
}

uint64_t random_seed() {
  static std::mutex mutex;
  static std::random_device device;
  std::lock_guard lock(mutex);
  return (uint64_t(device()) << 32) | device();
}

// ---- the Generate stream -----------------------------------------------------------------------

// Event queue between the scheduler (any thread) and one gRPC stream.  Holds at most one write in
// flight; chunks queued behind it are merged, so a slow reader costs one message per write, not
// one per token.  Shared by the job (which sends) and the reactor (which writes).
class StreamSink final : public EventSink, public std::enable_shared_from_this<StreamSink> {
 public:
  StreamSink(RuntimeService& service, std::string peer) : service_(service), peer_(std::move(peer)) {}

  void bind(grpc::ServerWriteReactor<v1::GenerateEvent>* reactor) { reactor_ = reactor; }

  // Connects the job to stop when the client goes away.  If that already happened, stops it now.
  void attach(const std::shared_ptr<GenerationJob>& job, Scheduler* scheduler) {
    std::lock_guard lock(mutex_);
    job_ = job;
    scheduler_ = scheduler;
    request_id_ = job->request_id;
    session_id_ = job->session_id;
    if (client_gone_) {
      job->cancel_requested = true;
      scheduler->wake();
    }
  }

  void send(v1::GenerateEvent event) override {
    std::unique_lock lock(mutex_);
    if (finish_requested_ || client_gone_) return;
    if (event.has_final()) final_ = event.final();
    if (event.has_chunk() && !queue_.empty() && queue_.back().has_chunk()) {
      auto* merged = queue_.back().mutable_chunk();
      merged->mutable_text()->append(event.chunk().text());
      for (int32_t id : event.chunk().token_ids()) merged->add_token_ids(id);
    } else {
      queue_.push_back(std::move(event));
    }
    request_pump(lock);
  }

  void finish(const Status& status) override {
    std::unique_lock lock(mutex_);
    if (finish_requested_) return;
    finish_requested_ = true;
    status_ = status;
    request_pump(lock);
  }

  // Reactor callbacks.
  void on_write_done(bool ok) {
    std::unique_lock lock(mutex_);
    writing_ = false;
    if (!ok) mark_client_gone_locked();
    pump(lock);
  }
  void on_cancel() {
    std::lock_guard lock(mutex_);
    mark_client_gone_locked();
  }
  void on_done() {
    Status status;
    std::optional<v1::Final> final_event;
    std::string request_id, session_id;
    {
      std::lock_guard lock(mutex_);
      reactor_ = nullptr;
      status = status_;
      final_event = final_;
      request_id = request_id_;
      session_id = session_id_;
    }
    service_.count_request("Generate", status);
    nlohmann::json fields = {{"method", "Generate"}, {"code", status_code_name(status.error_code())},
                             {"peer", peer_}};
    if (!request_id.empty()) fields["request"] = request_id;
    if (!session_id.empty()) fields["session"] = session_id;
    if (final_event) {
      fields["finish"] = v1::FinishReason_Name(final_event->finish_reason());
      fields["prompt_tokens"] = final_event->prompt_tokens();
      fields["completion_tokens"] = final_event->completion_tokens();
      fields["total_ms"] = final_event->timings().total_ms();
    }
    if (!status.ok()) fields["error"] = status.error_message();
    log::info("request", fields);
    service_.stream_closed();
  }

 private:
  void mark_client_gone_locked() {
    if (client_gone_) return;
    client_gone_ = true;
    queue_.clear();
    if (auto job = job_.lock()) {
      job->cancel_requested = true;
      scheduler_->wake();
    }
  }

  // Hands the next write to the dispatcher thread, unless a write is in flight (its completion
  // pumps) or one is already scheduled.
  void request_pump(std::unique_lock<std::mutex>& lock) {
    if (writing_ || scheduled_ || finish_sent_ || reactor_ == nullptr) return;
    scheduled_ = true;
    lock.unlock();
    service_.dispatcher().schedule([self = shared_from_this()] {
      std::unique_lock relock(self->mutex_);
      self->scheduled_ = false;
      self->pump(relock);
    });
  }

  // Starts the next write, or the finish once everything is written.  Called with the lock held;
  // releases it before calling into gRPC (whose callbacks take the lock again).
  void pump(std::unique_lock<std::mutex>& lock) {
    if (writing_ || finish_sent_ || reactor_ == nullptr) return;
    auto* reactor = reactor_;
    if (!queue_.empty() && !client_gone_) {
      current_ = std::move(queue_.front());
      queue_.pop_front();
      writing_ = true;
      lock.unlock();
      reactor->StartWrite(&current_);
      return;
    }
    if (finish_requested_) {
      finish_sent_ = true;
      Status status = status_;
      lock.unlock();
      reactor->Finish(status);
    }
  }

  RuntimeService& service_;
  const std::string peer_;
  std::mutex mutex_;
  grpc::ServerWriteReactor<v1::GenerateEvent>* reactor_ = nullptr;
  std::weak_ptr<GenerationJob> job_;
  Scheduler* scheduler_ = nullptr;
  std::string request_id_, session_id_;
  std::deque<v1::GenerateEvent> queue_;
  v1::GenerateEvent current_;  // the event being written
  std::optional<v1::Final> final_;
  bool writing_ = false;
  bool scheduled_ = false;        // a pump is queued on the dispatcher
  bool client_gone_ = false;      // cancelled, deadline passed, disconnected or a write failed
  bool finish_requested_ = false;
  bool finish_sent_ = false;
  Status status_;
};

class GenerateReactor final : public grpc::ServerWriteReactor<v1::GenerateEvent> {
 public:
  explicit GenerateReactor(std::shared_ptr<StreamSink> sink) : sink_(std::move(sink)) {
    sink_->bind(this);
  }
  const std::shared_ptr<StreamSink>& sink() const { return sink_; }

  void OnWriteDone(bool ok) override { sink_->on_write_done(ok); }
  void OnCancel() override { sink_->on_cancel(); }
  void OnDone() override {
    sink_->on_done();
    delete this;
  }

 private:
  std::shared_ptr<StreamSink> sink_;
};

}  // namespace

// ---- WriteDispatcher ------------------------------------------------------------------------------

WriteDispatcher::WriteDispatcher() : thread_([this] { run(); }) {}

WriteDispatcher::~WriteDispatcher() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void WriteDispatcher::schedule(std::function<void()> task) {
  {
    std::lock_guard lock(mutex_);
    tasks_.push_back(std::move(task));
  }
  wake_.notify_one();
}

void WriteDispatcher::run() {
  std::vector<std::function<void()>> batch;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !tasks_.empty(); });
      if (tasks_.empty()) return;
      batch.swap(tasks_);
    }
    for (auto& task : batch) task();
    batch.clear();
  }
}

// ---- RuntimeService ------------------------------------------------------------------------------

RuntimeService::RuntimeService(const Config& config, ModelMap& models, SessionStore& store,
                               Metrics& metrics, const Authenticator& auth)
    : config_(config), models_(models), store_(store), metrics_(metrics), auth_(auth) {}

void RuntimeService::count_request(const char* method, const Status& status) {
  metrics_.count_request(method, status_code_name(status.error_code()));
}

Status RuntimeService::refuse_if_draining() const {
  if (draining_) return Status(StatusCode::UNAVAILABLE, "the daemon is shutting down");
  return Status::OK;
}

Status RuntimeService::check_session_id(const std::string& id) const {
  if (id.empty()) return Status(StatusCode::INVALID_ARGUMENT, "session_id is required");
  if (!is_valid_session_id(id)) {
    std::string message = "not a session id: ";
    message.append(id, 0, 80);
    return Status(StatusCode::INVALID_ARGUMENT, message);
  }
  return Status::OK;
}

Status RuntimeService::resolve_model(const std::string& name, ModelSlot** out) {
  if (name.empty()) {
    if (models_.size() == 1) {
      *out = models_.begin()->second.get();
      return Status::OK;
    }
    return Status(StatusCode::INVALID_ARGUMENT,
                  "this daemon serves several models: name one in `model` (see ListModels)");
  }
  auto it = models_.find(name);
  if (it == models_.end()) {
    return Status(StatusCode::NOT_FOUND, "no model '" + name.substr(0, 200) + "' (see ListModels)");
  }
  *out = it->second.get();
  return Status::OK;
}

Status RuntimeService::slot_of_session(const SessionMeta& meta, ModelSlot** out) {
  auto it = models_.find(meta.model);
  if (it == models_.end()) {
    return Status(StatusCode::FAILED_PRECONDITION,
                  "session " + meta.id + " belongs to model '" + meta.model +
                      "', which this daemon does not serve now");
  }
  *out = it->second.get();
  return Status::OK;
}

Status RuntimeService::fill_session_info(const std::string& id, v1::SessionInfo* out) {
  auto status = store_.status(id);
  if (!status) return Status(StatusCode::NOT_FOUND, "no session " + id);
  out->set_session_id(status->meta.id);
  out->set_model(status->meta.model);
  out->set_created_unix_ms(status->meta.created_ms);
  out->set_last_used_unix_ms(status->meta.last_used_ms);
  out->set_turns(status->meta.turns);
  out->set_tokens(status->meta.tokens);
  out->set_state_bytes(status->file_bytes);
  out->set_resident(status->resident);
  out->set_generating(status->generating);
  return Status::OK;
}

template <class Body>
Status RuntimeService::unary(const char* method, grpc::ServerContext* context, Body&& body) {
  const auto t0 = std::chrono::steady_clock::now();
  Status status = auth_.check(*context);
  if (status.ok()) {
    try {
      status = body();
    } catch (const std::exception& e) {
      status = Status(StatusCode::INTERNAL, std::string("internal error: ") + e.what());
    }
  }
  count_request(method, status);
  nlohmann::json fields = {
      {"method", method},
      {"code", status_code_name(status.error_code())},
      {"ms", std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count()},
      {"peer", context->peer()}};
  if (!status.ok()) fields["error"] = status.error_message();
  if (status.ok()) {
    log::debug("request", fields);
  } else {
    log::info("request", fields);
  }
  return status;
}

// ---- Generate ------------------------------------------------------------------------------------

grpc::ServerWriteReactor<v1::GenerateEvent>* RuntimeService::Generate(
    grpc::CallbackServerContext* context, const v1::GenerateRequest* request) {
  auto* reactor = new GenerateReactor(std::make_shared<StreamSink>(*this, context->peer()));
  const std::shared_ptr<StreamSink>& sink = reactor->sink();
  // Every stream counts until its RPC completes (stream_closed), refused ones included.
  const size_t open = ++open_streams_;
  Status status = auth_.check(*context);
  if (status.ok() && open > config_.limits.max_streams) {
    status = Status(StatusCode::RESOURCE_EXHAUSTED, "too many concurrent streams (limit " +
                                                        std::to_string(config_.limits.max_streams) +
                                                        "); retry later");
  }
  auto job = std::make_shared<GenerationJob>();
  ModelSlot* slot = nullptr;
  if (status.ok()) status = prepare_generation(*context, *request, job.get(), &slot);
  if (!status.ok()) {
    sink->finish(status);
    return reactor;
  }
  job->sink = sink;
  const std::string request_id = job->request_id;
  job->on_done = [this, request_id] { unregister_job(request_id); };
  register_job(job, slot->scheduler.get());
  sink->attach(job, slot->scheduler.get());
  slot->scheduler->submit(std::move(job));
  return reactor;
}

Status RuntimeService::prepare_generation(const grpc::CallbackServerContext& context,
                                          const v1::GenerateRequest& request, GenerationJob* job,
                                          ModelSlot** out_slot) {
  (void)context;
  if (Status s = refuse_if_draining(); !s.ok()) return s;
  const Limits& limits = config_.limits;
  ModelSlot* slot = nullptr;
  if (!request.session_id().empty()) {
    if (Status s = check_session_id(request.session_id()); !s.ok()) return s;
    auto status = store_.status(request.session_id());
    if (!status) return Status(StatusCode::NOT_FOUND, "no session " + request.session_id());
    if (!request.model().empty() && request.model() != status->meta.model) {
      return Status(StatusCode::INVALID_ARGUMENT, "session " + request.session_id() +
                                                      " belongs to model " + status->meta.model +
                                                      ", not " + request.model().substr(0, 200));
    }
    if (Status s = slot_of_session(status->meta, &slot); !s.ok()) return s;
  } else if (Status s = resolve_model(request.model(), &slot); !s.ok()) {
    return s;
  }
  const HostedModel& model = slot->model;

  // The prompt.
  switch (request.prompt_case()) {
    case v1::GenerateRequest::kText:
      if (request.text().empty()) return Status(StatusCode::INVALID_ARGUMENT, "the prompt text is empty");
      // Every token holds at least one byte, so this bounds the work before tokenizing.
      if (request.text().size() > uint64_t(limits.max_prompt_tokens) * 64) {
        return Status(StatusCode::INVALID_ARGUMENT,
                      "the prompt is too long (" + std::to_string(request.text().size()) + " bytes)");
      }
      if (Status s = tokenize(model, request.text(), &job->prompt); !s.ok()) return s;
      break;
    case v1::GenerateRequest::kTokens:
      job->prompt.assign(request.tokens().ids().begin(), request.tokens().ids().end());
      if (Status s = check_token_ids(model, job->prompt.data(), job->prompt.size()); !s.ok()) return s;
      break;
    default:
      break;
  }
  if (job->prompt.empty()) {
    return Status(StatusCode::INVALID_ARGUMENT,
                  "a prompt is required (text or tokens, not empty): every turn starts by feeding one");
  }
  if (job->prompt.size() > limits.max_prompt_tokens) {
    return Status(StatusCode::INVALID_ARGUMENT,
                  "the prompt has " + std::to_string(job->prompt.size()) + " tokens; the limit is " +
                      std::to_string(limits.max_prompt_tokens));
  }

  // Stopping conditions.
  job->max_tokens = request.max_tokens() == 0 ? limits.default_max_tokens : request.max_tokens();
  if (job->max_tokens > limits.max_tokens) {
    return Status(StatusCode::INVALID_ARGUMENT, "max_tokens " + std::to_string(job->max_tokens) +
                                                    " exceeds the limit " +
                                                    std::to_string(limits.max_tokens));
  }
  if (static_cast<uint32_t>(request.stop_size()) > limits.max_stop_strings) {
    return Status(StatusCode::INVALID_ARGUMENT,
                  std::to_string(request.stop_size()) + " stop strings; the limit is " +
                      std::to_string(limits.max_stop_strings));
  }
  for (const auto& stop : request.stop()) {
    if (stop.empty()) return Status(StatusCode::INVALID_ARGUMENT, "a stop string is empty");
    if (stop.size() > limits.max_stop_bytes) {
      return Status(StatusCode::INVALID_ARGUMENT, "a stop string is longer than " +
                                                      std::to_string(limits.max_stop_bytes) + " bytes");
    }
    if (stop.find('\0') != std::string::npos) {
      return Status(StatusCode::INVALID_ARGUMENT, "a stop string contains a NUL byte");
    }
    job->stop.push_back(stop);
  }
  job->stop_at_eos = request.has_stop_at_eos() ? request.stop_at_eos() : true;
  if (!model.tokenizer && (!job->stop.empty() || job->stop_at_eos)) {
    if (!job->stop.empty()) {
      return Status(StatusCode::INVALID_ARGUMENT, "model " + model.id + " has no tokenizer: stop strings cannot be matched");
    }
    job->stop_at_eos = false;  // nothing to stop at
  }

  // Sampling; ranges are checked by the library when the scheduler applies them.
  const v1::SamplingParams& sp = request.sampling();
  rwkvrt_sampling_params& p = job->sampling.params;
  p.mode = sp.mode() == v1::SamplingParams::MODE_REFERENCE_PIPELINE ? RWKVRT_SAMPLING_REFERENCE_PIPELINE
                                                                     : RWKVRT_SAMPLING_STANDARD;
  if (sp.has_temperature()) p.temperature = sp.temperature();
  p.top_k = sp.top_k();
  if (sp.has_top_p()) p.top_p = sp.top_p();
  p.min_p = sp.min_p();
  if (sp.has_repetition_penalty()) p.repetition_penalty = sp.repetition_penalty();
  p.presence_penalty = sp.presence_penalty();
  p.frequency_penalty = sp.frequency_penalty();
  if (sp.has_penalty_decay()) p.penalty_decay = sp.penalty_decay();
  if (sp.has_penalty_last_n()) p.penalty_last_n = sp.penalty_last_n();
  p.seed = sp.has_seed() ? sp.seed() : random_seed();
  job->sampling.banned.assign(sp.banned_tokens().begin(), sp.banned_tokens().end());
  for (const auto& [id, bias] : sp.logit_bias()) {
    job->sampling.bias_ids.push_back(id);
    job->sampling.bias_values.push_back(bias);
  }

  job->request_id = new_request_id();
  // Last: once the session is locked, nothing above can fail any more.
  if (!request.session_id().empty()) {
    if (Status s = store_.acquire(request.session_id(), job->request_id, nullptr); !s.ok()) return s;
    job->session_id = request.session_id();
  }
  *out_slot = slot;
  return Status::OK;
}

void RuntimeService::register_job(const std::shared_ptr<GenerationJob>& job, Scheduler* scheduler) {
  std::lock_guard lock(jobs_mutex_);
  jobs_[job->request_id] = JobRef{job, scheduler};
}

void RuntimeService::unregister_job(const std::string& request_id) {
  std::lock_guard lock(jobs_mutex_);
  jobs_.erase(request_id);
}

void RuntimeService::cancel_all() {
  std::lock_guard lock(jobs_mutex_);
  for (auto& [id, ref] : jobs_) {
    if (auto job = ref.job.lock()) {
      job->cancel_requested = true;
      ref.scheduler->wake();
    }
  }
}

Status RuntimeService::Cancel(grpc::ServerContext* context, const v1::CancelRequest* request,
                              v1::CancelResponse* response) {
  return unary("Cancel", context, [&]() -> Status {
    std::string request_id;
    switch (request->target_case()) {
      case v1::CancelRequest::kRequestId:
        request_id = request->request_id();
        break;
      case v1::CancelRequest::kSessionId: {
        if (Status s = check_session_id(request->session_id()); !s.ok()) return s;
        if (!store_.status(request->session_id())) {
          return Status(StatusCode::NOT_FOUND, "no session " + request->session_id());
        }
        auto holder = store_.holder(request->session_id());
        if (holder && holder->rfind("r-", 0) == 0) request_id = *holder;
        break;
      }
      default:
        return Status(StatusCode::INVALID_ARGUMENT, "name a request_id or a session_id");
    }
    std::lock_guard lock(jobs_mutex_);
    auto it = jobs_.find(request_id);
    if (it == jobs_.end()) return Status::OK;
    if (auto job = it->second.job.lock()) {
      job->cancel_requested = true;
      it->second.scheduler->wake();
      response->set_cancelled(true);
    }
    return Status::OK;
  });
}

// ---- sessions ------------------------------------------------------------------------------------

Status RuntimeService::CreateSession(grpc::ServerContext* context, const v1::CreateSessionRequest* request,
                                     v1::SessionInfo* response) {
  return unary("CreateSession", context, [&]() -> Status {
    if (Status s = refuse_if_draining(); !s.ok()) return s;
    ModelSlot* slot = nullptr;
    if (Status s = resolve_model(request->model(), &slot); !s.ok()) return s;
    std::string state_file;
    if (request->initial_state_case() == v1::CreateSessionRequest::kStateFile) {
      const std::string& name = request->state_file();
      if (name.empty() || name.front() == '/' || name.find("..") != std::string::npos ||
          name.find('\0') != std::string::npos) {
        return Status(StatusCode::INVALID_ARGUMENT,
                      "state_file must be a relative name inside the daemon's initial-states directory");
      }
      state_file = config_.initial_states_dir + "/" + name;
    }
    SessionMeta meta;
    // The reservation counts one blob plus its header against the byte limit.
    if (Status s = store_.reserve(slot->model.id, slot->model.state_blob_bytes + 4096, &meta); !s.ok()) return s;
    std::vector<uint8_t> blob;
    const std::string* initial_blob =
        request->initial_state_case() == v1::CreateSessionRequest::kStateBlob ? &request->state_blob() : nullptr;
    Status status = slot->scheduler->call([&] {
      return slot->scheduler->create_session(meta, initial_blob, state_file.empty() ? nullptr : &state_file, &blob);
    });
    if (status.ok()) {
      status = store_.persist(meta, blob);
      if (!status.ok()) slot->scheduler->call([&] { slot->scheduler->drop_resident(meta.id); return Status::OK; });
    }
    if (!status.ok()) {
      store_.abandon(meta.id);
      return status;
    }
    store_.release(meta.id);
    log::info("session created", {{"session", meta.id}, {"model", meta.model},
                                   {"from", initial_blob ? "blob" : state_file.empty() ? "initial" : "state_file"}});
    return fill_session_info(meta.id, response);
  });
}

Status RuntimeService::ForkSession(grpc::ServerContext* context, const v1::ForkSessionRequest* request,
                                   v1::SessionInfo* response) {
  return unary("ForkSession", context, [&]() -> Status {
    if (Status s = refuse_if_draining(); !s.ok()) return s;
    if (Status s = check_session_id(request->session_id()); !s.ok()) return s;
    const std::string& source = request->session_id();
    SessionMeta source_meta;
    if (Status s = store_.acquire(source, "fork", &source_meta); !s.ok()) return s;
    ModelSlot* slot = nullptr;
    Status status = slot_of_session(source_meta, &slot);
    SessionMeta meta;
    if (status.ok()) status = store_.reserve(source_meta.model, slot->model.state_blob_bytes + 4096, &meta);
    if (!status.ok()) {
      store_.release(source);
      return status;
    }
    meta.tokens = source_meta.tokens;
    meta.turns = source_meta.turns;
    std::vector<uint8_t> blob;
    status = slot->scheduler->call([&] { return slot->scheduler->fork_session(source, meta, &blob); });
    if (status.ok()) {
      status = store_.persist(meta, blob);
      if (!status.ok()) slot->scheduler->call([&] { slot->scheduler->drop_resident(meta.id); return Status::OK; });
    }
    store_.release(source);
    if (!status.ok()) {
      store_.abandon(meta.id);
      return status;
    }
    store_.release(meta.id);
    log::info("session forked", {{"session", meta.id}, {"from", source}});
    return fill_session_info(meta.id, response);
  });
}

Status RuntimeService::ExportState(grpc::ServerContext* context, const v1::ExportStateRequest* request,
                                   v1::ExportStateResponse* response) {
  return unary("ExportState", context, [&]() -> Status {
    if (Status s = check_session_id(request->session_id()); !s.ok()) return s;
    const std::string& id = request->session_id();
    // Unlocked, a session's file holds exactly its state: export reads the file.
    if (Status s = store_.acquire(id, "export", nullptr); !s.ok()) return s;
    SessionMeta meta;
    std::vector<uint8_t> blob;
    Status status = store_.load(id, &meta, &blob);
    store_.release(id);
    if (!status.ok()) return status;
    if (blob.size() > config_.limits.max_message_bytes) {
      return Status(StatusCode::RESOURCE_EXHAUSTED, "the state blob exceeds the message size limit");
    }
    response->set_state_blob(blob.data(), blob.size());
    return fill_session_info(id, response->mutable_session());
  });
}

Status RuntimeService::ImportState(grpc::ServerContext* context, const v1::ImportStateRequest* request,
                                   v1::SessionInfo* response) {
  return unary("ImportState", context, [&]() -> Status {
    if (Status s = refuse_if_draining(); !s.ok()) return s;
    if (Status s = check_session_id(request->session_id()); !s.ok()) return s;
    if (request->state_blob().empty()) return Status(StatusCode::INVALID_ARGUMENT, "state_blob is empty");
    const std::string& id = request->session_id();
    SessionMeta meta;
    if (Status s = store_.acquire(id, "import", &meta); !s.ok()) return s;
    ModelSlot* slot = nullptr;
    Status status = slot_of_session(meta, &slot);
    meta.tokens = 0;
    meta.last_used_ms = unix_millis_now();
    std::vector<uint8_t> blob;
    if (status.ok()) {
      status = slot->scheduler->call([&] { return slot->scheduler->import_state(meta, request->state_blob(), &blob); });
    }
    if (status.ok()) {
      status = store_.persist(meta, blob);
      // The old file stays: the session goes back to it.
      if (!status.ok()) slot->scheduler->call([&] { slot->scheduler->drop_resident(id); return Status::OK; });
    }
    store_.release(id);
    if (!status.ok()) return status;
    return fill_session_info(id, response);
  });
}

Status RuntimeService::CloseSession(grpc::ServerContext* context, const v1::CloseSessionRequest* request,
                                    v1::CloseSessionResponse* /*response*/) {
  return unary("CloseSession", context, [&]() -> Status {
    if (Status s = check_session_id(request->session_id()); !s.ok()) return s;
    const std::string& id = request->session_id();
    SessionMeta meta;
    if (Status s = store_.acquire(id, "close", &meta); !s.ok()) return s;
    if (auto it = models_.find(meta.model); it != models_.end()) {
      Scheduler* scheduler = it->second->scheduler.get();
      scheduler->call([&] { scheduler->drop_resident(id); return Status::OK; });
    }
    Status status = store_.remove(id);
    if (!status.ok()) {
      store_.release(id);
      return status;
    }
    log::info("session closed", {{"session", id}});
    return Status::OK;
  });
}

Status RuntimeService::GetSession(grpc::ServerContext* context, const v1::GetSessionRequest* request,
                                  v1::SessionInfo* response) {
  return unary("GetSession", context, [&]() -> Status {
    if (Status s = check_session_id(request->session_id()); !s.ok()) return s;
    return fill_session_info(request->session_id(), response);
  });
}

Status RuntimeService::ListSessions(grpc::ServerContext* context, const v1::ListSessionsRequest* request,
                                    v1::ListSessionsResponse* response) {
  return unary("ListSessions", context, [&]() -> Status {
    for (const auto& s : store_.list(request->model())) {
      auto* info = response->add_sessions();
      info->set_session_id(s.meta.id);
      info->set_model(s.meta.model);
      info->set_created_unix_ms(s.meta.created_ms);
      info->set_last_used_unix_ms(s.meta.last_used_ms);
      info->set_turns(s.meta.turns);
      info->set_tokens(s.meta.tokens);
      info->set_state_bytes(s.file_bytes);
      info->set_resident(s.resident);
      info->set_generating(s.generating);
    }
    return Status::OK;
  });
}

// ---- tokenizer and models ------------------------------------------------------------------------

Status RuntimeService::Tokenize(grpc::ServerContext* context, const v1::TokenizeRequest* request,
                                v1::TokenizeResponse* response) {
  return unary("Tokenize", context, [&]() -> Status {
    ModelSlot* slot = nullptr;
    if (Status s = resolve_model(request->model(), &slot); !s.ok()) return s;
    if (request->text().size() > uint64_t(config_.limits.max_prompt_tokens) * 64) {
      return Status(StatusCode::INVALID_ARGUMENT,
                    "the text is too long (" + std::to_string(request->text().size()) + " bytes)");
    }
    std::vector<int32_t> ids;
    if (Status s = tokenize(slot->model, request->text(), &ids); !s.ok()) return s;
    response->mutable_token_ids()->Assign(ids.begin(), ids.end());
    return Status::OK;
  });
}

Status RuntimeService::Detokenize(grpc::ServerContext* context, const v1::DetokenizeRequest* request,
                                  v1::DetokenizeResponse* response) {
  return unary("Detokenize", context, [&]() -> Status {
    ModelSlot* slot = nullptr;
    if (Status s = resolve_model(request->model(), &slot); !s.ok()) return s;
    const HostedModel& model = slot->model;
    if (!model.tokenizer) {
      return Status(StatusCode::FAILED_PRECONDITION, "model " + model.id + " has no tokenizer");
    }
    const int32_t* ids = request->token_ids().data();
    const size_t n = static_cast<size_t>(request->token_ids_size());
    if (Status s = check_token_ids(model, ids, n); !s.ok()) return s;
    size_t needed = 0;
    rwkvrt_status s = rwkvrt_tokenizer_decode(model.tokenizer, ids, n, nullptr, 0, &needed);
    if (s != RWKVRT_OK && s != RWKVRT_ERR_BUFFER_TOO_SMALL) return client_data_status("detokenize", s);
    std::string text(needed, '\0');
    size_t size = 0;
    if (needed > 0) {
      s = rwkvrt_tokenizer_decode(model.tokenizer, ids, n, text.data(), text.size(), &size);
      if (s != RWKVRT_OK) return client_data_status("detokenize", s);
    }
    text.resize(size);
    response->set_text(std::move(text));
    return Status::OK;
  });
}

Status RuntimeService::ListModels(grpc::ServerContext* context, const v1::ListModelsRequest* /*request*/,
                                  v1::ListModelsResponse* response) {
  return unary("ListModels", context, [&]() -> Status {
    for (const auto& [id, slot] : models_) {
      const HostedModel& m = slot->model;
      auto* info = response->add_models();
      info->set_id(m.id);
      info->set_file_name(m.file_name);
      info->set_rwkv_version(m.info.version_name ? m.info.version_name : "");
      info->set_file_format(m.info.file_format ? m.info.file_format : "");
      info->set_n_layer(m.info.n_layer);
      info->set_n_embd(m.info.n_embd);
      info->set_n_head(m.info.n_head);
      info->set_head_size(m.info.head_size);
      info->set_n_vocab(m.info.n_vocab);
      info->set_n_params(m.info.n_params);
      info->set_backend(m.info.backend ? m.info.backend : "");
      info->set_tokenizer(m.tokenizer_kind);
      info->set_eos_token_id(m.eos_id);
      info->set_state_blob_bytes(m.state_blob_bytes);
      info->set_max_batch(config_.limits.max_batch);
    }
    return Status::OK;
  });
}

}  // namespace rwkvrtd
