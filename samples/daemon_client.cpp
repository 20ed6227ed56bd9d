// A C++ client of rwkvrtd: lists the models, creates (or continues) a persistent session and
// streams a generation to stdout.
//
//   rwkvrtd_client_sample [--address HOST:PORT] [--token TOKEN] [--tls-ca FILE]
//                         [--session ID] [--max-tokens N] [--seed S] PROMPT
//
// Build: part of the daemon build (target rwkvrtd_client_sample).  The token may also come from
// $RWKVRTD_AUTH_TOKEN.
#include "rwkvrt/v1/runtime.grpc.pb.h"

#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

namespace v1 = rwkvrt::v1;

namespace {

struct Options {
  std::string address = "127.0.0.1:50551";
  std::string token;
  std::string tls_ca;
  std::string session;
  std::string prompt;
  uint32_t max_tokens = 64;
  uint64_t seed = 0;
  bool has_seed = false;
};

int usage() {
  std::fprintf(stderr,
               "usage: rwkvrtd_client_sample [--address HOST:PORT] [--token TOKEN] [--tls-ca FILE]\n"
               "                             [--session ID] [--max-tokens N] [--seed S] PROMPT\n");
  return 2;
}

// Attaches the bearer token (if any) to a call.
void authorize(grpc::ClientContext& context, const Options& options) {
  if (!options.token.empty()) context.AddMetadata("authorization", "Bearer " + options.token);
}

bool check(const grpc::Status& status, const char* what) {
  if (status.ok()) return true;
  std::fprintf(stderr, "%s failed: code %d: %s\n", what, static_cast<int>(status.error_code()),
               status.error_message().c_str());
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  if (const char* token = std::getenv("RWKVRTD_AUTH_TOKEN")) options.token = token;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto value = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (arg == "--address") options.address = value();
    else if (arg == "--token") options.token = value();
    else if (arg == "--tls-ca") options.tls_ca = value();
    else if (arg == "--session") options.session = value();
    else if (arg == "--max-tokens") options.max_tokens = static_cast<uint32_t>(std::stoul(value()));
    else if (arg == "--seed") { options.seed = std::stoull(value()); options.has_seed = true; }
    else if (!arg.empty() && arg[0] == '-') return usage();
    else options.prompt = arg;
  }
  if (options.prompt.empty()) return usage();

  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (!options.tls_ca.empty()) {
    std::ifstream in(options.tls_ca);
    std::stringstream pem;
    pem << in.rdbuf();
    grpc::SslCredentialsOptions tls;
    tls.pem_root_certs = pem.str();
    credentials = grpc::SslCredentials(tls);
  }
  auto stub = v1::Runtime::NewStub(grpc::CreateChannel(options.address, credentials));

  // The models this daemon serves.
  {
    grpc::ClientContext context;
    authorize(context, options);
    v1::ListModelsResponse models;
    if (!check(stub->ListModels(&context, v1::ListModelsRequest(), &models), "ListModels")) return 1;
    for (const auto& m : models.models()) {
      std::fprintf(stderr, "model %s: RWKV-%s, %u layers, vocab %u, tokenizer %s\n", m.id().c_str(),
                   m.rwkv_version().c_str(), m.n_layer(), m.n_vocab(), m.tokenizer().c_str());
    }
  }

  // A persistent session, unless one was named: it keeps the conversation across calls and
  // across daemon restarts.
  if (options.session.empty()) {
    grpc::ClientContext context;
    authorize(context, options);
    v1::SessionInfo session;
    if (!check(stub->CreateSession(&context, v1::CreateSessionRequest(), &session), "CreateSession")) return 1;
    options.session = session.session_id();
    std::fprintf(stderr, "session %s created\n", options.session.c_str());
  }

  v1::GenerateRequest request;
  request.set_session_id(options.session);
  request.set_text(options.prompt);
  request.set_max_tokens(options.max_tokens);
  if (options.has_seed) request.mutable_sampling()->set_seed(options.seed);
  grpc::ClientContext context;
  authorize(context, options);
  auto stream = stub->Generate(&context, request);
  v1::GenerateEvent event;
  while (stream->Read(&event)) {
    if (event.has_started()) {
      std::fprintf(stderr, "request %s, seed %llu\n", event.started().request_id().c_str(),
                   static_cast<unsigned long long>(event.started().seed()));
    } else if (event.has_chunk()) {
      std::cout << event.chunk().text() << std::flush;
    } else if (event.has_final()) {
      const auto& f = event.final();
      std::cout << "\n";
      std::fprintf(stderr, "finish %s: %u prompt + %u generated tokens in %.1f ms (persisted: %s)\n",
                   v1::FinishReason_Name(f.finish_reason()).c_str(), f.prompt_tokens(),
                   f.completion_tokens(), f.timings().total_ms(), f.persisted() ? "yes" : "no");
    } else if (event.has_error()) {
      std::fprintf(stderr, "error: %s\n", event.error().message().c_str());
    }
  }
  if (!check(stream->Finish(), "Generate")) return 1;
  std::fprintf(stderr, "continue with: --session %s\n", options.session.c_str());
  return 0;
}
