// safetensors: the writer and reader round-trip every dtype (rwkvrt's quantised extension too)
// with aligned offsets, atomic replacement and cancellation; the reader rejects hostile headers and
// truncated files with Error(FORMAT) (or UNSUPPORTED for well-formed dtypes it does not read).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "dtype_convert.h"
#include "loaders/checkpoint_readers.h"
#include "loaders/safetensors_writer.h"
#include "support/test_data.h"

namespace rwkvrt {
namespace {

namespace fs = std::filesystem;

// A TensorSet of every dtype, with sizes that are not all multiples of 8 (so the writer pads).
TensorSet sample_set() {
  TensorSet s;
  auto add = [&](const std::string& name, DType dtype, std::vector<int64_t> shape) {
    Tensor t;
    t.name = name;
    t.dtype = dtype;
    t.shape = std::move(shape);
    t.nbytes = dtype_bytes_for(dtype, t.numel());
    uint8_t* p = s.allocate(t.nbytes);
    for (size_t i = 0; i < t.nbytes; ++i) p[i] = uint8_t(i * 7 + name.size());
    t.data = p;
    s.add(std::move(t));
  };
  add("emb.weight", DType::F32, {3, 5});
  add("blocks.0.ln1.weight", DType::F16, {7});
  add("blocks.0.ln1.bias", DType::BF16, {2, 3});
  add("blocks.0.att.key.weight", DType::Q4_0, {3, 32});
  add("blocks.0.att.value.weight", DType::Q4_1, {1, 64});
  add("blocks.0.att.receptance.weight", DType::Q5_0, {2, 32});
  add("blocks.0.att.output.weight", DType::Q5_1, {1, 32});
  add("blocks.0.ffn.key.weight", DType::Q8_0, {2, 1, 32});
  add("scalar", DType::F32, {});
  add("empty", DType::F16, {0, 4});
  return s;
}

const std::map<std::string, std::string> kMetadata = {
    {"rwkvrt.version", "0.1.0"}, {"rwkvrt.group_norm_eps", "0.00064"}, {"note", "héllo \"x\""}};

void expect_same_tensors(const TensorSet& a, const TensorSet& b) {
  ASSERT_EQ(a.size(), b.size());
  for (const Tensor& ta : a.tensors()) {
    SCOPED_TRACE(ta.name);
    const Tensor* tb = b.find(ta.name);
    ASSERT_NE(tb, nullptr);
    EXPECT_EQ(ta.dtype, tb->dtype);
    EXPECT_EQ(ta.shape, tb->shape);
    ASSERT_EQ(ta.nbytes, tb->nbytes);
    if (ta.nbytes) {
      EXPECT_EQ(std::memcmp(ta.data, tb->data, ta.nbytes), 0);
    }
  }
}

// Builds a safetensors file from a header text and a data block.
std::string make_file(const std::string& header, size_t data_bytes = 0) {
  std::string bytes;
  for (int i = 0; i < 8; ++i) bytes += char(uint8_t(uint64_t(header.size()) >> (8 * i)));
  bytes += header;
  bytes.append(data_bytes, '\0');
  const std::string path = test::scratch_dir() + "/model.safetensors";
  test::write_file(path, bytes);
  return path;
}

void expect_error(const std::string& path, rwkvrt_status status, const std::string& substring) {
  try {
    read_safetensors(path);
    ADD_FAILURE() << "no error; expected one containing '" << substring << "'";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), status) << e.what();
    EXPECT_NE(std::string(e.what()).find(substring), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

void expect_header_error(const std::string& header, size_t data_bytes, rwkvrt_status status,
                         const std::string& substring) {
  SCOPED_TRACE(header);
  expect_error(make_file(header, data_bytes), status, substring);
}

// --- writer and round trip ---------------------------------------------------------------------

TEST(SafetensorsTest, RoundTripKeepsBytesShapesDtypesAndMetadata) {
  const TensorSet original = sample_set();
  const std::string path = test::scratch_dir() + "/m.safetensors";
  write_safetensors(path, original, kMetadata, nullptr);
  EXPECT_FALSE(fs::exists(path + ".tmp"));

  const TensorSet back = read_safetensors(path);
  expect_same_tensors(original, back);
  EXPECT_EQ(back.tensors()[0].name, "emb.weight");  // file order is the set's order
  auto expected = kMetadata;
  expected["format"] = "safetensors";
  EXPECT_EQ(back.metadata, expected);
  // The generic entry point recognises the file too.
  expect_same_tensors(original, read_checkpoint(path));
}

TEST(SafetensorsTest, WriterAlignsHeaderAndEveryDataOffset) {
  const std::string path = test::scratch_dir() + "/m.safetensors";
  write_safetensors(path, sample_set(), {}, nullptr);
  const std::vector<uint8_t> bytes = test::read_file(path);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[size_t(i)];
  EXPECT_EQ((8 + n) % 8, 0u);
  const auto header = nlohmann::json::parse(bytes.begin() + 8, bytes.begin() + long(8 + n));
  EXPECT_FALSE(header.contains("__metadata__"));  // none given
  EXPECT_EQ(header["blocks.0.att.key.weight"]["dtype"], "Q4_0");
  EXPECT_EQ(header["blocks.0.att.key.weight"]["shape"], nlohmann::json({3, 32}));
  uint64_t last_end = 0;
  for (const auto& [name, entry] : header.items()) {
    const uint64_t begin = entry["data_offsets"][0];
    EXPECT_EQ(begin % 8, 0u) << name;
    last_end = std::max<uint64_t>(last_end, entry["data_offsets"][1]);
  }
  EXPECT_EQ(bytes.size(), 8 + n + last_end);
}

TEST(SafetensorsTest, RwkvcppModelRoundTripsThroughSafetensors) {
  // Quantised matrices (Q5_1), mapped tensors and the reader's rebuilt F32 tensors together.
  const TensorSet model = read_rwkvcpp(test::testdata_path("rwkvcpp/tiny-rwkv-7v0-834K-Q5_1.bin"));
  const std::string path = test::scratch_dir() + "/tiny.safetensors";
  write_safetensors(path, model, {{"rwkvrt.group_norm_eps", "0.00064"}}, nullptr);
  const TensorSet back = read_safetensors(path);
  expect_same_tensors(model, back);
  EXPECT_EQ(back.metadata.at("rwkvrt.group_norm_eps"), "0.00064");
}

TEST(SafetensorsTest, ProgressRisesToOne) {
  std::vector<float> seen;
  const std::string path = test::scratch_dir() + "/m.safetensors";
  write_safetensors(path, sample_set(), kMetadata, [&](float f) {
    seen.push_back(f);
    return true;
  });
  ASSERT_GE(seen.size(), 3u);
  EXPECT_EQ(seen.front(), 0.0f);
  EXPECT_EQ(seen.back(), 1.0f);
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
}

TEST(SafetensorsTest, CancellingLeavesNoFileAndKeepsTheOldOne) {
  const std::string dir = test::scratch_dir();
  const std::string path = dir + "/m.safetensors";
  test::write_file(path, std::string("old contents"));
  for (int cancel_at : {0, 1, 4}) {
    int calls = 0;
    try {
      write_safetensors(path, sample_set(), kMetadata, [&](float) { return calls++ < cancel_at; });
      ADD_FAILURE() << "not cancelled";
    } catch (const Error& e) {
      EXPECT_EQ(e.status(), RWKVRT_ERR_CANCELLED) << e.what();
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
    EXPECT_FALSE(fs::exists(path + ".tmp"));
    const std::vector<uint8_t> kept = test::read_file(path);
    EXPECT_EQ(std::string(kept.begin(), kept.end()), "old contents");
  }
  // An overwrite that completes replaces the old file.
  write_safetensors(path, sample_set(), kMetadata, nullptr);
  expect_same_tensors(sample_set(), read_safetensors(path));
}

TEST(SafetensorsTest, WriterReportsIoErrorsAndBadTensors) {
  const std::string missing = test::scratch_dir() + "/no/such/dir/m.safetensors";
  try {
    write_safetensors(missing, sample_set(), {}, nullptr);
    ADD_FAILURE() << "wrote into a missing directory";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), RWKVRT_ERR_IO) << e.what();
    EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
  }

  const std::string path = test::scratch_dir() + "/m.safetensors";
  auto expect_invalid = [&](Tensor t, const std::string& substring) {
    TensorSet s;
    s.add(std::move(t));
    try {
      write_safetensors(path, s, {}, nullptr);
      ADD_FAILURE() << "accepted a bad tensor";
    } catch (const Error& e) {
      EXPECT_EQ(e.status(), RWKVRT_ERR_INVALID_ARGUMENT) << e.what();
      EXPECT_NE(std::string(e.what()).find(substring), std::string::npos) << e.what();
    }
    EXPECT_FALSE(fs::exists(path));
    EXPECT_FALSE(fs::exists(path + ".tmp"));
  };
  static const uint8_t bytes[64] = {};
  expect_invalid(Tensor{"a", DType::F32, {4}, bytes, 12}, "holds 12 bytes");
  expect_invalid(Tensor{"q", DType::Q8_0, {2, 16}, bytes, 34}, "multiple of 32");
  expect_invalid(Tensor{"__metadata__", DType::F32, {1}, bytes, 4}, "named '__metadata__'");
}

// --- hostile files -----------------------------------------------------------------------------

TEST(SafetensorsTest, RejectsEmptyTruncatedAndAbsurdHeaderLengths) {
  const std::string dir = test::scratch_dir();
  test::write_file(dir + "/empty", std::string());
  expect_error(dir + "/empty", RWKVRT_ERR_FORMAT, "is truncated: 0 bytes");
  test::write_file(dir + "/short", std::string("\x10\0\0", 3));
  expect_error(dir + "/short", RWKVRT_ERR_FORMAT, "is truncated: 3 bytes");

  std::vector<uint8_t> absurd = {0, 0, 0, 0, 0, 1, 0, 0};  // 2^40
  absurd.push_back('{');
  test::write_file(dir + "/absurd", absurd);
  expect_error(dir + "/absurd", RWKVRT_ERR_FORMAT, "header length 1099511627776 is absurd");
  std::vector<uint8_t> past = {100, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
  test::write_file(dir + "/past", past);
  expect_error(dir + "/past", RWKVRT_ERR_FORMAT, "header length 100 runs past the end");
}

TEST(SafetensorsTest, RejectsHeadersThatAreNotTheExpectedJson) {
  expect_header_error("{\"a\": ", 0, RWKVRT_ERR_FORMAT, "not valid JSON");
  expect_header_error("[1, 2]", 0, RWKVRT_ERR_FORMAT, "must be a JSON object, found array");
  expect_header_error(R"({"a": 3})", 0, RWKVRT_ERR_FORMAT, "'a' is not a JSON object");
  expect_header_error(R"({"a": {"dtype": "F32", "shape": [1]}})", 4, RWKVRT_ERR_FORMAT,
                      "'a' has no \"data_offsets\"");
  expect_header_error(R"({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", 4,
                      RWKVRT_ERR_FORMAT, "\"shape\" holds -1");
  expect_header_error(R"({"a": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}})", 4,
                      RWKVRT_ERR_FORMAT, "not a non-negative integer");
  expect_header_error(R"({"a": {"dtype": "F32", "shape": 4, "data_offsets": [0, 4]}})", 4,
                      RWKVRT_ERR_FORMAT, "\"shape\" is not an array");
  expect_header_error(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0]}})", 4,
                      RWKVRT_ERR_FORMAT, "not a [begin, end] pair");
  expect_header_error(R"({"__metadata__": {"k": 1}})", 0, RWKVRT_ERR_FORMAT,
                      "metadata \"k\" is not a string");
  expect_header_error(R"({"__metadata__": []})", 0, RWKVRT_ERR_FORMAT,
                      "\"__metadata__\" is not a JSON object");
  expect_header_error(
      R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
      8, RWKVRT_ERR_FORMAT, "the key \"a\" twice");
}

TEST(SafetensorsTest, RejectsUnknownAndUnsupportedDtypes) {
  expect_header_error(R"({"a": {"dtype": "F99", "shape": [1], "data_offsets": [0, 4]}})", 4,
                      RWKVRT_ERR_FORMAT, "tensor 'a' has unknown dtype \"F99\"");
  expect_header_error(R"({"a": {"dtype": "I64", "shape": [1], "data_offsets": [0, 8]}})", 8,
                      RWKVRT_ERR_UNSUPPORTED, "tensor 'a' has dtype I64");
  expect_header_error(R"({"a": {"dtype": 7, "shape": [1], "data_offsets": [0, 4]}})", 4,
                      RWKVRT_ERR_FORMAT, "\"dtype\" is not a string");
}

TEST(SafetensorsTest, RejectsBadOffsetsAndSizes) {
  expect_header_error(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})", 4,
                      RWKVRT_ERR_FORMAT, "past the end of the data (4 bytes)");
  expect_header_error(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}})", 8,
                      RWKVRT_ERR_FORMAT, "end before they begin");
  expect_header_error(R"({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})", 8,
                      RWKVRT_ERR_FORMAT, "occupies 8 bytes, but shape (3,) of F32 needs 12");
  expect_header_error(R"({"a": {"dtype": "BF16", "shape": [2, 2], "data_offsets": [0, 16]}})", 16,
                      RWKVRT_ERR_FORMAT, "needs 8 bytes");
  expect_header_error(R"({"a": {"dtype": "Q8_0", "shape": [2, 16], "data_offsets": [0, 34]}})", 34,
                      RWKVRT_ERR_FORMAT, "last dimension must be a multiple of 32");
  expect_header_error(R"({"a": {"dtype": "Q8_0", "shape": [1, 64], "data_offsets": [0, 64]}})", 68,
                      RWKVRT_ERR_FORMAT, "occupies 64 bytes, but shape (1, 64) of Q8_0 needs 68");
  expect_header_error(
      R"({"a": {"dtype": "F32", "shape": [4294967296, 4294967296, 4], "data_offsets": [0, 0]}})", 0,
      RWKVRT_ERR_FORMAT, "impossibly large");
  expect_header_error(
      R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
          "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
      12, RWKVRT_ERR_FORMAT, "tensors 'a' [0, 8] and 'b' [4, 12] overlap");
  expect_header_error(
      R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
          "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
      16, RWKVRT_ERR_FORMAT, "overlap");
}

TEST(SafetensorsTest, AcceptsGapsEmptyTensorsAndTrailingBytes) {
  const TensorSet s = read_safetensors(make_file(
      R"({"b": {"dtype": "F16", "shape": [2], "data_offsets": [8, 12]},
          "a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
          "e": {"dtype": "F32", "shape": [0, 3], "data_offsets": [2, 2]}})",
      20));
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s.tensors()[0].name, "a");  // file order
  EXPECT_EQ(s.tensors()[2].name, "b");
  EXPECT_EQ(s.find("b")->data - s.find("a")->data, 8);
  EXPECT_EQ(s.find("e")->nbytes, 0u);
  EXPECT_EQ(s.metadata.at("format"), "safetensors");
}

TEST(SafetensorsTest, TruncationAtEveryOffsetFailsCleanly) {
  const std::string dir = test::scratch_dir();
  write_safetensors(dir + "/full", sample_set(), kMetadata, nullptr);
  const std::vector<uint8_t> full = test::read_file(dir + "/full");
  const std::string path = dir + "/cut";
  for (size_t cut = 0; cut < full.size(); ++cut) {
    test::write_file(path, std::vector<uint8_t>(full.begin(), full.begin() + long(cut)));
    try {
      read_safetensors(path);
      ADD_FAILURE() << "cut at " << cut << " read without error";
    } catch (const Error& e) {
      EXPECT_EQ(e.status(), RWKVRT_ERR_FORMAT) << "cut at " << cut << ": " << e.what();
      const std::string msg = e.what();
      EXPECT_TRUE(msg.find("truncated") != std::string::npos) << "cut at " << cut << ": " << msg;
    }
  }
}

}  // namespace
}  // namespace rwkvrt
