// The daemon as a whole: models, schedulers, the session store, the gRPC server (with health and
// reflection), the metrics endpoint, and the order in which they start and stop.
#pragma once

#include "auth.h"
#include "config.h"
#include "metrics.h"
#include "scheduler.h"
#include "service.h"
#include "session_store.h"

#include <grpcpp/server.h>

#include <memory>

namespace rwkvrtd {

class Daemon {
 public:
  Daemon(Config config, Authenticator auth);
  ~Daemon();

  // Opens the state directory, loads every model, starts a scheduler per model and starts
  // serving.  Throws std::runtime_error (with the reason) if any of it fails.
  void start();

  // Graceful stop: health turns NOT_SERVING and new work is refused; running generations get
  // shutdown_grace_s to finish, then are cancelled; every turn is persisted; then the server
  // stops.  Blocks until done.  Call once.
  void shutdown();

  int port() const { return port_; }
  int metrics_port() const { return metrics_http_ ? metrics_http_->port() : 0; }

 private:
  Config config_;
  Authenticator auth_;
  Metrics metrics_;
  std::unique_ptr<SessionStore> store_;
  std::unique_ptr<Persister> persister_;
  ModelMap models_;
  std::unique_ptr<RuntimeService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<MetricsHttpServer> metrics_http_;
  int port_ = 0;
};

}  // namespace rwkvrtd
