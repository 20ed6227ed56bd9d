// cpp_chat: a two-turn chat in the RWKV chat format with the C++ wrapper rwkvrt.hpp.  It saves
// the conversation's state after the first turn, and after the second turn restores that state and
// replays the second turn, which must give the same reply (exit code 1 otherwise).
//
//   cpp_chat MODEL [MAX_TOKENS] [FIRST_LINE SECOND_LINE]
//
// Sampling is greedy.  The replies are printed each followed by a newline, exactly as
// `printf 'FIRST_LINE\nSECOND_LINE\n' | rwkvrt chat --greedy -n MAX_TOKENS` prints them.
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "rwkvrt/rwkvrt.hpp"

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The RWKV chat format: each user turn is fed as "User: {text}\n\nAssistant:" and the reply runs
// until a blank line.  The model may also start the next user turn itself ("\nUser:"), which is
// then where the state ends.
class Chat {
 public:
  Chat(const rwkvrt::Model& model, uint32_t max_tokens)
      : tokenizer_(model.tokenizer()), session_(model) {
    session_.set_sampling(rwkvrt::SamplingParams::greedy());
    params_.max_tokens = max_tokens;
    params_.stop = {"\n\n", "\nUser:"};
  }

  // Feeds the user's text and returns the reply, streaming it to `out` as it comes.
  std::string turn(const std::string& user_text, std::ostream& out) {
    session_.prompt(next_prefix_ + user_text + "\n\nAssistant:");
    std::vector<int32_t> tokens;  // the reply's tokens: they tell how it ended
    const rwkvrt::Generated reply = session_.generate(params_, [&](const rwkvrt::Piece& piece) {
      if (piece.token >= 0) tokens.push_back(piece.token);
      out << piece.text << std::flush;
    });
    out << '\n';
    // Every generated token was fed, the stop string's too; leave the state at a turn boundary.
    const std::string fed = tokenizer_.decode(tokens);
    if (ends_with(fed, "\nUser:")) {
      next_prefix_ = " ";
    } else {
      if (!ends_with(fed, "\n\n"))
        session_.prompt(std::string(ends_with(fed, "\n") ? "\n" : "\n\n"));
      next_prefix_ = "User: ";
    }
    return reply.text;
  }

  // What restore() needs to continue exactly from this point.
  struct Snapshot {
    std::vector<uint8_t> state;
    std::string next_prefix;
  };
  Snapshot snapshot() { return {session_.save_state(), next_prefix_}; }
  void restore(const Snapshot& s) {
    session_.load_state(s.state);
    next_prefix_ = s.next_prefix;
  }

 private:
  rwkvrt::Tokenizer tokenizer_;
  rwkvrt::Session session_;
  rwkvrt::GenerateParams params_;
  std::string next_prefix_ = "User: ";
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2 && argc != 3 && argc != 5) {
    std::cerr << "usage: " << argv[0] << " MODEL [MAX_TOKENS] [FIRST_LINE SECOND_LINE]\n";
    return 2;
  }
  const uint32_t max_tokens = argc > 2 ? uint32_t(std::strtoul(argv[2], nullptr, 10)) : 80;
  const std::string first = argc == 5 ? argv[3] : "Who made the heaven and the earth?";
  const std::string second = argc == 5 ? argv[4] : "And what did he say?";
  try {
    const rwkvrt::Model model = rwkvrt::Model::load(argv[1]);
    Chat chat(model, max_tokens);
    chat.turn(first, std::cout);
    const Chat::Snapshot after_first = chat.snapshot();
    const std::string reply = chat.turn(second, std::cout);

    // Back to the state after the first turn: the second turn must replay exactly (greedy).
    chat.restore(after_first);
    std::ostringstream not_shown;
    const std::string replayed = chat.turn(second, not_shown);
    if (replayed != reply) {
      std::cerr << "cpp_chat: the restored state replied differently:\n  " << replayed << "\n";
      return 1;
    }
    std::cerr << "cpp_chat: restoring the saved state replayed the second reply exactly\n";
    return 0;
  } catch (const rwkvrt::Error& e) {
    std::cerr << "cpp_chat: " << e.status_name() << ": " << e.what() << "\n";
    return 1;
  }
}
