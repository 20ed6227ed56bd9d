// rwkvrt generate: continue a prompt, streaming the text to stdout as it is produced.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include "cli.h"
#include "text_commands.h"  // after cli.h (see there)

namespace rwkvrt::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct GenerateOptions {
  TextModelOptions model;
  SamplingOptions sampling;
  std::string prompt;
  std::string prompt_file;
  uint32_t max_tokens = sdk::GenerateParams().max_tokens;
  std::vector<std::string> stop;
  bool ignore_eos = false;
  std::string state_in, state_out, tuned_state;
  bool stats = false;
};

std::string read_prompt(const GenerateOptions& o) {
  if (o.prompt_file.empty()) return o.prompt;
  if (o.prompt_file == "-")
    return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  const std::vector<uint8_t> bytes = read_whole_file(o.prompt_file);
  return std::string(bytes.begin(), bytes.end());
}

const char* finish_name(rwkvrt_finish_reason r) {
  switch (r) {
    case RWKVRT_FINISH_STOP:
      return "stop string";
    case RWKVRT_FINISH_LENGTH:
      return "max tokens";
    case RWKVRT_FINISH_EOS:
      return "end of text";
    case RWKVRT_FINISH_CANCELLED:
      return "cancelled";
    default:
      return "none";
  }
}

double per_second(size_t n, double seconds) {
  return seconds > 0 ? double(n) / seconds : 0.0;
}

void run_generate(const GenerateOptions& o) {
  const std::string prompt = read_prompt(o);
  if (prompt.empty()) fail(RWKVRT_ERR_INVALID_ARGUMENT, "the prompt is empty");

  sdk::Model model = load_text_model(o.model);
  sdk::Session session(model);
  if (!o.tuned_state.empty()) session.load_initial_state(o.tuned_state);
  if (!o.state_in.empty()) session.load_state(read_whole_file(o.state_in));
  uint64_t seed = 0;
  session.set_sampling(sampling_params(o.sampling, &seed));

  // The prompt is encoded here (rather than by Session::prompt) only to count its tokens.
  const std::vector<int32_t> prompt_tokens = model.tokenizer().encode(prompt);
  const Clock::time_point prefill_start = Clock::now();
  session.prompt(prompt_tokens);
  const Clock::time_point decode_start = Clock::now();

  sdk::GenerateParams params;
  params.max_tokens = o.max_tokens;
  params.stop_at_eos = !o.ignore_eos;
  for (const std::string& s : o.stop) params.stop.push_back(unescape(s));
  bool output_failed = false;
  const sdk::Generated result = session.generate(params, [&](const sdk::Piece& piece) {
    if (piece.text.empty()) return true;
    // One write and a flush per piece: the text appears as it is produced.
    if (std::fwrite(piece.text.data(), 1, piece.text.size(), stdout) != piece.text.size() ||
        std::fflush(stdout) != 0) {
      output_failed = true;
      return false;
    }
    return true;
  });
  const Clock::time_point decode_end = Clock::now();
  if (output_failed) fail(RWKVRT_ERR_IO, "cannot write to stdout");
  if (::isatty(STDOUT_FILENO)) std::fputs("\n", stdout);
  std::fflush(stdout);

  if (!o.state_out.empty()) {
    const std::vector<uint8_t> blob = session.save_state();
    write_file_atomic(o.state_out, blob.data(), blob.size());
  }
  if (o.stats) {
    const double prefill_s = std::chrono::duration<double>(decode_start - prefill_start).count();
    const double decode_s = std::chrono::duration<double>(decode_end - decode_start).count();
    std::fprintf(stderr,
                 "prompt: %zu tokens in %.3f s (%.1f tok/s)\n"
                 "generated: %u tokens in %.3f s (%.1f tok/s), finished by %s\n"
                 "seed: %llu\n",
                 prompt_tokens.size(), prefill_s, per_second(prompt_tokens.size(), prefill_s),
                 result.n_generated, decode_s, per_second(result.n_generated, decode_s),
                 finish_name(result.finish), static_cast<unsigned long long>(seed));
  }
}

}  // namespace

void register_generate_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "generate",
      "Continue a prompt with a model and stream the text to stdout as it is produced (a newline "
      "is added at the end only when stdout is a terminal).  Without --model, the default model "
      "shipped with rwkvrt is used.");
  cmd->footer(
      "Examples:\n"
      "  rwkvrt generate --prompt 'In the beginning' --max-tokens 100\n"
      "  rwkvrt generate -m model.pth --prompt-file story.txt --temperature 0.8 --top-p 0.9 "
      "--stop '\\n\\n'\n"
      "  rwkvrt generate --greedy -p 'And God said' --state-out s.bin   # then continue with "
      "--state-in s.bin");
  static GenerateOptions o;
  auto* prompt =
      cmd->add_option("--prompt,-p", o.prompt, "The text to continue")->type_name("TEXT");
  cmd->add_option("--prompt-file", o.prompt_file, "Read the prompt from this file ('-' = stdin)")
      ->type_name("FILE")
      ->excludes(prompt);
  cmd->add_option("--max-tokens,-n", o.max_tokens, "Tokens to generate at most; 0 = no limit")
      ->capture_default_str();
  cmd->add_option("--stop", o.stop,
                  "Stop when this text appears (it is not printed); repeatable.  Escapes \\n, "
                  "\\t, \\r, \\\\ and \\xHH are understood")
      ->allow_extra_args(false);
  cmd->add_flag(
      "--ignore-eos", o.ignore_eos,
      "Do not stop at the tokenizer's end-of-text token (for the byte-level tokenizer, byte 0)");
  cmd->add_option("--state-in", o.state_in,
                  "Start from a state blob (saved by --state-out or 'logits --state-out'); the "
                  "prompt is fed on top of it")
      ->type_name("FILE");
  cmd->add_option("--state-out", o.state_out,
                  "Write the state after the generation (prompt and every generated token fed) "
                  "to this file")
      ->type_name("FILE");
  cmd->add_option("--tuned-state", o.tuned_state,
                  "A state-tuning file (.pth or .safetensors with blocks.N.att.time_state) to "
                  "start from instead of the model's initial state")
      ->type_name("FILE");
  cmd->add_flag("--stats", o.stats,
                "Print token counts and speeds (prompt and generation, tokens/s) and the seed to "
                "stderr");
  add_text_model_options(cmd, o.model);
  add_sampling_options(cmd, o.sampling);
  cmd->callback([] {
    if (o.prompt.empty() && o.prompt_file.empty())
      fail(RWKVRT_ERR_INVALID_ARGUMENT, "give the text to continue with --prompt or --prompt-file");
    run_reporting_errors([] { run_generate(o); });
  });
}

}  // namespace rwkvrt::cli
