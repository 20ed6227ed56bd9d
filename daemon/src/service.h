// The rwkvrt.v1.Runtime service: request validation, authentication, limits and the mapping of
// every failure to its gRPC status.  Generate is a callback (reactor) method so that thousands of
// idle streams cost no threads and a cancellation is seen the moment it happens; the other
// methods are short synchronous calls.
#pragma once

#include "auth.h"
#include "config.h"
#include "metrics.h"
#include "model_host.h"
#include "scheduler.h"
#include "session_store.h"

#include "rwkvrt/v1/runtime.grpc.pb.h"

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace rwkvrtd {

// A served model and the scheduler that owns its sessions.
struct ModelSlot {
  HostedModel model;
  std::unique_ptr<Scheduler> scheduler;
};

using ModelMap = std::map<std::string, std::unique_ptr<ModelSlot>>;

// Starts stream writes on a thread of its own: the decode loop only queues events and never
// spends its time inside gRPC (serialisation, system calls) while every stream waits for it.
class WriteDispatcher {
 public:
  WriteDispatcher();
  ~WriteDispatcher();
  // Runs `task` soon on the dispatcher thread, in order.
  void schedule(std::function<void()> task);

 private:
  void run();
  std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::thread thread_;
};

// "OK", "INVALID_ARGUMENT", ... for logs and metrics.
const char* status_code_name(grpc::StatusCode code);

class RuntimeService final
    : public rwkvrt::v1::Runtime::WithCallbackMethod_Generate<rwkvrt::v1::Runtime::Service> {
 public:
  RuntimeService(const Config& config, ModelMap& models, SessionStore& store, Metrics& metrics,
                 const Authenticator& auth);

  grpc::ServerWriteReactor<rwkvrt::v1::GenerateEvent>* Generate(
      grpc::CallbackServerContext* context, const rwkvrt::v1::GenerateRequest* request) override;

  grpc::Status Cancel(grpc::ServerContext* context, const rwkvrt::v1::CancelRequest* request,
                      rwkvrt::v1::CancelResponse* response) override;
  grpc::Status CreateSession(grpc::ServerContext* context,
                             const rwkvrt::v1::CreateSessionRequest* request,
                             rwkvrt::v1::SessionInfo* response) override;
  grpc::Status ForkSession(grpc::ServerContext* context, const rwkvrt::v1::ForkSessionRequest* request,
                           rwkvrt::v1::SessionInfo* response) override;
  grpc::Status ExportState(grpc::ServerContext* context, const rwkvrt::v1::ExportStateRequest* request,
                           rwkvrt::v1::ExportStateResponse* response) override;
  grpc::Status ImportState(grpc::ServerContext* context, const rwkvrt::v1::ImportStateRequest* request,
                           rwkvrt::v1::SessionInfo* response) override;
  grpc::Status CloseSession(grpc::ServerContext* context,
                            const rwkvrt::v1::CloseSessionRequest* request,
                            rwkvrt::v1::CloseSessionResponse* response) override;
  grpc::Status GetSession(grpc::ServerContext* context, const rwkvrt::v1::GetSessionRequest* request,
                          rwkvrt::v1::SessionInfo* response) override;
  grpc::Status ListSessions(grpc::ServerContext* context,
                            const rwkvrt::v1::ListSessionsRequest* request,
                            rwkvrt::v1::ListSessionsResponse* response) override;
  grpc::Status Tokenize(grpc::ServerContext* context, const rwkvrt::v1::TokenizeRequest* request,
                        rwkvrt::v1::TokenizeResponse* response) override;
  grpc::Status Detokenize(grpc::ServerContext* context, const rwkvrt::v1::DetokenizeRequest* request,
                          rwkvrt::v1::DetokenizeResponse* response) override;
  grpc::Status ListModels(grpc::ServerContext* context, const rwkvrt::v1::ListModelsRequest* request,
                          rwkvrt::v1::ListModelsResponse* response) override;

  // Shutdown, first step: new generations and session changes are refused with UNAVAILABLE.
  void begin_drain() { draining_ = true; }
  // Asks every running or queued generation to stop (each ends as cancelled).
  void cancel_all();
  // Generate streams whose RPC has not completed yet.
  size_t open_streams() const { return open_streams_.load(); }

  // Called by a stream when its RPC is complete.
  void stream_closed() { --open_streams_; }
  WriteDispatcher& dispatcher() { return dispatcher_; }
  void count_request(const char* method, const grpc::Status& status);

 private:
  // Fills `job` from `request` and locks its session; on error nothing is held.
  grpc::Status prepare_generation(const grpc::CallbackServerContext& context,
                                  const rwkvrt::v1::GenerateRequest& request,
                                  GenerationJob* job, ModelSlot** slot);
  // The model a request names; an empty name means the only model, if there is one.
  grpc::Status resolve_model(const std::string& name, ModelSlot** out);
  // The slot serving an existing session's model.
  grpc::Status slot_of_session(const SessionMeta& meta, ModelSlot** out);
  grpc::Status fill_session_info(const std::string& id, rwkvrt::v1::SessionInfo* out);
  grpc::Status check_session_id(const std::string& id) const;
  grpc::Status refuse_if_draining() const;

  // Runs a unary handler: authentication, exceptions, metrics and a log line.
  template <class Body>
  grpc::Status unary(const char* method, grpc::ServerContext* context, Body&& body);

  void register_job(const std::shared_ptr<GenerationJob>& job, Scheduler* scheduler);
  void unregister_job(const std::string& request_id);

  const Config& config_;
  ModelMap& models_;
  SessionStore& store_;
  Metrics& metrics_;
  const Authenticator& auth_;
  std::atomic<bool> draining_{false};
  std::atomic<size_t> open_streams_{0};
  WriteDispatcher dispatcher_;

  struct JobRef {
    std::weak_ptr<GenerationJob> job;
    Scheduler* scheduler = nullptr;
  };
  std::mutex jobs_mutex_;
  std::unordered_map<std::string, JobRef> jobs_;  // by request id
};

}  // namespace rwkvrtd
