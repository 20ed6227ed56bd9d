// The RWKV World tokenizer (docs: RWKV-MATH.md §6, FORMATS.md "RWKV World vocabulary").
//
// Vocabulary: one token per line, `<id> <literal> <nbytes>`, where the id is the text before the
// first space, nbytes the text after the last space and the literal (which may contain spaces)
// everything between: a Python str literal, whose bytes are its UTF-8 encoding, or a bytes
// literal b'...'.  Encoding is greedy longest match over the input bytes in a byte trie; decoding
// concatenates token bytes.  Id 0 is end-of-text and never appears in the file.
#include <algorithm>
#include <optional>
#include <unordered_map>
#include <utility>

#include "core/error.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace rwkvrt {
namespace {

// Ids above this are refused: the id table is dense, and real vocabularies stay far below it.
constexpr int64_t kMaxId = 1 << 24;

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Parses a Python str or bytes literal into the bytes it denotes (UTF-8 for str).  Returns an
// error description, or nothing on success.  Supported: the prefix b, either quote, the escapes
// \\ \' \" \a \b \f \n \r \t \v \xHH, octal \o..\ooo, and in str only \uHHHH and \UHHHHHHHH.
// In a str literal \xHH and octal escapes denote code points (U+00HH), not bytes.
std::optional<std::string> parse_literal(std::string_view lit, std::string& out) {
  const bool is_bytes = !lit.empty() && lit[0] == 'b';
  if (is_bytes) lit.remove_prefix(1);
  if (lit.size() < 2 || (lit[0] != '\'' && lit[0] != '"') || lit.back() != lit[0]) {
    return "not a quoted Python literal";
  }
  const char quote = lit[0];
  const std::string_view body = lit.substr(1, lit.size() - 2);

  // Appends a code point (str) or a byte value (bytes) given by an escape.
  auto put = [&](uint32_t value) -> std::optional<std::string> {
    if (is_bytes) {
      if (value > 0xFF) return "octal escape out of byte range";
      out += static_cast<char>(value);
    } else {
      if (value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF)) {
        return "escape denotes a surrogate or a value past U+10FFFF";
      }
      append_utf8(out, value);
    }
    return std::nullopt;
  };
  auto hex = [&](size_t& i, size_t digits, uint32_t& value) {
    if (i + digits > body.size()) return false;
    value = 0;
    for (size_t k = 0; k < digits; ++k) {
      const int h = hex_value(body[i + k]);
      if (h < 0) return false;
      value = value * 16 + static_cast<uint32_t>(h);
    }
    i += digits;
    return true;
  };

  for (size_t i = 0; i < body.size();) {
    const char c = body[i];
    if (c == quote) return "unescaped quote inside the literal";
    if (c != '\\') {
      const auto* p = reinterpret_cast<const uint8_t*>(body.data()) + i;
      if (is_bytes && *p >= 0x80) return "non-ASCII character in a bytes literal";
      const Utf8Sequence seq = decode_utf8(p, body.size() - i);
      if (seq.kind != Utf8Sequence::Kind::kValid) return "invalid UTF-8";
      out.append(body.data() + i, seq.length);
      i += seq.length;
      continue;
    }
    if (++i == body.size()) return "backslash at the end of the literal";
    const char e = body[i++];
    constexpr std::string_view kLetters = "\\'\"abfnrtv";  // \\ \' \" \a \b \f \n \r \t \v
    constexpr std::string_view kValues = "\\'\"\a\b\f\n\r\t\v";
    if (const size_t k = kLetters.find(e); k != std::string_view::npos) {
      out += kValues[k];
      continue;
    }
    uint32_t value = 0;
    std::optional<std::string> error;
    switch (e) {
      case 'x':
        if (!hex(i, 2, value)) return "\\x needs two hex digits";
        error = put(value);
        break;
      case 'u':
      case 'U':
        if (is_bytes) return "\\u and \\U are not escapes in a bytes literal";
        if (!hex(i, e == 'u' ? 4 : 8, value)) return "bad \\u or \\U escape";
        error = put(value);
        break;
      default:
        if (e < '0' || e > '7') return std::string("unknown escape \\") + e;
        value = static_cast<uint32_t>(e - '0');
        for (int k = 0; k < 2 && i < body.size() && body[i] >= '0' && body[i] <= '7'; ++k) {
          value = value * 8 + static_cast<uint32_t>(body[i++] - '0');
        }
        error = put(value);
    }
    if (error) return error;
  }
  return std::nullopt;
}

// A non-negative decimal integer of at most 10 digits, or -1.
int64_t parse_decimal(std::string_view s) {
  if (s.empty() || s.size() > 10) return -1;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return -1;
    v = v * 10 + (c - '0');
  }
  return v;
}

class WorldTokenizer final : public Tokenizer {
 public:
  WorldTokenizer(std::string_view text, const std::string& source) {
    parse(text, source);
    build_trie();
  }

  std::vector<int32_t> encode(std::string_view text) const override {
    const auto* bytes = reinterpret_cast<const uint8_t*>(text.data());
    const size_t n = text.size();
    std::vector<int32_t> ids;
    ids.reserve(n / 3 + 1);
    size_t pos = 0;
    while (pos < n) {
      int32_t node = root_children_[bytes[pos]];
      int32_t best = -1;
      size_t best_end = pos;
      size_t i = pos + 1;
      while (node >= 0) {
        if (nodes_[node].token > 0) {
          best = nodes_[node].token;
          best_end = i;
        }
        if (i == n) break;
        node = child(node, bytes[i++]);
      }
      if (best < 0) {
        fail(RWKVRT_ERR_INVALID_ARGUMENT,
             "byte 0x{:02X} at offset {} starts no token of this World vocabulary", bytes[pos],
             pos);
      }
      ids.push_back(best);
      pos = best_end;
    }
    return ids;
  }

  std::string decode(const int32_t* ids, size_t n) const override {
    std::string out;
    for (size_t i = 0; i < n; ++i) {
      const int32_t id = ids[i];
      if (id == 0) continue;  // end-of-text is not text
      check(id);
      out.append(pool_, offsets_[id], offsets_[id + 1] - offsets_[id]);
    }
    return out;
  }

  std::string token_bytes(int32_t id) const override { return decode(&id, 1); }

  size_t vocab_size() const override { return offsets_.size() - 1; }
  int32_t eos_id() const override { return 0; }
  const char* kind() const override { return "world"; }

 private:
  // A trie node.  Its children are edges [first_edge, first_edge + edge_count), sorted by label.
  struct Node {
    int32_t token = 0;  // the token that ends here, or 0 (id 0 is never a vocabulary token)
    uint32_t first_edge = 0;
    uint32_t edge_count = 0;
  };

  void check(int32_t id) const {
    if (id < 0 || static_cast<size_t>(id) >= vocab_size() || offsets_[id] == offsets_[id + 1]) {
      fail(RWKVRT_ERR_INVALID_ARGUMENT, "token id {} is not in the World vocabulary (1..{})", id,
           vocab_size() - 1);
    }
  }

  int32_t child(int32_t node, uint8_t label) const {
    const Node& nd = nodes_[node];
    const uint8_t* first = edge_labels_.data() + nd.first_edge;
    const uint8_t* last = first + nd.edge_count;
    const uint8_t* it = std::lower_bound(first, last, label);
    return it != last && *it == label ? edge_targets_[it - edge_labels_.data()] : -1;
  }

  void parse(std::string_view text, const std::string& source) {
    std::vector<std::pair<int32_t, std::string>> tokens;
    std::unordered_map<std::string, std::pair<int32_t, size_t>> seen_bytes;  // bytes -> id, line
    std::unordered_map<int32_t, size_t> seen_ids;                            // id -> line
    int32_t max_id = 0;
    size_t line_no = 0;
    for (size_t start = 0; start < text.size();) {
      size_t end = text.find('\n', start);
      if (end == std::string_view::npos) end = text.size();
      std::string_view line = text.substr(start, end - start);
      start = end + 1;
      ++line_no;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);  // CRLF checkouts

      auto bad = [&](const std::string& what) {
        const std::string shown(line.substr(0, 120));
        fail(RWKVRT_ERR_FORMAT, "{}:{}: {} (line: {})", source, line_no, what, shown);
      };
      const size_t first_space = line.find(' ');
      const size_t last_space = line.rfind(' ');
      if (first_space == std::string_view::npos || first_space == last_space) {
        bad("expected `<id> <literal> <nbytes>`");
      }
      const int64_t id = parse_decimal(line.substr(0, first_space));
      const int64_t nbytes = parse_decimal(line.substr(last_space + 1));
      if (id < 0 || nbytes < 0) bad("the id and the byte length must be decimal integers");
      if (id == 0) bad("id 0 is reserved for end-of-text");
      if (id > kMaxId) bad(fmt::format("id {} is larger than the supported {}", id, kMaxId));

      std::string bytes;
      const std::string_view literal = line.substr(first_space + 1, last_space - first_space - 1);
      if (auto error = parse_literal(literal, bytes)) bad("bad literal: " + *error);
      if (static_cast<int64_t>(bytes.size()) != nbytes) {
        bad(fmt::format("the literal is {} bytes, the line says {}", bytes.size(), nbytes));
      }
      if (bytes.empty()) bad("empty token");
      const auto id32 = static_cast<int32_t>(id);
      if (auto [it, fresh] = seen_ids.emplace(id32, line_no); !fresh) {
        bad(fmt::format("duplicate id {} (first on line {})", id, it->second));
      }
      if (auto [it, fresh] = seen_bytes.emplace(bytes, std::make_pair(id32, line_no)); !fresh) {
        bad(fmt::format("the same bytes as id {} (line {})", it->second.first, it->second.second));
      }
      max_id = std::max(max_id, id32);
      tokens.emplace_back(id32, std::move(bytes));
    }
    if (tokens.empty()) fail(RWKVRT_ERR_FORMAT, "{}: the World vocabulary is empty", source);

    std::sort(tokens.begin(), tokens.end());
    offsets_.assign(static_cast<size_t>(max_id) + 2, 0);
    size_t next = 0;
    for (int32_t id = 0; id <= max_id; ++id) {
      offsets_[id] = static_cast<uint32_t>(pool_.size());
      if (next < tokens.size() && tokens[next].first == id) pool_ += tokens[next++].second;
    }
    offsets_[max_id + 1] = static_cast<uint32_t>(pool_.size());
  }

  // Builds the trie from the token table: first with growable child lists, then flattened into
  // sorted edge arrays.  The root's children are also kept in a 256-entry table, since every
  // encode step starts there.
  void build_trie() {
    std::vector<std::vector<std::pair<uint8_t, int32_t>>> children(1);
    nodes_.assign(1, Node{});
    for (size_t id = 1; id < vocab_size(); ++id) {
      int32_t node = 0;
      for (uint32_t k = offsets_[id]; k < offsets_[id + 1]; ++k) {
        const auto label = static_cast<uint8_t>(pool_[k]);
        auto& list = children[node];
        auto it = std::find_if(list.begin(), list.end(), [&](auto& e) { return e.first == label; });
        if (it != list.end()) {
          node = it->second;
        } else {
          const auto fresh = static_cast<int32_t>(nodes_.size());
          list.emplace_back(label, fresh);
          nodes_.emplace_back();
          children.emplace_back();
          node = fresh;
        }
      }
      if (offsets_[id] != offsets_[id + 1]) nodes_[node].token = static_cast<int32_t>(id);
    }

    std::fill(std::begin(root_children_), std::end(root_children_), -1);
    for (size_t node = 0; node < nodes_.size(); ++node) {
      auto& list = children[node];
      std::sort(list.begin(), list.end());
      nodes_[node].first_edge = static_cast<uint32_t>(edge_labels_.size());
      nodes_[node].edge_count = static_cast<uint32_t>(list.size());
      for (const auto& [label, target] : list) {
        edge_labels_.push_back(label);
        edge_targets_.push_back(target);
        if (node == 0) root_children_[label] = target;
      }
    }
  }

  std::string pool_;               // every token's bytes, in id order
  std::vector<uint32_t> offsets_;  // token id's bytes: pool_[offsets_[id], offsets_[id + 1])
  std::vector<Node> nodes_;        // nodes_[0] is the root
  std::vector<uint8_t> edge_labels_;
  std::vector<int32_t> edge_targets_;
  int32_t root_children_[256];
};

}  // namespace

std::unique_ptr<Tokenizer> make_world_tokenizer_from_text(std::string_view vocab_text,
                                                          const std::string& source) {
  return std::make_unique<WorldTokenizer>(vocab_text, source);
}

}  // namespace rwkvrt
