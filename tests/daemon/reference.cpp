// In-process reference for the daemon tests: what an app linking librwkvrt directly produces.
//
//   rwkvrtd_reference generate MODEL THREADS < spec.json
//     spec: {"jobs": [{"turns": [{"prompt": "...", "seed": 1, "max_tokens": 24,
//                                  "temperature": 1.0, "top_p": 1.0, "top_k": 0, "stop": []}]}]}
//     Each job is one session; each turn sets the sampler from its fields, feeds the prompt and
//     generates with rwkvrt_session_generate_next (one session at a time, no batching).
//     Prints {"jobs": [{"turns": [{"text_hex": "...", "tokens": [...], "finish": "length"}]}]}.
//
//   rwkvrtd_reference bench MODEL THREADS CLIENTS TOKENS PROMPT
//     CLIENTS sessions, each fed PROMPT then generating TOKENS tokens, decoded together with
//     rwkvrt_batch_generate_next: the in-process baseline of the daemon's load run.
//     Prints {"clients": N, "tokens": total, "seconds": s, "tokens_per_s": r}.
#include <rwkvrt/rwkvrt.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

namespace {

[[noreturn]] void die(const std::string& what, rwkvrt_status s) {
  std::fprintf(stderr, "%s: %s: %s\n", what.c_str(), rwkvrt_status_name(s), rwkvrt_last_error());
  std::exit(1);
}

void check(rwkvrt_status s, const std::string& what) {
  if (s != RWKVRT_OK) die(what, s);
}

const char* finish_name(rwkvrt_finish_reason r) {
  switch (r) {
    case RWKVRT_FINISH_STOP: return "stop";
    case RWKVRT_FINISH_LENGTH: return "length";
    case RWKVRT_FINISH_EOS: return "end_of_text";
    case RWKVRT_FINISH_CANCELLED: return "cancelled";
    default: return "none";
  }
}

std::string hex(const std::string& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

rwkvrt_model* load(const char* path, int threads) {
  rwkvrt_model_params params = rwkvrt_model_params_default();
  params.n_threads = threads;
  rwkvrt_model* model = nullptr;
  check(rwkvrt_model_load(path, &params, &model), std::string("load ") + path);
  return model;
}

int generate(const char* model_path, int threads) {
  const nlohmann::json spec = nlohmann::json::parse(std::cin);
  rwkvrt_model* model = load(model_path, threads);
  nlohmann::json out = {{"jobs", nlohmann::json::array()}};
  for (const auto& job : spec.at("jobs")) {
    rwkvrt_session* session = nullptr;
    check(rwkvrt_session_create(model, &session), "session_create");
    nlohmann::json turns = nlohmann::json::array();
    for (const auto& turn : job.at("turns")) {
      rwkvrt_sampling_params sampling = rwkvrt_sampling_params_default();
      sampling.seed = turn.value("seed", uint64_t{0});
      sampling.temperature = turn.value("temperature", 1.0f);
      sampling.top_p = turn.value("top_p", 1.0f);
      sampling.top_k = turn.value("top_k", 0);
      check(rwkvrt_session_set_sampling(session, &sampling), "set_sampling");
      const std::string prompt = turn.at("prompt").get<std::string>();
      check(rwkvrt_session_prompt(session, prompt.data(), prompt.size()), "prompt");
      std::vector<std::string> stop_storage = turn.value("stop", std::vector<std::string>{});
      std::vector<const char*> stop;
      for (const auto& s : stop_storage) stop.push_back(s.c_str());
      rwkvrt_generate_params params = rwkvrt_generate_params_default();
      params.max_tokens = turn.value("max_tokens", 24u);
      params.stop = stop.empty() ? nullptr : stop.data();
      params.n_stop = stop.size();
      params.stop_at_eos = turn.value("stop_at_eos", true) ? 1 : 0;
      check(rwkvrt_session_generate_begin(session, &params), "generate_begin");
      std::string text;
      std::vector<int32_t> tokens;
      rwkvrt_generate_piece piece{};
      do {
        check(rwkvrt_session_generate_next(session, &piece), "generate_next");
        text.append(piece.text, piece.text_len);
        if (piece.token >= 0) tokens.push_back(piece.token);
      } while (piece.finish == RWKVRT_FINISH_NONE);
      turns.push_back({{"text_hex", hex(text)}, {"tokens", tokens}, {"finish", finish_name(piece.finish)}});
    }
    rwkvrt_session_free(session);
    out["jobs"].push_back({{"turns", turns}});
  }
  rwkvrt_model_free(model);
  std::cout << out.dump() << "\n";
  return 0;
}

int bench(const char* model_path, int threads, size_t clients, uint32_t tokens, const std::string& prompt) {
  rwkvrt_model* model = load(model_path, threads);
  rwkvrt_batch* batch = nullptr;
  check(rwkvrt_batch_create(model, clients, &batch), "batch_create");
  std::vector<rwkvrt_session*> sessions(clients);
  for (auto& s : sessions) check(rwkvrt_session_create(model, &s), "session_create");

  const auto t0 = std::chrono::steady_clock::now();
  rwkvrt_generate_params params = rwkvrt_generate_params_default();
  params.max_tokens = tokens;
  params.stop_at_eos = 0;
  for (size_t i = 0; i < clients; ++i) {
    rwkvrt_sampling_params sampling = rwkvrt_sampling_params_default();
    sampling.seed = i + 1;
    check(rwkvrt_session_set_sampling(sessions[i], &sampling), "set_sampling");
    check(rwkvrt_session_prompt(sessions[i], prompt.data(), prompt.size()), "prompt");
    check(rwkvrt_session_generate_begin(sessions[i], &params), "generate_begin");
  }
  std::vector<rwkvrt_session*> active = sessions;
  std::vector<rwkvrt_generate_piece> pieces(clients);
  uint64_t generated = 0;
  while (!active.empty()) {
    check(rwkvrt_batch_generate_next(batch, active.data(), active.size(), pieces.data()), "batch_generate_next");
    std::vector<rwkvrt_session*> next;
    for (size_t i = 0; i < active.size(); ++i) {
      if (pieces[i].token >= 0) ++generated;
      if (pieces[i].finish == RWKVRT_FINISH_NONE) next.push_back(active[i]);
    }
    active.swap(next);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cout << nlohmann::json{{"clients", clients}, {"tokens", generated}, {"seconds", seconds},
                              {"tokens_per_s", generated / seconds}}.dump()
            << "\n";
  for (auto* s : sessions) rwkvrt_session_free(s);
  rwkvrt_batch_free(batch);
  rwkvrt_model_free(model);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "generate" && argc == 4) return generate(argv[2], std::atoi(argv[3]));
  if (mode == "bench" && argc == 7) {
    return bench(argv[2], std::atoi(argv[3]), std::stoul(argv[4]),
                 static_cast<uint32_t>(std::stoul(argv[5])), argv[6]);
  }
  std::fprintf(stderr,
               "usage: rwkvrtd_reference generate MODEL THREADS < spec.json\n"
               "       rwkvrtd_reference bench MODEL THREADS CLIENTS TOKENS PROMPT\n");
  return 2;
}
