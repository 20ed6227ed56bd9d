// The World tokenizer: exact against the reference's ids for every shared test case, the
// vocabulary literal syntax, error reporting, and encode speed.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "core/error.h"
#include "support/test_data.h"
#include "tokenizer/tokenizer.h"

namespace rwkvrt {
namespace {

const Tokenizer& world() {
  static const std::unique_ptr<Tokenizer> tokenizer =
      load_tokenizer(test::testdata_path("tokenizer/rwkv_vocab_v20230424.txt"));
  return *tokenizer;
}

nlohmann::json cases() {
  std::ifstream in(test::testdata_path("tokenizer/world_tokenizer.json"));
  return nlohmann::json::parse(in);
}

std::string from_hex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  }
  return out;
}

rwkvrt_status status_of(const std::function<void()>& f, std::string* message = nullptr) {
  try {
    f();
  } catch (const Error& e) {
    if (message != nullptr) *message = e.what();
    return e.status();
  }
  return RWKVRT_OK;
}

TEST(WorldTokenizer, Properties) {
  EXPECT_STREQ(world().kind(), "world");
  EXPECT_EQ(world().vocab_size(), 65530u);
  EXPECT_EQ(world().eos_id(), 0);
}

TEST(WorldTokenizer, MatchesReferenceOnTextCases) {
  const auto j = cases();
  ASSERT_GE(j.at("cases").size(), 50u);
  for (const auto& c : j.at("cases")) {
    const auto text = c.at("text").get<std::string>();
    const auto ids = c.at("ids").get<std::vector<int32_t>>();
    EXPECT_EQ(world().encode(text), ids) << text;
    EXPECT_EQ(world().decode(ids.data(), ids.size()), text) << text;
  }
}

TEST(WorldTokenizer, MatchesReferenceOnByteCases) {
  const auto j = cases();
  ASSERT_FALSE(j.at("byte_cases").empty());
  for (const auto& c : j.at("byte_cases")) {
    const std::string bytes = from_hex(c.at("bytes_hex").get<std::string>());
    const auto ids = c.at("ids").get<std::vector<int32_t>>();
    EXPECT_EQ(world().encode(bytes), ids) << c.at("bytes_hex");
    EXPECT_EQ(world().decode(ids.data(), ids.size()), bytes) << c.at("bytes_hex");
  }
}

TEST(WorldTokenizer, StrEscapesAreCodePointsBytesEscapesAreBytes) {
  EXPECT_EQ(world().token_bytes(2423), "\xC2\x80");  // '\x80'
  EXPECT_EQ(world().token_bytes(129), "\x80");       // b'\x80'
  EXPECT_EQ(world().token_bytes(3025), "\xE4\xB8");  // b'\xe4\xb8'
  EXPECT_EQ(world().token_bytes(1), std::string(1, '\0'));
  EXPECT_EQ(world().token_bytes(256), "\xFF");
}

TEST(WorldTokenizer, EndOfTextDecodesToNothing) {
  const std::vector<int32_t> ids = {0, 34, 0};
  EXPECT_EQ(world().decode(ids.data(), ids.size()), "!");
  EXPECT_EQ(world().token_bytes(0), "");
}

TEST(WorldTokenizer, RejectsIdsOutsideTheVocabulary) {
  for (int32_t id : {-1, 65530, 65535, 1 << 30}) {
    std::string message;
    EXPECT_EQ(status_of([&] { world().token_bytes(id); }, &message), RWKVRT_ERR_INVALID_ARGUMENT);
    EXPECT_NE(message.find(std::to_string(id)), std::string::npos) << message;
  }
}

TEST(WorldTokenizer, GreedyLongestMatch) {
  const auto t = make_world_tokenizer_from_text("1 'a' 1\n2 'b' 1\n3 'ab' 2\n4 'abc' 3\n5 'c' 1\n");
  EXPECT_EQ(t->encode("abcab"), (std::vector<int32_t>{4, 3}));
  EXPECT_EQ(t->encode("abab"), (std::vector<int32_t>{3, 3}));
  EXPECT_EQ(t->encode("aabc"), (std::vector<int32_t>{1, 4}));
  EXPECT_TRUE(t->encode("").empty());
  std::string message;
  EXPECT_EQ(status_of([&] { t->encode("abd"); }, &message), RWKVRT_ERR_INVALID_ARGUMENT);
  EXPECT_NE(message.find("0x64"), std::string::npos) << message;
}

TEST(WorldTokenizer, ParsesEveryLiteralForm) {
  const auto t = make_world_tokenizer_from_text(
      "1 'a b' 3\n"          // a space inside the literal
      "2 '\\u00e9' 2\n"      // \u: U+00E9 as UTF-8
      "3 b'\\377\\0' 2\n"    // octal in bytes
      "4 '\\U0001F600' 4\n"  // \U
      "5 \"it's\" 4\n"       // double quotes
      "6 '\\x80' 2\n"        // \x in str: a code point
      "7 b'\\x80\\\\' 2\n"   // \x in bytes, escaped backslash
      "8 '\\'\\\"\\n\\t\\r' 5\n"
      "9 '\xC3\xA9t\xC3\xA9' 5\n"  // raw UTF-8
      "10 ' ' 1\r\n");             // CRLF line end
  EXPECT_EQ(t->token_bytes(1), "a b");
  EXPECT_EQ(t->token_bytes(2), "\xC3\xA9");
  EXPECT_EQ(t->token_bytes(3), std::string("\xFF\0", 2));
  EXPECT_EQ(t->token_bytes(4), "\xF0\x9F\x98\x80");
  EXPECT_EQ(t->token_bytes(5), "it's");
  EXPECT_EQ(t->token_bytes(6), "\xC2\x80");
  EXPECT_EQ(t->token_bytes(7), "\x80\\");
  EXPECT_EQ(t->token_bytes(8), "'\"\n\t\r");
  EXPECT_EQ(t->token_bytes(9), "\xC3\xA9t\xC3\xA9");
  EXPECT_EQ(t->token_bytes(10), " ");
  EXPECT_EQ(t->vocab_size(), 11u);
}

TEST(WorldTokenizer, ReportsMalformedLinesWithFileAndLine) {
  struct Bad {
    const char* line;
    const char* expect;
  };
  const Bad bads[] = {
      {"3 'abc' 4", "is 3 bytes, the line says 4"},
      {"3 abc 3", "bad literal"},
      {"3 'ab 2", "bad literal"},
      {"3 'a'b' 3", "unescaped quote"},
      {"3 '\\q' 1", "unknown escape"},
      {"3 '\\x4' 1", "two hex digits"},
      {"3 b'\\u0041' 1", "not escapes in a bytes literal"},
      {"3 '\\ud800' 3", "surrogate"},
      {"3 b'\xC3\xA9' 2", "non-ASCII"},
      {"3 '\xFF' 1", "invalid UTF-8"},
      {"1 'x' 1", "duplicate id 1 (first on line 1)"},
      {"3 'a' 1", "the same bytes as id 1"},
      {"0 'z' 1", "reserved for end-of-text"},
      {"x 'z' 1", "decimal"},
      {"3 'z'", "expected `<id> <literal> <nbytes>`"},
      {"", "expected"},
      {"3 '' 0", "empty token"},
  };
  for (const Bad& bad : bads) {
    const std::string text = std::string("1 'a' 1\n2 'b' 1\n") + bad.line + "\n4 'd' 1\n";
    std::string message;
    EXPECT_EQ(status_of([&] { make_world_tokenizer_from_text(text, "vocab.txt"); }, &message),
              RWKVRT_ERR_FORMAT)
        << bad.line;
    EXPECT_NE(message.find("vocab.txt:3: "), std::string::npos) << message;
    EXPECT_NE(message.find(bad.expect), std::string::npos) << message;
  }
}

TEST(WorldTokenizer, EncodesAMegabyteQuickly) {
  const auto j = cases();
  std::string text;
  while (text.size() < (1u << 20)) {
    for (const auto& c : j.at("cases")) text += c.at("text").get<std::string>();
  }
  const auto start = std::chrono::steady_clock::now();
  const std::vector<int32_t> ids = world().encode(text);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  RecordProperty("encode_1MB_ms", std::to_string(seconds * 1000));
  EXPECT_TRUE(world().decode(ids.data(), ids.size()) == text);
  EXPECT_LT(seconds, 1.0);  // typically ~20 ms in a release build
}

}  // namespace
}  // namespace rwkvrt
