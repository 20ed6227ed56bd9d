// The byte-level BPE tokenizer: exact against the Hugging Face `tokenizers` library on GPT-NeoX's
// 20B_tokenizer.json for every shared case, plus normalisation, special tokens, malformed input
// and the configurations it refuses.
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

const Tokenizer& neox() {
  static const std::unique_ptr<Tokenizer> tokenizer =
      load_tokenizer(test::testdata_path("tokenizer/20B_tokenizer.json"));
  return *tokenizer;
}

nlohmann::json cases() {
  std::ifstream in(test::testdata_path("tokenizer/neox_tokenizer.json"));
  return nlohmann::json::parse(in);
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

std::vector<int32_t> encode(const std::string& text) {
  return neox().encode(text);
}

TEST(BpeTokenizer, Properties) {
  EXPECT_STREQ(neox().kind(), "bpe");
  EXPECT_EQ(neox().vocab_size(), 50277u);
  EXPECT_EQ(neox().eos_id(), 0);
}

TEST(BpeTokenizer, MatchesHuggingFaceOnEveryCase) {
  const auto j = cases();
  ASSERT_GE(j.at("cases").size(), 50u);
  for (const auto& c : j.at("cases")) {
    const auto text = c.at("text").get<std::string>();
    const auto ids = c.at("ids").get<std::vector<int32_t>>();
    EXPECT_EQ(encode(text), ids) << text;
    EXPECT_EQ(neox().decode(ids.data(), ids.size()), c.at("decoded").get<std::string>()) << text;
  }
}

TEST(BpeTokenizer, SpecialTokensAreMatchedAnywhereAndSkippedByDecode) {
  const std::vector<int32_t> ids = encode("Hello<|endoftext|>world<|padding|>");
  ASSERT_EQ(ids.size(), 4u);
  EXPECT_EQ(ids[1], 0);
  EXPECT_EQ(ids[3], 1);
  EXPECT_EQ(neox().decode(ids.data(), ids.size()), "Helloworld");
  EXPECT_EQ(neox().token_bytes(0), "");
  // A near miss is ordinary text.
  const std::vector<int32_t> near = encode("<|endoftext|");
  EXPECT_EQ(neox().decode(near.data(), near.size()), "<|endoftext|");
}

TEST(BpeTokenizer, SpaceRunsUseTheAddedSpaceTokensLeftmostLongest) {
  // 50254 is 24 spaces, 50276 two: 26 spaces are 24 + 2, 25 are 24 + a lone space (209, "Ġ").
  EXPECT_EQ(encode(std::string(26, ' ')), (std::vector<int32_t>{50254, 50276}));
  EXPECT_EQ(encode(std::string(25, ' ')), (std::vector<int32_t>{50254, 209}));
  EXPECT_EQ(neox().token_bytes(50254), std::string(24, ' '));
}

TEST(BpeTokenizer, NormalisesToNfc) {
  // "é" written decomposed (e + U+0301) encodes like the precomposed character.
  EXPECT_EQ(encode("caf\x65\xCC\x81"), encode("caf\xC3\xA9"));
  EXPECT_EQ(encode("\xE2\x84\xAB"), encode("\xC3\x85"));  // U+212B ANGSTROM SIGN -> U+00C5
}

TEST(BpeTokenizer, RefusesMalformedUtf8) {
  for (const char* bytes : {"ab\xFF", "\xE4\xB8 x", "\xC0\x80", "\xED\xA0\x80"}) {
    std::string message;
    EXPECT_EQ(status_of([&] { encode(bytes); }, &message), RWKVRT_ERR_INVALID_ARGUMENT) << bytes;
    EXPECT_NE(message.find("not valid UTF-8"), std::string::npos) << message;
  }
}

TEST(BpeTokenizer, RoundTripsAndEncodesAMegabyteQuickly) {
  const auto j = cases();
  std::string text;
  while (text.size() < (1u << 20)) {
    for (const auto& c : j.at("cases")) {
      const auto t = c.at("text").get<std::string>();
      if (t.find("<|") == std::string::npos) text += t + "\n";  // special tokens decode to ""
    }
  }
  const auto start = std::chrono::steady_clock::now();
  const std::vector<int32_t> ids = encode(text);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  RecordProperty("encode_1MB_ms", std::to_string(seconds * 1000));
  EXPECT_TRUE(neox().decode(ids.data(), ids.size()) == text);
  EXPECT_LT(seconds, 2.0);
}

TEST(BpeTokenizer, RejectsIdsOutsideTheVocabulary) {
  for (int32_t id : {-1, 50277, 1 << 30}) {
    EXPECT_EQ(status_of([&] { neox().token_bytes(id); }), RWKVRT_ERR_INVALID_ARGUMENT) << id;
  }
}

// A minimal tokenizer.json: the 256 byte symbols, one merge, and the given settings.
std::string tiny_json(const std::string& settings) {
  nlohmann::json vocab;
  int id = 0;
  for (const char* printable : {"!", "\"", "a", "b"}) vocab[printable] = id++;
  return R"({"model": {"type": "BPE", "vocab": )" + vocab.dump() + R"(, "merges": []}, )" +
         R"("added_tokens": [], )" + settings + "}";
}

TEST(BpeTokenizer, RefusesWhatItCannotReproduce) {
  struct Case {
    std::string json;
    rwkvrt_status status;
    const char* expect;
  };
  const std::string byte_level =
      R"("pre_tokenizer": {"type": "ByteLevel"}, "decoder": {"type": "ByteLevel"})";
  const Case cases[] = {
      {"{", RWKVRT_ERR_FORMAT, "not valid JSON"},
      {"{}", RWKVRT_ERR_FORMAT, "not a Hugging Face tokenizer.json"},
      {tiny_json(R"("normalizer": {"type": "Lowercase"}, )" + byte_level), RWKVRT_ERR_UNSUPPORTED,
       "normalizer Lowercase"},
      {tiny_json(R"("pre_tokenizer": {"type": "Metaspace"})"), RWKVRT_ERR_UNSUPPORTED,
       "pre_tokenizer Metaspace"},
      {tiny_json(R"("post_processor": {"type": "TemplateProcessing"}, )" + byte_level),
       RWKVRT_ERR_UNSUPPORTED, "post_processor TemplateProcessing"},
      {tiny_json(byte_level), RWKVRT_ERR_FORMAT, "has no token"},  // lacks most byte symbols
  };
  for (const Case& c : cases) {
    std::string message;
    EXPECT_EQ(status_of([&] { make_bpe_tokenizer_from_json(c.json, "tok.json"); }, &message),
              c.status)
        << c.json;
    EXPECT_NE(message.find("tok.json"), std::string::npos) << message;
    EXPECT_NE(message.find(c.expect), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace rwkvrt
