#include "config.h"

#include <set>
#include <stdexcept>

namespace rwkvrtd {

ModelConfig parse_model_spec(const std::string& spec) {
  ModelConfig model;
  const auto eq = spec.find('=');
  // A '=' before any '/' separates an id; a path may itself contain '=' further on.
  const auto slash = spec.find('/');
  if (eq != std::string::npos && (slash == std::string::npos || eq < slash)) {
    model.id = spec.substr(0, eq);
    model.path = spec.substr(eq + 1);
  } else {
    model.path = spec;
    const auto base_start = spec.find_last_of('/');
    std::string base = base_start == std::string::npos ? spec : spec.substr(base_start + 1);
    const auto dot = base.find_last_of('.');
    model.id = (dot == std::string::npos || dot == 0) ? base : base.substr(0, dot);
  }
  return model;
}

static void require_positive(uint64_t value, const char* name) {
  if (value == 0) throw std::invalid_argument(std::string(name) + " must be greater than 0");
}

void finalize_config(Config& config) {
  if (config.models.empty()) throw std::invalid_argument("no model: pass --model PATH");
  std::set<std::string> ids;
  for (const auto& model : config.models) {
    if (model.id.empty() || model.path.empty()) {
      throw std::invalid_argument("a model needs an id and a path (--model [ID=]PATH)");
    }
    for (char c : model.id) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '_' || c == '.';
      if (!ok) throw std::invalid_argument("model id '" + model.id + "' may hold only [A-Za-z0-9._-]");
    }
    if (!ids.insert(model.id).second) {
      throw std::invalid_argument("two models share the id '" + model.id + "'");
    }
  }
  if (config.state_dir.empty()) throw std::invalid_argument("no state directory: pass --state-dir DIR");
  if (config.initial_states_dir.empty()) config.initial_states_dir = config.state_dir + "/initial-states";
  if (config.tls_cert.empty() != config.tls_key.empty()) {
    throw std::invalid_argument("TLS needs both --tls-cert and --tls-key");
  }
  const Limits& l = config.limits;
  require_positive(l.max_sessions, "max_sessions");
  require_positive(l.max_state_bytes, "max_state_bytes");
  require_positive(l.max_resident_sessions, "max_resident_sessions");
  require_positive(l.max_streams, "max_streams");
  require_positive(l.max_batch, "max_batch");
  require_positive(l.max_prompt_tokens, "max_prompt_tokens");
  require_positive(l.max_tokens, "max_tokens");
  require_positive(l.default_max_tokens, "default_max_tokens");
  require_positive(l.max_stop_bytes, "max_stop_bytes");
  require_positive(l.max_message_bytes, "max_message_bytes");
  require_positive(l.prefill_chunk_tokens, "prefill_chunk_tokens");
  if (l.default_max_tokens > l.max_tokens) {
    throw std::invalid_argument("default_max_tokens exceeds max_tokens");
  }
  if (l.max_message_bytes > (1ull << 31) - 1) {
    throw std::invalid_argument("max_message_bytes must stay below 2 GiB (a gRPC limit)");
  }
  if (config.shutdown_grace_s < 0) throw std::invalid_argument("shutdown_grace must be >= 0");
  if (config.log_format != "json" && config.log_format != "text") {
    throw std::invalid_argument("log_format must be json or text");
  }
}

bool is_loopback_address(const std::string& listen) {
  if (listen.rfind("unix:", 0) == 0) return true;
  std::string host = listen;
  const auto colon = listen.find_last_of(':');
  if (colon != std::string::npos) host = listen.substr(0, colon);
  if (host == "localhost" || host == "[::1]" || host == "::1") return true;
  return host.rfind("127.", 0) == 0;
}

}  // namespace rwkvrtd
