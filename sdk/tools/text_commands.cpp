#include "text_commands.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <random>
#include <system_error>

#include "core/error.h"

namespace rwkvrt::cli {
namespace {

namespace fs = std::filesystem;

fs::path executable_dir() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path() : exe.parent_path();
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::vector<std::string> default_model_candidates() {
  std::vector<std::string> out;
  const fs::path exe_dir = executable_dir();
  if (!exe_dir.empty()) {
    out.push_back((exe_dir / ".." / ".." / "models" / "default" / kDefaultModelFile)
                      .lexically_normal()
                      .string());
    out.push_back(
        (exe_dir / RWKVRT_BIN_TO_DATA_DIR / "rwkvrt" / "models" / "default" / kDefaultModelFile)
            .lexically_normal()
            .string());
  }
  out.push_back((fs::path(RWKVRT_SOURCE_DIR) / "models" / "default" / kDefaultModelFile).string());
  return out;
}

std::string find_default_model() {
  const std::vector<std::string> candidates = default_model_candidates();
  std::string tried;
  for (const std::string& c : candidates) {
    std::error_code ec;
    if (fs::is_regular_file(c, ec)) return c;
    tried += "\n  " + c;
  }
  fail(RWKVRT_ERR_IO, "no --model given and the default model was not found; tried:{}", tried);
}

std::string model_option_help() {
  return std::string(
             "Model file (.pth, .safetensors or rwkv.cpp .bin).  Default: the model "
             "shipped with rwkvrt, ") +
         kDefaultModelFile +
         " (a small byte-level RWKV-7 that writes KJV-style English), looked for in "
         "<executable dir>/../../models/default (a build tree inside the source tree), then "
         "<prefix>/share/rwkvrt/models/default (an installation)";
}

void add_text_model_options(CLI::App* cmd, TextModelOptions& o) {
  cmd->add_option("--model,-m", o.model.path, model_option_help())->type_name("FILE");
  cmd->add_option("--tokenizer", o.tokenizer_path,
                  "Tokenizer of the model: a World vocabulary .txt or a Hugging Face "
                  "tokenizer.json (default: found next to the model, or byte-level for a "
                  "vocabulary of 256)")
      ->type_name("FILE");
  add_model_options(cmd, o.model);
}

sdk::Model load_text_model(const TextModelOptions& o) {
  const std::string path = o.model.path.empty() ? find_default_model() : o.model.path;
  sdk::ModelParams params;
  params.backend(o.model.backend == "auto" ? "" : o.model.backend)
      .device(o.model.device)
      .threads(o.model.threads)
      .group_norm_eps(o.model.group_norm_eps);
  if (o.model.weights == "f32")
    params.weights(RWKVRT_WEIGHTS_F32);
  else if (o.model.weights == "bf16")
    params.weights(RWKVRT_WEIGHTS_BF16);
  else if (o.model.weights == "f16")
    params.weights(RWKVRT_WEIGHTS_F16);
  else
    params.weights(RWKVRT_WEIGHTS_AUTO);
  params.matmul_precision(o.model.matmul == "fast" ? RWKVRT_MATMUL_FAST : RWKVRT_MATMUL_EXACT);
  if (!o.tokenizer_path.empty()) params.tokenizer_path(o.tokenizer_path);
  if (auto bar = progress_bar(o.model.quiet)) {
    params.progress([bar](float fraction, std::string_view stage) {
      return bar(fraction, std::string(stage).c_str());
    });
  }
  sdk::Model model = sdk::Model::load(path, params);
  progress_done(o.model.quiet);
  return model;
}

void add_sampling_options(CLI::App* cmd, SamplingOptions& o) {
  // Ranges are checked by the library, which names the offending parameter.
  sdk::SamplingParams& p = o.params;
  const char* group = "Sampling";
  cmd->add_flag("--greedy", o.greedy, "Always take the most likely token (same as --temperature 0)")
      ->group(group);
  cmd->add_option("--temperature", p.temperature, "Softmax temperature; 0 = greedy")
      ->capture_default_str()
      ->group(group);
  cmd->add_option("--top-k", p.top_k, "Keep the k most likely tokens; 0 = off")
      ->capture_default_str()
      ->group(group);
  cmd->add_option("--top-p", p.top_p,
                  "Keep the smallest set of tokens of this total probability; "
                  "1 = off")
      ->capture_default_str()
      ->group(group);
  cmd->add_option("--min-p", p.min_p,
                  "Drop tokens less likely than this fraction of the most likely one; 0 = off")
      ->capture_default_str()
      ->group(group);
  cmd->add_option("--repetition-penalty", p.repetition_penalty,
                  "Divide the logits of tokens seen before by this (CTRL style); 1 = off")
      ->capture_default_str()
      ->group(group);
  cmd->add_option("--presence-penalty", p.presence_penalty,
                  "Subtract this from the logit of every token seen before")
      ->capture_default_str()
      ->group(group);
  cmd->add_option("--frequency-penalty", p.frequency_penalty,
                  "Subtract this times the (decayed) count of each token seen before")
      ->capture_default_str()
      ->group(group);
  cmd->add_option("--penalty-decay", p.penalty_decay,
                  "Weight a past occurrence keeps per generated token, in [0, 1]")
      ->capture_default_str()
      ->group(group);
  cmd->add_option("--penalty-last-n", p.penalty_last_n,
                  "Generated tokens the penalties look back on; -1 = all")
      ->capture_default_str()
      ->group(group);
  o.seed_option = cmd->add_option("--seed", p.seed,
                                  "Random seed: the same seed reproduces a run exactly "
                                  "(default: a random one)")
                      ->group(group);
  cmd->add_option("--sampling", o.mode,
                  "standard: llama.cpp's order of filters; reference: the official rwkv "
                  "package's PIPELINE (top-p, top-k, temperature; penalties skip whitespace and "
                  "digits; --min-p and --repetition-penalty must stay off)")
      ->check(CLI::IsMember({"standard", "reference"}))
      ->capture_default_str()
      ->group(group);
}

sdk::SamplingParams sampling_params(const SamplingOptions& o, uint64_t* seed_used) {
  sdk::SamplingParams p = o.params;
  if (o.greedy) p.temperature = 0.0f;
  p.mode = o.mode == "reference" ? RWKVRT_SAMPLING_REFERENCE_PIPELINE : RWKVRT_SAMPLING_STANDARD;
  if (o.seed_option && o.seed_option->count() == 0) {
    std::random_device entropy;
    p.seed = (uint64_t(entropy()) << 32) | entropy();
  }
  if (seed_used) *seed_used = p.seed;
  return p;
}

std::string unescape(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\' || i + 1 == text.size()) {
      out += text[i];
      continue;
    }
    const char e = text[i + 1];
    if (e == 'n')
      out += '\n';
    else if (e == 't')
      out += '\t';
    else if (e == 'r')
      out += '\r';
    else if (e == '\\')
      out += '\\';
    else if (e == 'x' && i + 3 < text.size() && hex_digit(text[i + 2]) >= 0 &&
             hex_digit(text[i + 3]) >= 0) {
      out += char(hex_digit(text[i + 2]) * 16 + hex_digit(text[i + 3]));
      i += 2;
    } else {
      out += '\\';  // not an escape: keep the backslash and the character after it
      out += e;
    }
    ++i;
  }
  return out;
}

void run_reporting_errors(const std::function<void()>& body) {
  try {
    body();
  } catch (const sdk::Error& e) {
    fail(e.status(), "{}", e.what());
  }
}

}  // namespace rwkvrt::cli
