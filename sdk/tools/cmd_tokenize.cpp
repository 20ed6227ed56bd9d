// rwkvrt tokenize / detokenize: text to token ids and back, with a vocabulary file or a model's
// tokenizer.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "cli.h"
#include "text_commands.h"  // after cli.h (see there)

namespace rwkvrt::cli {
namespace {

// Which tokenizer to use: exactly one of --vocab, --byte, --model.
struct TokenizerChoice {
  std::string vocab_path;
  bool byte_level = false;
  TextModelOptions model;
  CLI::Option* model_option = nullptr;
};

void add_tokenizer_choice(CLI::App* cmd, TokenizerChoice& c) {
  auto* vocab = cmd->add_option("--vocab", c.vocab_path,
                                "Tokenizer file: a World vocabulary (rwkv_vocab_v20230424.txt) or "
                                "a Hugging Face tokenizer.json (e.g. 20B_tokenizer.json)")
                    ->type_name("FILE");
  auto* byte = cmd->add_flag("--byte", c.byte_level, "The byte-level tokenizer (id = byte value)");
  c.model_option = cmd->add_option("--model,-m", c.model.model.path,
                                   "Use this model's tokenizer (found as 'rwkvrt generate' finds "
                                   "it; --tokenizer overrides)")
                       ->type_name("FILE");
  cmd->add_option("--tokenizer", c.model.tokenizer_path,
                  "With --model: the tokenizer file to give the model")
      ->type_name("FILE")
      ->needs(c.model_option);
  vocab->excludes(byte)->excludes(c.model_option);
  byte->excludes(c.model_option);
  c.model.model.quiet = true;
}

// Keeps the model alive while its tokenizer is in use (the Tokenizer handle does that itself).
sdk::Tokenizer open_tokenizer(const TokenizerChoice& c) {
  if (!c.vocab_path.empty()) return sdk::Tokenizer::load(c.vocab_path);
  if (c.byte_level) return sdk::Tokenizer::byte_level();
  if (c.model_option->count() > 0) return load_text_model(c.model).tokenizer();
  fail(RWKVRT_ERR_INVALID_ARGUMENT,
       "choose the tokenizer with --vocab FILE, --model FILE or --byte");
}

void write_stdout(const std::string& bytes) {
  if (std::fwrite(bytes.data(), 1, bytes.size(), stdout) != bytes.size() ||
      std::fflush(stdout) != 0)
    fail(RWKVRT_ERR_IO, "cannot write to stdout");
}

}  // namespace

void register_tokenize_commands(CLI::App& app) {
  {
    auto* cmd = app.add_subcommand("tokenize",
                                   "Encode text into token ids; prints {\"ids\": [...]} on stdout");
    cmd->footer(
        "Example:\n  rwkvrt tokenize --vocab rwkv_vocab_v20230424.txt --text 'Hello world'");
    static TokenizerChoice choice;
    static std::string text, text_file;
    add_tokenizer_choice(cmd, choice);
    auto* text_option = cmd->add_option("--text,-t", text, "The text to encode (its exact bytes)");
    cmd->add_option("--text-file", text_file,
                    "Encode the bytes of this file instead (any bytes, not only UTF-8 text)")
        ->type_name("FILE")
        ->excludes(text_option);
    cmd->callback([text_option] {
      run_reporting_errors([&] {
        std::string input = text;
        if (!text_file.empty()) {
          const std::vector<uint8_t> bytes = read_whole_file(text_file);
          input.assign(bytes.begin(), bytes.end());
        } else if (text_option->count() == 0) {
          fail(RWKVRT_ERR_INVALID_ARGUMENT, "give the text with --text or --text-file");
        }
        const std::vector<int32_t> ids = open_tokenizer(choice).encode(input);
        std::string out = "{\"ids\": [";
        for (size_t i = 0; i < ids.size(); ++i) out += (i ? ", " : "") + std::to_string(ids[i]);
        out += "]}\n";
        write_stdout(out);
      });
    });
  }
  {
    auto* cmd = app.add_subcommand(
        "detokenize",
        "Decode token ids into text: writes the decoded bytes to stdout unchanged (which may be "
        "invalid UTF-8 if the ids end inside a character), or {\"text\": ...} with --json");
    cmd->footer("Example:\n  rwkvrt detokenize --vocab rwkv_vocab_v20230424.txt --ids 33155,40213");
    static TokenizerChoice choice;
    static std::string ids_text;
    static bool json = false;
    add_tokenizer_choice(cmd, choice);
    cmd->add_option("--ids,--tokens", ids_text, "Comma-separated token ids, e.g. 1,2,3")
        ->required();
    cmd->add_flag("--json", json,
                  "Print {\"text\": ...} (bytes that are not valid UTF-8 become U+FFFD)");
    cmd->callback([] {
      run_reporting_errors([] {
        // An empty list decodes to nothing (parse_token_list wants at least one id).
        const std::vector<int32_t> ids =
            ids_text.empty() ? std::vector<int32_t>() : parse_token_list(ids_text);
        const std::string bytes = open_tokenizer(choice).decode(ids);
        if (!json) return write_stdout(bytes);
        const nlohmann::json out = {{"text", bytes}};
        write_stdout(out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
      });
    });
  }
}

}  // namespace rwkvrt::cli
