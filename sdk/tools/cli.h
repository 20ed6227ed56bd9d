// Shared pieces of the rwkvrt command-line tool: each command registers itself on the CLI11 app,
// and the helpers below give every command the same loading progress, errors and output.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "model/model.h"

namespace rwkvrt::cli {

// Options every model-loading command accepts.
struct ModelOptions {
  std::string path;
  std::string backend = "auto";
  int device = 0;
  int threads = 0;
  std::string weights = "auto";  // auto, f32, bf16, f16
  std::string matmul = "exact";  // exact, fast
  float group_norm_eps = 0.0f;
  bool quiet = false;
};

// Adds --backend, --device, --threads, --weights, --matmul, --gn-eps, --quiet to `cmd` (not the model path).
void add_model_options(CLI::App* cmd, ModelOptions& o);
// --matmul exact|fast, and its value as the backend's precision.
void add_matmul_option(CLI::App* cmd, std::string& matmul);
rwkvrt_bk_matmul_precision matmul_precision(const std::string& matmul);
// Converts the options; throws Error(INVALID_ARGUMENT) for a bad --weights value.
LoadOptions load_options(const ModelOptions& o);
// A progress bar on stderr, or an empty function when quiet or stderr is not a terminal;
// progress_done clears its line.
std::function<bool(float, const char*)> progress_bar(bool quiet);
void progress_done(bool quiet);
// Loads with a progress bar on stderr (when it is a terminal and not --quiet).
std::shared_ptr<Model> load_model(const ModelOptions& o);

// "1,2,3" -> {1,2,3}; throws Error(INVALID_ARGUMENT) naming the bad item.
std::vector<int32_t> parse_token_list(const std::string& text);

// Writes `bytes` to `path` atomically (temporary file, fsync, rename).
void write_file_atomic(const std::string& path, const void* bytes, size_t size);
std::vector<uint8_t> read_whole_file(const std::string& path);

// Shortest decimal that reads back as the same float.
std::string format_float(float v);

void register_backends_command(CLI::App& app);
void register_info_command(CLI::App& app);
void register_logits_command(CLI::App& app);
void register_bench_command(CLI::App& app);
void register_convert_command(CLI::App& app);
void register_random_model_command(CLI::App& app);
// Text commands on the public C++ wrapper (text_commands.h).
void register_generate_command(CLI::App& app);
void register_chat_command(CLI::App& app);
void register_tokenize_commands(CLI::App& app);  // tokenize and detokenize

}  // namespace rwkvrt::cli
