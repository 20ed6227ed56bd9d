// rwkvrt chat: an interactive conversation in the RWKV chat format, one user line per turn.
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "cli.h"
#include "text_commands.h"  // after cli.h (see there)

namespace rwkvrt::cli {
namespace {

// The RWKV chat convention: "User: {text}\n\nAssistant:" and the reply runs to a blank line.
constexpr const char* kUserTag = "User:";
constexpr const char* kAssistantTag = "Assistant:";
const std::vector<std::string> kReplyStops = {"\n\n", "\nUser:"};

struct ChatOptions {
  TextModelOptions model;
  SamplingOptions sampling;
  uint32_t max_tokens = sdk::GenerateParams().max_tokens;
};

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// One conversation: the session plus what the next user turn must begin with, which depends on
// how the previous reply ended.  Between turns the state always ends at a turn boundary: after a
// blank line ("\n\n", the usual end of a reply) or after "\nUser:" (the model started the user's
// turn itself).
class Conversation {
 public:
  Conversation(sdk::Model model, const sdk::SamplingParams& sampling, uint32_t max_tokens)
      : model_(std::move(model)),
        tokenizer_(model_.tokenizer()),
        session_(model_),
        eos_id_(tokenizer_.info().eos_id) {
    session_.set_sampling(sampling);
    params_.max_tokens = max_tokens;
    params_.stop = kReplyStops;
  }

  // Feeds the user's line and streams the reply through `print` (pieces as they come).
  template <typename Print>
  void turn(const std::string& user_text, Print&& print) {
    session_.prompt(next_turn_prefix_ + user_text + "\n\n" + kAssistantTag);
    std::vector<int32_t> tail;  // the last tokens fed, to see how the reply ended
    session_.generate(params_, [&](const sdk::Piece& piece) {
      if (piece.token >= 0 && piece.token != eos_id_) {
        tail.push_back(piece.token);
        if (tail.size() > 16) tail.erase(tail.begin());
      }
      print(piece.text);
    });
    const std::string ending = tokenizer_.decode(tail);
    if (ends_with(ending, "\nUser:")) {
      next_turn_prefix_ = " ";
    } else if (ends_with(ending, "\n\n")) {
      next_turn_prefix_ = std::string(kUserTag) + " ";
    } else {
      // Cut by the token limit (or end of text): complete the blank line that closes a reply, so
      // that the state ends at a turn boundary.
      session_.prompt(std::string(ends_with(ending, "\n") ? "\n" : "\n\n"));
      next_turn_prefix_ = std::string(kUserTag) + " ";
    }
  }

  void reset() {
    session_.reset();
    next_turn_prefix_ = std::string(kUserTag) + " ";
  }
  void save(const std::string& path) {
    const std::vector<uint8_t> blob = session_.save_state();
    write_file_atomic(path, blob.data(), blob.size());
  }
  // A state saved by /save (which ends after a reply's blank line).
  void load(const std::string& path) {
    session_.load_state(read_whole_file(path));
    next_turn_prefix_ = std::string(kUserTag) + " ";
  }

 private:
  sdk::Model model_;
  sdk::Tokenizer tokenizer_;
  sdk::Session session_;
  int32_t eos_id_;
  sdk::GenerateParams params_;
  std::string next_turn_prefix_ = std::string(kUserTag) + " ";
};

const char* kCommandHelp =
    "Commands: /save FILE (write the conversation's state), /load FILE (continue from a saved "
    "state), /reset (forget the conversation), /quit";

void run_chat(const ChatOptions& o) {
  const bool interactive = ::isatty(STDIN_FILENO);
  sdk::Model model = load_text_model(o.model);
  Conversation chat(model, sampling_params(o.sampling, nullptr), o.max_tokens);
  if (interactive) std::fprintf(stderr, "%s\n\n", kCommandHelp);

  std::string line;
  for (;;) {
    if (interactive) {
      std::printf("%s ", kUserTag);
      std::fflush(stdout);
    }
    if (!std::getline(std::cin, line)) break;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;

    if (line[0] == '/') {
      const size_t space = line.find(' ');
      const std::string command = line.substr(0, space);
      const std::string argument = space == std::string::npos ? "" : line.substr(space + 1);
      try {
        if (command == "/quit" || command == "/exit") break;
        if (command == "/reset") {
          chat.reset();
          std::fprintf(stderr, "(conversation reset)\n");
        } else if ((command == "/save" || command == "/load") && argument.empty()) {
          fail(RWKVRT_ERR_INVALID_ARGUMENT, "{} needs a file name", command);
        } else if (command == "/save") {
          chat.save(argument);
          std::fprintf(stderr, "(state saved to %s)\n", argument.c_str());
        } else if (command == "/load") {
          chat.load(argument);
          std::fprintf(stderr, "(state loaded from %s)\n", argument.c_str());
        } else if (command == "/help") {
          std::fprintf(stderr, "%s\n", kCommandHelp);
        } else {
          fail(RWKVRT_ERR_INVALID_ARGUMENT, "unknown command {}; {}", command, kCommandHelp);
        }
      } catch (const std::exception& e) {
        // At a terminal a mistake is reported and the chat goes on; a script stops (exit 1).
        if (!interactive) throw;
        std::fprintf(stderr, "error: %s\n", e.what());
      }
      continue;
    }

    if (interactive) std::printf("%s", kAssistantTag);
    chat.turn(line, [](const std::string& text) {
      std::fwrite(text.data(), 1, text.size(), stdout);
      std::fflush(stdout);
    });
    // A script gets each reply followed by a newline; a terminal shows a blank line between turns.
    std::fputs(interactive ? "\n\n" : "\n", stdout);
    std::fflush(stdout);
  }
}

}  // namespace

void register_chat_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "chat",
      "Chat with a model: each line read from stdin is a user turn, fed as \"User: {line}\\n\\n"
      "Assistant:\" (the RWKV chat format); the reply streams to stdout until a blank line or "
      "\"\\nUser:\".  Lines starting with / are commands: /save FILE, /load FILE, /reset, /quit.  "
      "With stdin not a terminal (a script), only the replies are printed, each followed by a "
      "newline, and a failing command ends the chat with exit code 1.  Without --model, the "
      "default model "
      "shipped with rwkvrt is used.");
  cmd->footer("Example:\n  printf 'Who made the heaven?\\n/save s.bin\\n' | rwkvrt chat --greedy");
  static ChatOptions o;
  cmd->add_option("--max-tokens,-n", o.max_tokens, "Tokens per reply at most; 0 = no limit")
      ->capture_default_str();
  add_text_model_options(cmd, o.model);
  add_sampling_options(cmd, o.sampling);
  cmd->callback([] { run_reporting_errors([] { run_chat(o); }); });
}

}  // namespace rwkvrt::cli
