// The daemon's configuration: what rwkvrtd's flags and its config file set (see daemon/README.md).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace rwkvrtd {

struct ModelConfig {
  std::string id;    // the name requests use; default: the file name without its extension
  std::string path;  // checkpoint file
};

struct Limits {
  uint32_t max_sessions = 1024;              // persistent sessions, resident or on disk
  uint64_t max_state_bytes = 4ull << 30;     // bytes of session files in the state directory
  uint32_t max_resident_sessions = 256;      // sessions kept in memory; idle ones beyond go to disk
  uint32_t max_streams = 64;                 // concurrent Generate streams (running or queued)
  uint32_t max_batch = 32;                   // streams decoded together in one step, per model
  uint32_t max_prompt_tokens = 16384;        // tokens in one prompt
  uint32_t max_tokens = 4096;                // the largest max_tokens a request may ask for
  uint32_t default_max_tokens = 256;         // when a request leaves max_tokens at 0
  uint32_t max_stop_strings = 16;
  uint32_t max_stop_bytes = 256;             // per stop string
  uint64_t max_message_bytes = 64ull << 20;  // largest request message (state blobs included)
  uint32_t prefill_chunk_tokens = 128;       // prompt tokens fed between two decode steps
};

struct Config {
  std::vector<ModelConfig> models;
  std::string listen = "127.0.0.1:50551";
  std::string state_dir;            // required: where sessions persist
  std::string initial_states_dir;   // state-tuning files for CreateSession; default <state_dir>/initial-states
  std::string auth_token_file;      // empty: token from $RWKVRTD_AUTH_TOKEN, else no auth
  bool allow_unauthenticated_remote = false;  // permit a non-loopback listen address without a token
  std::string tls_cert;             // PEM; with tls_key enables TLS
  std::string tls_key;
  std::string metrics_listen;       // "HOST:PORT" of the Prometheus endpoint; empty = off
  std::string backend = "auto";     // rwkvrt backend for every model
  int32_t device = 0;
  int32_t threads = 0;              // CPU threads per model; 0 = all cores
  std::string matmul = "exact";     // matmul precision of every model: exact or fast
  double shutdown_grace_s = 10.0;   // on SIGTERM, streams get this long to finish before cancel
  std::string log_level = "info";
  std::string log_format = "json";
  Limits limits;
};

// "ID=PATH" or "PATH" (the id is then the file name without its extension).
ModelConfig parse_model_spec(const std::string& spec);

// Throws std::invalid_argument naming the first problem (no model, duplicate ids, a TLS key
// without a certificate, a zero limit, ...).  Fills defaults that depend on other fields.
void finalize_config(Config& config);

// True for "127.0.0.1:N", "[::1]:N", "localhost:N" and "unix:..." addresses.
bool is_loopback_address(const std::string& listen);

}  // namespace rwkvrtd
