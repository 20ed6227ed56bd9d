// load_tokenizer's detection of the file kind and its errors, and the byte-level tokenizer.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.h"
#include "support/test_data.h"
#include "tokenizer/tokenizer.h"

namespace rwkvrt {
namespace {

rwkvrt_status load_status(const std::string& path, std::string* message) {
  try {
    load_tokenizer(path);
  } catch (const Error& e) {
    *message = e.what();
    return e.status();
  }
  return RWKVRT_OK;
}

TEST(TokenizerFactory, DetectsTheKindFromTheContents) {
  const std::string dir = test::scratch_dir();
  test::write_file(dir + "/vocab.txt", std::string("1 'a' 1\n2 b'\\xff' 1\n"));
  EXPECT_STREQ(load_tokenizer(dir + "/vocab.txt")->kind(), "world");
  EXPECT_STREQ(load_tokenizer(test::testdata_path("tokenizer/20B_tokenizer.json"))->kind(), "bpe");
}

TEST(TokenizerFactory, ReportsMissingAndUnrecognisedFiles) {
  const std::string dir = test::scratch_dir();
  std::string message;
  EXPECT_EQ(load_status(dir + "/absent.json", &message), RWKVRT_ERR_IO);
  EXPECT_NE(message.find("absent.json"), std::string::npos) << message;

  test::write_file(dir + "/junk.bin", std::string("\x7F"
                                                  "ELF\x02\x01",
                                                  6));
  EXPECT_EQ(load_status(dir + "/junk.bin", &message), RWKVRT_ERR_FORMAT);
  EXPECT_NE(message.find("junk.bin"), std::string::npos) << message;

  test::write_file(dir + "/bad.txt", std::string("1 'a' 1\n2 'bc' 1\n"));
  EXPECT_EQ(load_status(dir + "/bad.txt", &message), RWKVRT_ERR_FORMAT);
  EXPECT_NE(message.find("bad.txt:2:"), std::string::npos) << message;
}

TEST(ByteTokenizer, IdsAreByteValues) {
  const auto t = make_byte_tokenizer();
  EXPECT_STREQ(t->kind(), "byte");
  EXPECT_EQ(t->vocab_size(), 256u);
  EXPECT_EQ(t->eos_id(), 0);
  EXPECT_EQ(t->encode("\"in"), (std::vector<int32_t>{34, 105, 110}));  // rwkv.cpp's test prompt

  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  const std::vector<int32_t> ids = t->encode(all);
  ASSERT_EQ(ids.size(), 256u);
  for (int b = 0; b < 256; ++b) EXPECT_EQ(ids[b], b);
  EXPECT_EQ(t->decode(ids.data(), ids.size()), all);
  EXPECT_EQ(t->token_bytes(0), std::string(1, '\0'));
}

TEST(ByteTokenizer, RejectsIdsPastAByte) {
  const auto t = make_byte_tokenizer();
  for (int32_t id : {-1, 256}) {
    try {
      t->token_bytes(id);
      ADD_FAILURE() << id;
    } catch (const Error& e) {
      EXPECT_EQ(e.status(), RWKVRT_ERR_INVALID_ARGUMENT);
    }
  }
}

}  // namespace
}  // namespace rwkvrt
