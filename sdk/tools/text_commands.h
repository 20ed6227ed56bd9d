// Shared pieces of the text commands (generate, chat, tokenize, detokenize).  Unlike the other
// commands, these run on the public API through the C++ wrapper rwkvrt.hpp, as an application
// would.  The wrapper's types live in rwkvrt::v1 and share names with the library's internal types
// (rwkvrt::Session, rwkvrt::Error, ...), so this header is included after cli.h and the wrapper
// types are always spelled sdk::Session, sdk::Error, ...; an unqualified Session does not compile.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cli.h"
#include "core/error.h"  // fail()
#include "rwkvrt/rwkvrt.hpp"

namespace rwkvrt::cli {

namespace sdk = ::rwkvrt::v1;

// The model shipped with rwkvrt (byte-level RWKV-7 trained on the KJV Bible), used when a text
// command gets no --model.
inline constexpr const char* kDefaultModelFile = "rwkv7-kjv-byte.pth";

// Where the default model is looked for, in order: next to a build tree inside the source tree
// (<dir of the executable>/../../models/default), in the installation
// (<prefix>/share/rwkvrt/models/default), and in the source tree the tool was built from.
std::vector<std::string> default_model_candidates();
// The first candidate that exists; throws Error(IO) listing every place tried.
std::string find_default_model();
// The help text for --model that explains the default.
std::string model_option_help();

// --model plus the usual model options, and --tokenizer.
struct TextModelOptions {
  ModelOptions model;          // model.path empty: the default model
  std::string tokenizer_path;  // empty: the model's own tokenizer
};
void add_text_model_options(CLI::App* cmd, TextModelOptions& o);
// Loads the model (the default one if no --model) with a progress bar on stderr.
sdk::Model load_text_model(const TextModelOptions& o);

// Sampling options shared by generate and chat; the defaults are the library's.
struct SamplingOptions {
  sdk::SamplingParams params;
  bool greedy = false;
  std::string mode = "standard";  // or "reference"
  CLI::Option* seed_option = nullptr;
};
void add_sampling_options(CLI::App* cmd, SamplingOptions& o);
// The parameters to give the session; without --seed (and unless greedy) a random seed, which is
// returned in *seed_used either way.
sdk::SamplingParams sampling_params(const SamplingOptions& o, uint64_t* seed_used);

// C-style escapes in a command-line string: \n, \t, \r, \\ and \xHH (other backslashes stay).
std::string unescape(const std::string& text);

// Runs a command body, turning the wrapper's errors into the tool's (same message, exit code 1).
void run_reporting_errors(const std::function<void()>& body);

}  // namespace rwkvrt::cli
