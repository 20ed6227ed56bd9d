// Continuous batching for one model: a thread that owns every session of the model, feeds
// prompts in bounded chunks between decode steps, and advances all running generations together
// with one rwkvrt_batch_generate_next call per step.  Generations join and leave between steps.
//
// Only the scheduler thread touches the model's rwkvrt sessions; other threads hand it work
// (submit, call) and read what it publishes.  A session operation is serialised by the
// SessionStore's per-session lock, which the caller takes before handing work over.
#pragma once

#include "config.h"
#include "metrics.h"
#include "model_host.h"
#include "sdk.h"
#include "session_store.h"

#include "rwkvrt/v1/runtime.pb.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace rwkvrtd {

// Where a generation's events go (the gRPC stream).  Thread-safe.
class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void send(rwkvrt::v1::GenerateEvent event) = 0;
  // Ends the stream with `status` after all events sent before it.  Called exactly once.
  virtual void finish(const grpc::Status& status) = 0;
};

// Sampling parameters that own the arrays rwkvrt_sampling_params points into.
struct SamplingSpec {
  rwkvrt_sampling_params params = rwkvrt_sampling_params_default();
  std::vector<int32_t> banned;
  std::vector<int32_t> bias_ids;
  std::vector<float> bias_values;
  // params with its pointers aimed at the vectors above (valid while this object lives).
  rwkvrt_sampling_params view() const;
};

// One Generate request, from the service to the scheduler.
struct GenerationJob {
  std::string request_id;      // "r-..."
  std::string session_id;      // empty: a one-off generation on a temporary session
  std::vector<int32_t> prompt; // non-empty, ids checked against the vocabulary
  SamplingSpec sampling;
  uint32_t max_tokens = 0;
  std::vector<std::string> stop;
  bool stop_at_eos = true;
  std::shared_ptr<EventSink> sink;
  std::chrono::steady_clock::time_point arrived = std::chrono::steady_clock::now();
  // Set by any thread (Cancel, disconnect, deadline, shutdown); the scheduler stops the
  // generation before its next token.
  std::atomic<bool> cancel_requested{false};
  // Runs once when the job is over, after its stream got its last event (and, for a session,
  // after the session lock was released).
  std::function<void()> on_done;
};

// Runs tasks on one background thread, in order: session files are written there so the decode
// loop never waits for a disk.  stop() runs every queued task, then joins.
class Persister {
 public:
  Persister();
  ~Persister();
  void submit(std::function<void()> task);
  void stop();

 private:
  void run();
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::thread thread_;
};

class Scheduler {
 public:
  Scheduler(HostedModel& model, SessionStore& store, Persister& persister, Metrics& metrics,
            const Limits& limits);
  ~Scheduler();

  void start();
  // Asks every generation to stop (each ends as cancelled, sessions persisted), runs the
  // remaining commands, then joins the thread.  Later submissions fail with UNAVAILABLE.
  void stop();

  // Queues a generation.  The job's session (if any) must be locked by the caller; the scheduler
  // releases it when the job ends.  On refusal (stopping) the job is finished with UNAVAILABLE.
  void submit(std::shared_ptr<GenerationJob> job);

  // Wakes the thread so it notices a cancel_requested flag before its next step.
  void wake();

  // Runs `fn` on the scheduler thread between two steps and returns its status; UNAVAILABLE if
  // the scheduler has stopped.
  grpc::Status call(std::function<grpc::Status()> fn);

  // ---- session operations; run them through call().  The caller holds the session lock. ----

  // Makes a new session (`meta` from SessionStore::reserve) from the model's initial state, a
  // state blob (if `blob`) or a state-tuning file (if `state_file`), keeps it resident and
  // returns its state blob to persist.
  grpc::Status create_session(const SessionMeta& meta, const std::string* blob,
                              const std::string* state_file, std::vector<uint8_t>* out_blob);
  // A copy of `source_id` as the new session `meta`; returns the new session's blob.
  grpc::Status fork_session(const std::string& source_id, const SessionMeta& meta,
                            std::vector<uint8_t>* out_blob);
  // Replaces the state of `meta.id` with `blob` (validated completely first); returns the blob
  // to persist (as the library re-serialises it).
  grpc::Status import_state(const SessionMeta& meta, const std::string& blob,
                            std::vector<uint8_t>* out_blob);
  // Frees the in-memory session, if resident (its file is untouched).
  void drop_resident(const std::string& id);

  // Observed by metrics; any thread.
  size_t queued() const { return queued_.load(); }
  size_t running() const { return running_.load(); }

 private:
  struct Resident {
    SessionPtr session;
    SessionMeta meta;
    uint64_t last_used = 0;  // scheduler tick, for LRU eviction
  };
  // A job admitted to the scheduler thread.
  struct Running {
    std::shared_ptr<GenerationJob> job;
    rwkvrt_session* session = nullptr;
    SessionPtr owned;              // the temporary session of a one-off generation
    bool begun = false;            // sampler set and `started` sent
    size_t fed = 0;                // prompt tokens fed so far
    std::chrono::steady_clock::time_point prefill_start, decode_start;
    std::vector<std::string> stop_storage;
    std::vector<const char*> stop_pointers;
  };

  void run();
  bool has_work_locked() const;
  void handle_cancels();
  void admit();
  void prefill();
  void decode_step();

  grpc::Status begin(Running& r);
  // Emits the piece's text and token (if any) to the stream.
  void forward_piece(Running& r, const rwkvrt_generate_piece& piece);
  // The generation finished with `reason` after `generated` tokens: persist (sessions) and send
  // the final event.
  void complete(std::unique_ptr<Running> r, rwkvrt_finish_reason reason, uint32_t generated);
  // Ends a job that failed.  `events_sent`: whether `started` went out (then an `error` event
  // precedes the status).  A session's in-memory state is dropped (it reloads from its file).
  void fail(std::unique_ptr<Running> r, const grpc::Status& status);
  // Ends a job cancelled before it generated anything: the session is left as it was.
  void cancel_before_generation(std::unique_ptr<Running> r);
  // Sends the last event(s), releases the session and runs on_done.  Any thread.
  void conclude(const std::shared_ptr<GenerationJob>& job, const rwkvrt::v1::GenerateEvent* last,
                const grpc::Status& status);

  grpc::Status ensure_resident(const std::string& id, Resident** out);
  void insert_resident(const SessionMeta& meta, SessionPtr session);
  void evict_idle();
  grpc::Status save_blob(rwkvrt_session* session, std::vector<uint8_t>* out);

  HostedModel& model_;
  SessionStore& store_;
  Persister& persister_;
  Metrics& metrics_;
  const Limits limits_;
  BatchPtr batch_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<GenerationJob>> incoming_;
  std::deque<std::function<void()>> commands_;
  bool stopping_ = false;
  bool stopped_ = false;
  std::thread thread_;

  // Scheduler-thread state.
  std::deque<std::unique_ptr<Running>> prefilling_;
  std::vector<std::unique_ptr<Running>> active_;
  std::unordered_map<std::string, Resident> residents_;
  uint64_t tick_ = 0;
  std::vector<rwkvrt_session*> step_sessions_;
  std::vector<rwkvrt_generate_piece> step_pieces_;

  std::atomic<size_t> queued_{0};
  std::atomic<size_t> running_{0};
};

}  // namespace rwkvrtd
