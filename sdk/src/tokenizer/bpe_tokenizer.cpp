// Byte-level BPE from a Hugging Face tokenizer.json, as the `tokenizers` library runs it for
// GPT-NeoX's 20B_tokenizer.json (RWKV-4 "Pile" models).  The pipeline, in the library's order:
//   1. added tokens whose `normalized` is false (NeoX: <|endoftext|>, <|padding|>) are cut out of
//      the raw text, leftmost-longest;
//   2. each remaining segment is normalised (NFC, or nothing);
//   3. added tokens whose `normalized` is true (NeoX: runs of 2..24 spaces) are cut out of the
//      normalised segments, leftmost-longest;
//   4. the ByteLevel pre-tokenizer optionally prefixes a space, then splits each segment with the
//      GPT-2 regex  's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//      (matched by hand below, alternatives tried in order as the backtracking engine does);
//   5. each piece's bytes become single-byte tokens that are merged by merge rank, lowest first
//      and leftmost among equals, exactly as the library's priority queue does.
// The library maps bytes to printable characters (GPT-2's bytes_to_unicode) so that tokens are
// strings; here the vocabulary is mapped back to bytes once at load and everything runs on bytes.
// Anything else in a tokenizer.json (other models, normalizers, pre-tokenizers, post-processors
// that add tokens, dropout, byte fallback...) is refused with Error(UNSUPPORTED) rather than
// approximated.
#include <algorithm>
#include <mutex>
#include <nlohmann/json.hpp>
#include <queue>
#include <unordered_map>
#include <utility>

#include "core/error.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"
#include "tokenizer/utf8.h"

namespace rwkvrt {
namespace {

using nlohmann::json;
using unicode::CharClass;

// GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the other 68 bytes for
// U+0100..U+0143 in byte order.
struct ByteAlphabet {
  char32_t char_of[256];
  int16_t byte_of[0x144];  // -1 for characters that stand for no byte

  ByteAlphabet() {
    std::fill(std::begin(byte_of), std::end(byte_of), int16_t{-1});
    char32_t next = 0x100;
    for (int b = 0; b < 256; ++b) {
      const bool printable =
          (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      char_of[b] = printable ? static_cast<char32_t>(b) : next++;
      byte_of[char_of[b]] = static_cast<int16_t>(b);
    }
  }
};

const ByteAlphabet& byte_alphabet() {
  static const ByteAlphabet alphabet;
  return alphabet;
}

// The bytes a vocabulary string stands for.  Like the library's ByteLevel decoder, a string with
// a character outside the byte alphabet stands for its own UTF-8 bytes.
std::string unmap_bytes(const std::string& token) {
  std::string bytes;
  const auto* p = reinterpret_cast<const uint8_t*>(token.data());
  for (size_t i = 0; i < token.size();) {
    const Utf8Sequence seq = decode_utf8(p + i, token.size() - i);
    if (seq.kind != Utf8Sequence::Kind::kValid || seq.code_point >= 0x144) return token;
    const int b = byte_alphabet().byte_of[seq.code_point];
    if (b < 0) return token;
    bytes += static_cast<char>(b);
    i += seq.length;
  }
  return bytes;
}

// The class of the character at text[i] for the pre-tokenizer regex, and its length in bytes.
// The text is valid UTF-8 (encode checks it first).
std::pair<CharClass, size_t> char_at(std::string_view text, size_t i) {
  const auto* p = reinterpret_cast<const uint8_t*>(text.data()) + i;
  if (*p < 0x80) return {unicode::char_class(*p), 1};
  const Utf8Sequence seq = decode_utf8(p, text.size() - i);
  return {unicode::char_class(seq.code_point), seq.length};
}

// Calls f(piece) for each match of the GPT-2 pre-tokenizer regex in `text`, in order.  Every
// character belongs to one of the classes, so the matches tile the text.
template <typename F>
void for_each_regex_piece(std::string_view text, F&& f) {
  const size_t n = text.size();
  size_t pos = 0;
  auto run_end = [&](size_t i, CharClass cls) {  // end of the run of `cls` characters from i
    while (i < n) {
      auto [c, len] = char_at(text, i);
      if (c != cls) break;
      i += len;
    }
    return i;
  };
  while (pos < n) {
    // 's 't 're 've 'm 'll 'd (case-sensitive)
    if (text[pos] == '\'' && pos + 1 < n) {
      const char a = text[pos + 1];
      const char b = pos + 2 < n ? text[pos + 2] : '\0';
      size_t len = 0;
      if (a == 's' || a == 't' || a == 'm' || a == 'd') len = 2;
      if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) len = 3;
      if (len != 0) {
        f(text.substr(pos, len));
        pos += len;
        continue;
      }
    }
    // ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+': an optional space, then a run of one class.
    CharClass cls = char_at(text, pos).first;
    size_t body = pos;
    if (text[pos] == ' ' && pos + 1 < n) {
      const CharClass next = char_at(text, pos + 1).first;
      if (next != CharClass::kWhitespace) {
        cls = next;
        body = pos + 1;
      }
    }
    if (cls != CharClass::kWhitespace) {
      const size_t end = run_end(body, cls);
      f(text.substr(pos, end - pos));
      pos = end;
      continue;
    }
    // '\s+(?!\S)' takes a whitespace run up to the end of the text, or all of it but its last
    // character when a non-space follows (that character then starts the next match); '\s+'
    // takes a lone whitespace character followed by a non-space.
    const size_t end = run_end(pos, CharClass::kWhitespace);
    size_t stop = end;
    if (end < n) {
      size_t last = pos;  // start of the run's last character
      for (size_t i = pos; i < end; i += char_at(text, i).second) last = i;
      if (last > pos) stop = last;
    }
    f(text.substr(pos, stop - pos));
    pos = stop;
  }
}

// Leftmost-longest matching of a set of added tokens, with a small byte trie.
class AddedTokenMatcher {
 public:
  void add(const std::string& content, int32_t id) {
    int32_t node = 0;
    for (char c : content) {
      const auto label = static_cast<uint8_t>(c);
      int32_t next = find(node, label);
      if (next < 0) {
        next = static_cast<int32_t>(nodes_.size());
        nodes_[node].children.emplace_back(label, next);
        nodes_.emplace_back();
      }
      node = next;
    }
    nodes_[node].token = id;
  }

  // Calls on_text(segment) and on_token(id) for the pieces of `text` in order: the leftmost
  // match, the longest one starting there, then the same for the rest.
  template <typename OnText, typename OnToken>
  void split(std::string_view text, OnText&& on_text, OnToken&& on_token) const {
    size_t done = 0;
    for (size_t i = 0; i < text.size();) {
      int32_t node = 0, token = -1;
      size_t end = i;
      for (size_t k = i; k < text.size(); ++k) {
        node = find(node, static_cast<uint8_t>(text[k]));
        if (node < 0) break;
        if (nodes_[node].token >= 0) {
          token = nodes_[node].token;
          end = k + 1;
        }
      }
      if (token < 0) {
        ++i;
        continue;
      }
      if (i > done) on_text(text.substr(done, i - done));
      on_token(token);
      done = i = end;
    }
    if (done < text.size()) on_text(text.substr(done));
  }

 private:
  struct Node {
    int32_t token = -1;
    std::vector<std::pair<uint8_t, int32_t>> children;
  };

  int32_t find(int32_t node, uint8_t label) const {
    for (const auto& [l, child] : nodes_[node].children) {
      if (l == label) return child;
    }
    return -1;
  }

  std::vector<Node> nodes_ = std::vector<Node>(1);
};

// Whether an optional setting is off: absent, null, false, 0 or "".
bool is_off(const json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return true;
  if (it->is_boolean()) return !it->get<bool>();
  if (it->is_number()) return it->get<double>() == 0;
  if (it->is_string()) return it->get<std::string>().empty();
  return false;
}

std::string type_of(const json& j) {
  if (j.is_null()) return "null";
  auto it = j.find("type");
  return it != j.end() && it->is_string() ? it->get<std::string>() : "(no type)";
}

class BpeTokenizer final : public Tokenizer {
 public:
  BpeTokenizer(const json& root, const std::string& source) {
    const json& model = root.at("model");
    read_settings(root, source);
    read_model(model, source);
    read_added_tokens(root.at("added_tokens"), source);
  }

  std::vector<int32_t> encode(std::string_view text) const override {
    check_utf8(text);
    std::vector<int32_t> ids;
    auto emit = [&](int32_t id) { ids.push_back(id); };
    raw_added_.split(
        text,
        [&](std::string_view segment) {
          const std::string normalized = nfc_ ? unicode::to_nfc(segment) : std::string(segment);
          normalized_added_.split(
              normalized, [&](std::string_view part) { pre_tokenize_and_merge(part, ids); }, emit);
        },
        emit);
    return ids;
  }

  std::string decode(const int32_t* ids, size_t n) const override {
    std::string out;
    for (size_t i = 0; i < n; ++i) {
      const int32_t id = ids[i];
      if (id < 0 || static_cast<size_t>(id) >= kinds_.size() || kinds_[id] == Kind::kAbsent) {
        fail(RWKVRT_ERR_INVALID_ARGUMENT, "token id {} is not in the BPE vocabulary (0..{})", id,
             kinds_.size() - 1);
      }
      if (kinds_[id] == Kind::kSpecial) continue;  // as the library's skip_special_tokens=True
      out += bytes_[id];
    }
    return out;
  }

  std::string token_bytes(int32_t id) const override { return decode(&id, 1); }
  size_t vocab_size() const override { return kinds_.size(); }
  int32_t eos_id() const override { return eos_id_; }
  const char* kind() const override { return "bpe"; }

 private:
  enum class Kind : uint8_t { kAbsent, kText, kSpecial };

  struct Merge {
    int32_t rank;
    int32_t result;
  };

  // The library takes Rust strings, so it never sees malformed UTF-8, and the vocabulary lacks
  // tokens for the bytes that cannot occur in UTF-8 (C0, C1, F5..FF): such input is refused.
  static void check_utf8(std::string_view text) {
    const auto* p = reinterpret_cast<const uint8_t*>(text.data());
    for (size_t i = 0; i < text.size();) {
      if (p[i] < 0x80) {
        ++i;
        continue;
      }
      const Utf8Sequence seq = decode_utf8(p + i, text.size() - i);
      if (seq.kind != Utf8Sequence::Kind::kValid) {
        fail(RWKVRT_ERR_INVALID_ARGUMENT,
             "the BPE tokenizer encodes UTF-8 text; byte 0x{:02X} at offset {} is not valid UTF-8",
             p[i], i);
      }
      i += seq.length;
    }
  }

  static uint64_t pair_key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
           static_cast<uint32_t>(right);
  }

  void read_settings(const json& root, const std::string& source) {
    auto unsupported = [&](const std::string& what) {
      fail(RWKVRT_ERR_UNSUPPORTED, "{}: {} is not supported (byte-level BPE only)", source, what);
    };
    const json normalizer = root.value("normalizer", json());
    if (type_of(normalizer) == "NFC") {
      nfc_ = true;
    } else if (!normalizer.is_null()) {
      unsupported("normalizer " + type_of(normalizer));
    }
    const json pre = root.value("pre_tokenizer", json());
    if (type_of(pre) != "ByteLevel") unsupported("pre_tokenizer " + type_of(pre));
    add_prefix_space_ = pre.value("add_prefix_space", false);
    use_regex_ = pre.value("use_regex", true);
    const json decoder = root.value("decoder", json());
    if (!decoder.is_null() && type_of(decoder) != "ByteLevel") {
      unsupported("decoder " + type_of(decoder));
    }
    // A ByteLevel post-processor only adjusts offsets; others (templates) add tokens.
    const json post = root.value("post_processor", json());
    if (!post.is_null() && type_of(post) != "ByteLevel") {
      unsupported("post_processor " + type_of(post));
    }
  }

  void read_model(const json& model, const std::string& source) {
    if (type_of(model) != "BPE") {
      fail(RWKVRT_ERR_UNSUPPORTED, "{}: model type {} is not supported (BPE only)", source,
           type_of(model));
    }
    for (const char* key : {"dropout", "continuing_subword_prefix", "end_of_word_suffix",
                            "byte_fallback", "ignore_merges"}) {
      if (!is_off(model, key)) {
        fail(RWKVRT_ERR_UNSUPPORTED, "{}: BPE option {} is not supported", source, key);
      }
    }

    std::unordered_map<std::string, int32_t> vocab;  // vocabulary string -> id
    std::vector<std::pair<int32_t, std::string>> entries;
    for (const auto& [token, id_json] : model.at("vocab").items()) {
      const auto id = id_json.get<int64_t>();
      if (id < 0 || id >= (int64_t{1} << 24)) {
        fail(RWKVRT_ERR_FORMAT, "{}: token {} has id {} (expected 0..2^24)", source, token, id);
      }
      vocab.emplace(token, static_cast<int32_t>(id));
      entries.emplace_back(static_cast<int32_t>(id), unmap_bytes(token));
    }
    std::sort(entries.begin(), entries.end());
    for (size_t i = 1; i < entries.size(); ++i) {
      if (entries[i].first == entries[i - 1].first) {
        fail(RWKVRT_ERR_FORMAT, "{}: two vocabulary tokens have id {}", source, entries[i].first);
      }
    }
    for (auto& [id, bytes] : entries) set_token(id, std::move(bytes), Kind::kText);

    for (int b = 0; b < 256; ++b) {
      if (b == 0xC0 || b == 0xC1 || b >= 0xF5) continue;  // never in UTF-8, so never needed
      std::string mapped;
      append_utf8(mapped, byte_alphabet().char_of[b]);
      auto it = vocab.find(mapped);
      if (it == vocab.end()) {
        fail(RWKVRT_ERR_FORMAT,
             "{}: byte 0x{:02X} has no token; a byte-level BPE needs one for every byte of UTF-8",
             source, b);
      }
      byte_ids_[b] = it->second;
    }

    const json& merges = model.at("merges");
    merges_.reserve(merges.size());
    for (size_t rank = 0; rank < merges.size(); ++rank) {
      std::string left, right;
      const json& m = merges[rank];
      if (m.is_string()) {  // "left right"
        const auto s = m.get<std::string>();
        const size_t space = s.find(' ');
        if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
          fail(RWKVRT_ERR_FORMAT, "{}: merge {} `{}` is not two tokens", source, rank, s);
        }
        left = s.substr(0, space);
        right = s.substr(space + 1);
      } else {  // ["left", "right"]
        left = m.at(0).get<std::string>();
        right = m.at(1).get<std::string>();
      }
      auto l = vocab.find(left), r = vocab.find(right), result = vocab.find(left + right);
      if (l == vocab.end() || r == vocab.end() || result == vocab.end()) {
        fail(RWKVRT_ERR_FORMAT, "{}: merge {} `{} {}` uses or makes a token not in the vocabulary",
             source, rank, left, right);
      }
      merges_.emplace(pair_key(l->second, r->second),
                      Merge{static_cast<int32_t>(rank), result->second});
    }
  }

  void read_added_tokens(const json& added, const std::string& source) {
    for (const json& t : added) {
      const auto id = t.at("id").get<int64_t>();
      const auto content = t.at("content").get<std::string>();
      if (id < 0 || id >= (int64_t{1} << 24) || content.empty()) {
        fail(RWKVRT_ERR_FORMAT, "{}: added token `{}` has id {} (expected 0..2^24, non-empty)",
             source, content, id);
      }
      for (const char* key : {"single_word", "lstrip", "rstrip"}) {
        if (!is_off(t, key)) {
          fail(RWKVRT_ERR_UNSUPPORTED, "{}: added token `{}` uses {}, which is not supported",
               source, content, key);
        }
      }
      const bool special = t.value("special", false);
      set_token(static_cast<int32_t>(id), content, special ? Kind::kSpecial : Kind::kText);
      (t.value("normalized", !special) ? normalized_added_ : raw_added_)
          .add(content, static_cast<int32_t>(id));
      if (special && content == "<|endoftext|>") eos_id_ = static_cast<int32_t>(id);
    }
  }

  void set_token(int32_t id, std::string bytes, Kind kind) {
    const auto n = static_cast<size_t>(id);
    if (n >= kinds_.size()) {
      kinds_.resize(n + 1, Kind::kAbsent);
      bytes_.resize(n + 1);
    }
    kinds_[n] = kind;
    bytes_[n] = std::move(bytes);
  }

  void pre_tokenize_and_merge(std::string_view segment, std::vector<int32_t>& ids) const {
    std::string prefixed;
    if (add_prefix_space_ && segment.substr(0, 1) != " ") {
      prefixed = " " + std::string(segment);
      segment = prefixed;
    }
    if (use_regex_) {
      for_each_regex_piece(segment, [&](std::string_view piece) { merge_piece(piece, ids); });
    } else {
      merge_piece(segment, ids);
    }
  }

  void merge_piece(std::string_view piece, std::vector<int32_t>& ids) const {
    if (piece.size() == 1) {
      ids.push_back(byte_ids_[static_cast<uint8_t>(piece[0])]);
      return;
    }
    std::string key(piece);
    {
      std::lock_guard<std::mutex> lock(cache_mutex_);
      auto it = cache_.find(key);
      if (it != cache_.end()) {
        ids.insert(ids.end(), it->second.begin(), it->second.end());
        return;
      }
    }
    std::vector<int32_t> merged = merge_bytes(piece);
    ids.insert(ids.end(), merged.begin(), merged.end());
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (cache_.size() < kCacheCapacity) cache_.emplace(std::move(key), std::move(merged));
  }

  // BPE on one piece.  Symbols form a linked list over the piece's bytes; a priority queue holds
  // candidate merges of adjacent symbols ordered by (rank, position of the left symbol).  An
  // entry is stale when its left symbol was absorbed or its pair no longer yields the entry's
  // result; stale entries are skipped when they surface.
  std::vector<int32_t> merge_bytes(std::string_view piece) const {
    struct Symbol {
      int32_t id;
      int32_t prev;
      int32_t next;
      bool alive;
    };
    struct Candidate {
      int32_t rank;
      int32_t pos;
      int32_t result;
      bool operator<(const Candidate& o) const {  // std::priority_queue pops the largest
        return rank != o.rank ? rank > o.rank : pos > o.pos;
      }
    };
    const auto n = static_cast<int32_t>(piece.size());
    std::vector<Symbol> symbols(n);
    for (int32_t i = 0; i < n; ++i) {
      symbols[i] = {byte_ids_[static_cast<uint8_t>(piece[i])], i - 1, i + 1 < n ? i + 1 : -1, true};
    }
    std::priority_queue<Candidate> queue;
    auto consider = [&](int32_t left) {
      const int32_t right = symbols[left].next;
      if (right < 0) return;
      auto it = merges_.find(pair_key(symbols[left].id, symbols[right].id));
      if (it != merges_.end()) queue.push({it->second.rank, left, it->second.result});
    };
    for (int32_t i = 0; i + 1 < n; ++i) consider(i);

    while (!queue.empty()) {
      const Candidate top = queue.top();
      queue.pop();
      Symbol& left = symbols[top.pos];
      if (!left.alive || left.next < 0) continue;
      auto it = merges_.find(pair_key(left.id, symbols[left.next].id));
      if (it == merges_.end() || it->second.result != top.result) continue;

      Symbol& right = symbols[left.next];
      left.id = top.result;
      right.alive = false;
      left.next = right.next;
      if (right.next >= 0) symbols[right.next].prev = top.pos;
      if (left.prev >= 0) consider(left.prev);
      consider(top.pos);
    }

    std::vector<int32_t> out;
    for (int32_t i = 0; i >= 0 && i < n; i = symbols[i].next) out.push_back(symbols[i].id);
    return out;
  }

  // Pieces cached: words recur, and most of the encode time goes to merging them.
  static constexpr size_t kCacheCapacity = 1 << 16;

  bool nfc_ = false;
  bool add_prefix_space_ = false;
  bool use_regex_ = true;
  int32_t eos_id_ = -1;
  AddedTokenMatcher raw_added_;         // added tokens matched before normalisation
  AddedTokenMatcher normalized_added_;  // added tokens matched in normalised text
  std::unordered_map<uint64_t, Merge> merges_;
  int32_t byte_ids_[256] = {};      // the single-byte token of each byte that can occur in UTF-8
  std::vector<Kind> kinds_;         // by id
  std::vector<std::string> bytes_;  // by id: what the token decodes to
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace

std::unique_ptr<Tokenizer> make_bpe_tokenizer_from_json(std::string_view json_text,
                                                        const std::string& source) {
  json root;
  try {
    root = json::parse(json_text);
  } catch (const json::exception& e) {
    fail(RWKVRT_ERR_FORMAT, "{}: not valid JSON: {}", source, e.what());
  }
  try {
    return std::make_unique<BpeTokenizer>(root, source);
  } catch (const json::exception& e) {
    fail(RWKVRT_ERR_FORMAT, "{}: not a Hugging Face tokenizer.json: {}", source, e.what());
  }
}

}  // namespace rwkvrt
