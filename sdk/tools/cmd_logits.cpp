// rwkvrt logits: the logits after a token sequence, as JSON, optionally from/to a saved state.
#include <cstdio>
#include <string>
#include <vector>

#include "cli.h"
#include "session/session.h"

namespace rwkvrt::cli {

void register_logits_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "logits",
      "Feed token ids and print {\"logits\": [[...], ...]} on stdout: one row for the last "
      "position, or one per position with --all");
  static ModelOptions o;
  static std::string tokens_text, state_in, state_out;
  static bool all = false, rnn = false;
  cmd->add_option("--model,-m", o.path, "Model file (.pth, .safetensors or rwkv.cpp .bin)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--tokens,-t", tokens_text, "Comma-separated token ids, e.g. 1,2,3")->required();
  cmd->add_flag("--all", all, "Print the logits after every position, not only the last");
  cmd->add_flag("--rnn", rnn,
                "Feed one token at a time (RNN mode) instead of the whole sequence at once");
  cmd->add_option("--state-in", state_in, "Start from a state blob saved with --state-out")
      ->check(CLI::ExistingFile);
  cmd->add_option("--state-out", state_out, "Write the state after the tokens to this file");
  add_model_options(cmd, o);
  cmd->callback([] {
    const std::vector<int32_t> tokens = parse_token_list(tokens_text);
    auto model = load_model(o);
    Session s(model);
    if (!state_in.empty()) {
      const std::vector<uint8_t> blob = read_whole_file(state_in);
      s.load_state(blob.data(), blob.size());
    }
    const size_t V = model->config().n_vocab, T = tokens.size();
    std::vector<float> logits((all ? T : 1) * V);
    if (rnn) {
      for (size_t t = 0; t < T; ++t)
        s.feed(&tokens[t], 1, LogitsMode::Last, logits.data() + (all ? t * V : 0));
    } else {
      s.feed(tokens.data(), T, all ? LogitsMode::All : LogitsMode::Last, logits.data());
    }
    if (!state_out.empty()) {
      const std::vector<uint8_t> blob = s.save_state();
      write_file_atomic(state_out, blob.data(), blob.size());
    }
    std::string out = "{\"logits\": [";
    for (size_t r = 0; r < logits.size() / V; ++r) {
      out += r ? ", [" : "[";
      for (size_t i = 0; i < V; ++i) {
        if (i) out += ", ";
        out += format_float(logits[r * V + i]);
      }
      out += "]";
    }
    out += "]}\n";
    std::fwrite(out.data(), 1, out.size(), stdout);
  });
}

}  // namespace rwkvrt::cli
