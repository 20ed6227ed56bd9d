#include "server.h"

#include "log.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace rwkvrtd {
namespace {

constexpr const char* kServiceName = "rwkvrt.v1.Runtime";

std::string read_file(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(std::string("cannot read the ") + what + " " + path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

Daemon::Daemon(Config config, Authenticator auth) : config_(std::move(config)), auth_(std::move(auth)) {}

Daemon::~Daemon() {
  // shutdown() normally ran; this covers a failed start().
  if (server_) server_->Shutdown();
  for (auto& [id, slot] : models_) {
    if (slot->scheduler) slot->scheduler->stop();
  }
  if (persister_) persister_->stop();
  if (metrics_http_) metrics_http_->stop();
}

void Daemon::start() {
  store_ = std::make_unique<SessionStore>(config_.state_dir, config_.limits.max_sessions,
                                          config_.limits.max_state_bytes);
  store_->open();
  persister_ = std::make_unique<Persister>();

  const LoadOptions load_options{config_.backend, config_.device, config_.threads,
                                 config_.matmul == "fast" ? RWKVRT_MATMUL_FAST
                                                          : RWKVRT_MATMUL_EXACT};
  for (const auto& model_config : config_.models) {
    const auto t0 = std::chrono::steady_clock::now();
    auto slot = std::make_unique<ModelSlot>();
    slot->model = load_model(model_config, load_options);
    slot->scheduler = std::make_unique<Scheduler>(slot->model, *store_, *persister_, metrics_, config_.limits);
    slot->scheduler->start();
    const HostedModel& m = slot->model;
    log::info("model loaded",
              {{"model", m.id}, {"path", model_config.path},
               {"rwkv_version", m.info.version_name ? m.info.version_name : ""},
               {"layers", m.info.n_layer}, {"width", m.info.n_embd}, {"vocab", m.info.n_vocab},
               {"backend", m.info.backend ? m.info.backend : ""}, {"tokenizer", m.tokenizer_kind},
               {"state_blob_bytes", m.state_blob_bytes},
               {"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()}});
    models_.emplace(model_config.id, std::move(slot));
  }

  service_ = std::make_unique<RuntimeService>(config_, models_, *store_, metrics_, auth_);

  // Gauges read live state at scrape time.
  metrics_.add_gauge("rwkvrtd_queue_depth", "Generations waiting for their prompt to be fed.", [this] {
    std::vector<GaugeSample> out;
    for (const auto& [id, slot] : models_) out.push_back({{{"model", id}}, double(slot->scheduler->queued())});
    return out;
  });
  metrics_.add_gauge("rwkvrtd_running_generations", "Generations in the decode batch.", [this] {
    std::vector<GaugeSample> out;
    for (const auto& [id, slot] : models_) out.push_back({{{"model", id}}, double(slot->scheduler->running())});
    return out;
  });
  metrics_.add_gauge("rwkvrtd_open_streams", "Generate streams open.", [this] {
    return std::vector<GaugeSample>{{{}, double(service_->open_streams())}};
  });
  metrics_.add_gauge("rwkvrtd_sessions", "Persistent sessions (resident or on disk).", [this] {
    return std::vector<GaugeSample>{{{}, double(store_->count())}};
  });
  metrics_.add_gauge("rwkvrtd_active_sessions", "Sessions resident in memory.", [this] {
    return std::vector<GaugeSample>{{{}, double(store_->resident_count())}};
  });
  metrics_.add_gauge("rwkvrtd_state_bytes", "Bytes of session files in the state directory.", [this] {
    return std::vector<GaugeSample>{{{}, double(store_->bytes())}};
  });

  if (!is_loopback_address(config_.listen) && !auth_.enabled() && !config_.allow_unauthenticated_remote) {
    throw std::runtime_error("refusing to listen on " + config_.listen +
                             " without authentication: set --auth-token-file (or RWKVRTD_AUTH_TOKEN), "
                             "or pass --allow-unauthenticated-remote");
  }
  std::shared_ptr<grpc::ServerCredentials> credentials;
  if (!config_.tls_cert.empty()) {
    grpc::SslServerCredentialsOptions tls;
    tls.pem_key_cert_pairs.push_back(
        {read_file(config_.tls_key, "TLS key"), read_file(config_.tls_cert, "TLS certificate")});
    credentials = grpc::SslServerCredentials(tls);
  } else {
    credentials = grpc::InsecureServerCredentials();
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(config_.listen, credentials, &port_);
  builder.RegisterService(service_.get());
  builder.SetMaxReceiveMessageSize(static_cast<int>(config_.limits.max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(config_.limits.max_message_bytes + (1 << 20)));
  // Keepalive pings find clients that vanished without closing their connection, so their
  // generations are cancelled instead of running to max_tokens.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  server_ = builder.BuildAndStart();
  if (!server_ || port_ == 0) throw std::runtime_error("cannot listen on " + config_.listen);
  server_->GetHealthCheckService()->SetServingStatus(true);
  server_->GetHealthCheckService()->SetServingStatus(kServiceName, true);

  if (!config_.metrics_listen.empty()) {
    metrics_http_ = std::make_unique<MetricsHttpServer>(metrics_);
    metrics_http_->start(config_.metrics_listen);
  }
  log::info("serving", {{"listen", config_.listen}, {"port", port_}, {"tls", !config_.tls_cert.empty()},
                        {"auth", auth_.enabled()}, {"models", models_.size()},
                        {"metrics_port", metrics_port()}, {"state_dir", config_.state_dir}});
}

void Daemon::shutdown() {
  log::info("shutting down", {{"open_streams", service_ ? service_->open_streams() : 0},
                              {"grace_s", config_.shutdown_grace_s}});
  if (server_) {
    server_->GetHealthCheckService()->SetServingStatus(false);
    server_->GetHealthCheckService()->SetServingStatus(kServiceName, false);
  }
  if (service_) {
    service_->begin_drain();
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                              std::chrono::duration<double>(config_.shutdown_grace_s));
    while (service_->open_streams() > 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  // Whatever still runs is cancelled; cancelled session turns are persisted like finished ones.
  for (auto& [id, slot] : models_) slot->scheduler->stop();
  persister_->stop();
  if (server_) {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    server_->Wait();
    server_.reset();
  }
  if (metrics_http_) metrics_http_->stop();
  log::info("stopped", {{"sessions", store_ ? store_->count() : 0}});
}

}  // namespace rwkvrtd
