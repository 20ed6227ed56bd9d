// rwkvrtd — serves RWKV models over gRPC.  Flags and the config file: see daemon/README.md.
#include "auth.h"
#include "config.h"
#include "log.h"
#include "server.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <pthread.h>
#include <unistd.h>

namespace {

// Writes `text` to `path` through a temporary file and a rename, so a reader never sees half.
void write_file_atomically(const std::string& path, const std::string& text) {
  const std::string temp = path + ".tmp";
  {
    std::ofstream out(temp, std::ios::trunc);
    out << text;
    if (!out) throw std::runtime_error("cannot write " + temp);
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) throw std::runtime_error("cannot write " + path);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace rwkvrtd;
  Config config;
  std::vector<std::string> model_specs;
  std::string ready_file;

  CLI::App app{"rwkvrtd: serves RWKV models over gRPC (rwkvrt.v1.Runtime)", "rwkvrtd"};
  app.set_version_flag("--version", std::string("rwkvrtd ") + RWKVRTD_VERSION);
  app.set_config("--config", "", "Read options from this TOML file (keys as the long flags)");
  app.add_option("--model", model_specs, "Model checkpoint to serve, as [ID=]PATH; repeat for more")
      ->type_name("[ID=]PATH");
  app.add_option("--listen", config.listen, "Address to serve on, HOST:PORT (port 0: any free one)")
      ->capture_default_str();
  app.add_option("--state-dir", config.state_dir, "Directory where sessions persist")->type_name("DIR");
  app.add_option("--initial-states-dir", config.initial_states_dir,
                 "Directory of state-tuning files CreateSession may name (default STATE_DIR/initial-states)")
      ->type_name("DIR");
  app.add_option("--auth-token-file", config.auth_token_file,
                 "File of accepted bearer tokens, one per line (else $RWKVRTD_AUTH_TOKEN, else no auth)")
      ->type_name("FILE");
  app.add_flag("--allow-unauthenticated-remote", config.allow_unauthenticated_remote,
               "Permit a non-loopback listen address without a token");
  app.add_option("--tls-cert", config.tls_cert, "PEM certificate chain; enables TLS with --tls-key")
      ->type_name("FILE");
  app.add_option("--tls-key", config.tls_key, "PEM private key")->type_name("FILE");
  app.add_option("--metrics-listen", config.metrics_listen,
                 "Serve Prometheus metrics at http://HOST:PORT/metrics (off if unset)")
      ->type_name("HOST:PORT");
  app.add_option("--backend", config.backend, "rwkvrt backend for the models (auto, cpu, cuda, ...)")
      ->capture_default_str();
  app.add_option("--device", config.device, "Device index within the backend")->capture_default_str();
  app.add_option("--threads", config.threads, "CPU threads per model (0: all cores)")->capture_default_str();
  app.add_option("--matmul", config.matmul,
                 "Matmul precision: exact (fp32 activations) or fast (GPU: large batches round "
                 "activations to the f16/bf16 weights for tensor cores; see RWKVRT_MATMUL_FAST)")
      ->check(CLI::IsMember({"exact", "fast"}))
      ->capture_default_str();
  Limits& l = config.limits;
  app.add_option("--max-sessions", l.max_sessions, "Persistent sessions at most")->capture_default_str();
  app.add_option("--max-state-bytes", l.max_state_bytes, "Bytes of session files at most")->capture_default_str();
  app.add_option("--max-resident-sessions", l.max_resident_sessions,
                 "Sessions kept in memory; idle ones beyond are evicted to disk")->capture_default_str();
  app.add_option("--max-streams", l.max_streams, "Concurrent Generate streams at most")->capture_default_str();
  app.add_option("--max-batch", l.max_batch, "Streams decoded together per model")->capture_default_str();
  app.add_option("--max-prompt-tokens", l.max_prompt_tokens, "Tokens in one prompt at most")->capture_default_str();
  app.add_option("--max-tokens", l.max_tokens, "Largest max_tokens a request may ask for")->capture_default_str();
  app.add_option("--default-max-tokens", l.default_max_tokens, "max_tokens when a request sets 0")
      ->capture_default_str();
  app.add_option("--max-stop-strings", l.max_stop_strings, "Stop strings per request")->capture_default_str();
  app.add_option("--max-message-bytes", l.max_message_bytes, "Largest request message")->capture_default_str();
  app.add_option("--prefill-chunk-tokens", l.prefill_chunk_tokens,
                 "Prompt tokens fed between two decode steps while streams run")->capture_default_str();
  app.add_option("--shutdown-grace", config.shutdown_grace_s,
                 "Seconds running streams get to finish on SIGTERM before they are cancelled")
      ->capture_default_str();
  app.add_option("--log-level", config.log_level, "debug, info, warn or error")->capture_default_str();
  app.add_option("--log-format", config.log_format, "json or text")->capture_default_str();
  app.add_option("--ready-file", ready_file,
                 "Once serving, write {\"port\":N,\"metrics_port\":M,\"pid\":P} to this file")
      ->type_name("FILE");
  CLI11_PARSE(app, argc, argv);

  log::Level level = log::Level::info;
  if (!log::parse_level(config.log_level, &level)) {
    std::fprintf(stderr, "rwkvrtd: --log-level must be debug, info, warn or error\n");
    return 2;
  }
  log::configure(level, config.log_format == "text" ? log::Format::text : log::Format::json);
  log::capture_library_log();

  Authenticator auth;
  try {
    for (const auto& spec : model_specs) config.models.push_back(parse_model_spec(spec));
    finalize_config(config);
    if (!config.auth_token_file.empty()) {
      auth = Authenticator::from_file(config.auth_token_file);
    } else if (const char* token = std::getenv("RWKVRTD_AUTH_TOKEN"); token && *token) {
      auth = Authenticator({token});
    }
  } catch (const std::exception& e) {
    log::error("bad configuration", {{"error", e.what()}});
    return 2;
  }

  // Termination signals are taken by sigwait below, not by whichever thread they land on: block
  // them before any thread starts, so every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  Daemon daemon(config, std::move(auth));
  try {
    daemon.start();
    if (!ready_file.empty()) {
      write_file_atomically(ready_file, nlohmann::json{{"port", daemon.port()},
                                                       {"metrics_port", daemon.metrics_port()},
                                                       {"pid", static_cast<int>(getpid())}}
                                            .dump());
    }
  } catch (const std::exception& e) {
    log::error("cannot start", {{"error", e.what()}});
    return 1;
  }

  int received = 0;
  sigwait(&signals, &received);
  log::info("signal received", {{"signal", received == SIGTERM ? "SIGTERM" : "SIGINT"}});
  daemon.shutdown();
  return 0;
}
