// The .pth reader and its parts: the zip archive reader, the safe unpickler and read_pth itself.
// Real BlinkDL-layout checkpoints from the shared golden data must load with the right tensors;
// files written by the test pth_writer must round-trip, including zip64 and unaligned layouts;
// hostile and damaged files must each give Error(FORMAT) with a message naming the problem, and
// never a crash (the whole suite also runs under ASan/UBSan).
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/mapped_file.h"
#include "dtype_convert.h"
#include "loaders/checkpoint_readers.h"
#include "loaders/pickle_reader.h"
#include "loaders/zip_archive.h"
#include "support/pth_writer.h"
#include "support/test_data.h"

namespace rwkvrt {
namespace {

using namespace std::string_literals;
using test::PthOptions;
using test::PthTensor;
using test::ZipEntrySpec;

std::vector<uint8_t> f32_bytes(const std::vector<float>& v) {
  std::vector<uint8_t> b(v.size() * 4);
  if (!v.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}

std::vector<uint8_t> u16_bytes(const std::vector<uint16_t>& v) {
  std::vector<uint8_t> b(v.size() * 2);
  if (!v.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}

PthTensor f32_tensor(const std::string& name, std::vector<int64_t> shape, size_t count,
                     float first = 0.0f) {
  std::vector<float> v(count);
  for (size_t i = 0; i < count; ++i) v[i] = first + float(i) * 0.5f;
  PthTensor t;
  t.name = name;
  t.shape = std::move(shape);
  t.data = f32_bytes(v);
  return t;
}

// A small valid checkpoint: two float32 tensors.
std::vector<PthTensor> small_tensors() {
  return {f32_tensor("emb.weight", {2, 3}, 6), f32_tensor("ln_out.bias", {3}, 3, 10.0f)};
}

std::string write_temp(const std::vector<uint8_t>& bytes, const std::string& name = "m.pth") {
  const std::string path = test::scratch_dir() + "/" + name;
  test::write_file(path, bytes);
  return path;
}

uint64_t read_le(const std::vector<uint8_t>& bytes, size_t offset, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = v << 8 | bytes[offset + size_t(i)];
  return v;
}

void write_le(std::vector<uint8_t>& bytes, size_t offset, uint64_t value, int n) {
  for (int i = 0; i < n; ++i) bytes[offset + size_t(i)] = uint8_t(value >> (8 * i));
}

// The message of the Error(FORMAT) that `f` throws; a test failure if it throws nothing or
// something else.
template <typename F>
std::string format_error(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), RWKVRT_ERR_FORMAT) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

std::string pth_error(const std::vector<uint8_t>& bytes) {
  const std::string path = write_temp(bytes);
  const std::string msg = format_error([&] { read_pth(path); });
  EXPECT_NE(msg.find(path), std::string::npos) << "the message does not name the file: " << msg;
  return msg;
}

std::string pickle_error(const std::string& pickle) {
  return format_error([&] {
    unpickle_tensor_dict(reinterpret_cast<const uint8_t*>(pickle.data()), pickle.size());
  });
}

#define EXPECT_CONTAINS(haystack, needle)                          \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) \
      << "expected \"" << (needle) << "\" in: " << (haystack)

void expect_same_tensors(const TensorSet& a, const TensorSet& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    const Tensor& x = a.tensors()[i];
    const Tensor& y = b.tensors()[i];
    EXPECT_EQ(x.name, y.name);
    EXPECT_EQ(x.dtype, y.dtype) << x.name;
    EXPECT_EQ(x.shape, y.shape) << x.name;
    ASSERT_EQ(x.nbytes, y.nbytes) << x.name;
    if (x.nbytes) {
      EXPECT_EQ(std::memcmp(x.data, y.data, x.nbytes), 0) << x.name;
    }
  }
}

// Back to writer tensors, each with its own storage.
std::vector<PthTensor> to_pth_tensors(const TensorSet& set) {
  std::vector<PthTensor> out;
  for (const Tensor& t : set.tensors()) {
    PthTensor p;
    p.name = t.name;
    p.dtype = t.dtype == DType::F32 ? "float32" : t.dtype == DType::F16 ? "float16" : "bfloat16";
    p.shape = t.shape;
    p.data.assign(t.data, t.data + t.nbytes);
    out.push_back(std::move(p));
  }
  return out;
}

// ---- the golden checkpoints ---------------------------------------------------------------------

struct GoldenFile {
  const char* name;
  size_t tensors;
  int64_t vocab;
  int64_t width;
  DType dtype;
};

class PthReaderGolden : public ::testing::TestWithParam<GoldenFile> {};

TEST_P(PthReaderGolden, LoadsWithExpectedTensors) {
  const GoldenFile& g = GetParam();
  const std::string path = test::testdata_path(std::string("golden/") + g.name + ".pth");
  const TensorSet set = read_pth(path);
  EXPECT_EQ(set.metadata.at("format"), "pth");
  ASSERT_EQ(set.size(), g.tensors);
  EXPECT_EQ(set.tensors().front().name, "emb.weight");
  EXPECT_EQ(set.tensors().back().name, "head.weight");

  const Tensor* emb = set.find("emb.weight");
  ASSERT_NE(emb, nullptr);
  EXPECT_EQ(emb->shape, (std::vector<int64_t>{g.vocab, g.width}));
  const Tensor* head = set.find("head.weight");
  ASSERT_NE(head, nullptr);
  EXPECT_EQ(head->shape, (std::vector<int64_t>{g.vocab, g.width}));
  const Tensor* ln0 = set.find("blocks.0.ln0.weight");
  ASSERT_NE(ln0, nullptr);
  EXPECT_EQ(ln0->shape, (std::vector<int64_t>{g.width}));
  for (const Tensor& t : set.tensors()) {
    EXPECT_EQ(t.dtype, g.dtype) << t.name;
    EXPECT_EQ(t.nbytes, dtype_bytes_for(t.dtype, t.numel())) << t.name;
  }
  // Through the format dispatcher as well.
  EXPECT_EQ(read_checkpoint(path).size(), g.tensors);
}

TEST_P(PthReaderGolden, RewrittenFileRoundTrips) {
  const GoldenFile& g = GetParam();
  const TensorSet original =
      read_pth(test::testdata_path(std::string("golden/") + g.name + ".pth"));
  PthOptions options;
  options.prefix = g.name;
  options.zip.align64 = false;
  const TensorSet copy = read_pth(write_temp(test::pth_bytes(to_pth_tensors(original), options)));
  expect_same_tensors(original, copy);
}

INSTANTIATE_TEST_SUITE_P(PthGolden, PthReaderGolden,
                         ::testing::Values(GoldenFile{"v4_L2_C64", 42, 500, 64, DType::F32},
                                           GoldenFile{"v5_L2_C128", 50, 500, 128, DType::F32},
                                           GoldenFile{"v6_L2_C128", 62, 500, 128, DType::BF16},
                                           GoldenFile{"v7_L2_C128", 72, 500, 128, DType::BF16},
                                           GoldenFile{"v7_L3_C256", 105, 1000, 256, DType::F16}),
                         [](const ::testing::TestParamInfo<GoldenFile>& p) {
                           return std::string(p.param.name);
                         });

TEST(PthReader, GoldenShapesOfVersionSpecificTensors) {
  const TensorSet v4 = read_pth(test::testdata_path("golden/v4_L2_C64.pth"));
  ASSERT_NE(v4.find("blocks.0.att.time_mix_k"), nullptr);
  EXPECT_EQ(v4.find("blocks.0.att.time_mix_k")->shape, (std::vector<int64_t>{1, 1, 64}));
  const TensorSet v7 = read_pth(test::testdata_path("golden/v7_L2_C128.pth"));
  ASSERT_NE(v7.find("blocks.0.att.x_r"), nullptr);
  EXPECT_EQ(v7.find("blocks.0.att.x_r")->shape, (std::vector<int64_t>{1, 1, 128}));
}

// Values read independently from the files (Python zipfile + struct).
TEST(PthReader, GoldenValuesOfEachDtype) {
  const TensorSet f32 = read_pth(test::testdata_path("golden/v4_L2_C64.pth"));
  const float* e = reinterpret_cast<const float*>(f32.find("emb.weight")->data);
  EXPECT_FLOAT_EQ(e[0], -1.5255959033966064f);
  EXPECT_FLOAT_EQ(e[3], -1.6094847917556763f);

  const TensorSet bf16 = read_pth(test::testdata_path("golden/v7_L2_C128.pth"));
  const float expected_bf16[8] = {-0.94140625f, 1.265625f,    -0.18359375f, 0.150390625f,
                                  0.107421875f, -0.27734375f, -2.609375f,   0.625f};
  const uint8_t* b = bf16.find("emb.weight")->data;
  for (int i = 0; i < 8; ++i) {
    uint16_t h;
    std::memcpy(&h, b + 2 * i, 2);
    EXPECT_EQ(bf16_to_f32(h), expected_bf16[i]) << i;
  }

  const TensorSet f16 = read_pth(test::testdata_path("golden/v7_L3_C256.pth"));
  const float expected_f16[4] = {1.8427734375f, 0.51904296875f, -1.7119140625f, -1.701171875f};
  const uint8_t* h16 = f16.find("emb.weight")->data;
  for (int i = 0; i < 4; ++i) {
    uint16_t h;
    std::memcpy(&h, h16 + 2 * i, 2);
    EXPECT_EQ(f16_to_f32(h), expected_f16[i]) << i;
  }
}

// The bf16 values of a golden tensor, converted to float and written afresh as bf16, read back
// as the same floats.
TEST(PthReader, GoldenBf16MatchesAFreshWrite) {
  const TensorSet golden = read_pth(test::testdata_path("golden/v7_L2_C128.pth"));
  const Tensor& emb = *golden.find("emb.weight");
  std::vector<float> values(emb.numel());
  for (size_t i = 0; i < values.size(); ++i) {
    uint16_t h;
    std::memcpy(&h, emb.data + 2 * i, 2);
    values[i] = bf16_to_f32(h);
  }
  std::vector<uint16_t> fresh(values.size());
  for (size_t i = 0; i < values.size(); ++i) fresh[i] = f32_to_bf16(values[i]);
  PthTensor t;
  t.name = "emb.weight";
  t.dtype = "bfloat16";
  t.shape = emb.shape;
  t.data = u16_bytes(fresh);
  const TensorSet back = read_pth(write_temp(test::pth_bytes({t})));
  const Tensor& r = *back.find("emb.weight");
  ASSERT_EQ(r.dtype, DType::BF16);
  ASSERT_EQ(r.numel(), values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    uint16_t h;
    std::memcpy(&h, r.data + 2 * i, 2);
    ASSERT_EQ(bf16_to_f32(h), values[i]) << i;
  }
}

// ---- written files that must load ---------------------------------------------------------------

TEST(PthReader, WrittenFileRoundTripsExactly) {
  std::vector<PthTensor> tensors = small_tensors();
  PthTensor half;
  half.name = "half";
  half.dtype = "float16";
  half.shape = {2, 2};
  half.data = u16_bytes({0x3c00, 0xc000, 0x7bff, 0x0001});
  tensors.push_back(half);
  PthTensor scalar = f32_tensor("scalar", {}, 1, 7.0f);
  tensors.push_back(scalar);
  PthTensor empty;
  empty.name = "empty";
  empty.shape = {0, 4};
  tensors.push_back(empty);
  const std::string path = write_temp(test::pth_bytes(tensors));
  const TensorSet set = read_pth(path);
  ASSERT_EQ(set.size(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = set.tensors()[i];
    EXPECT_EQ(t.name, tensors[i].name);
    EXPECT_EQ(t.shape, tensors[i].shape);
    ASSERT_EQ(t.nbytes, tensors[i].data.size()) << t.name;
    if (t.nbytes) {
      EXPECT_EQ(std::memcmp(t.data, tensors[i].data.data(), t.nbytes), 0) << t.name;
    }
  }
  EXPECT_EQ(set.find("half")->dtype, DType::F16);
  EXPECT_EQ(set.find("scalar")->numel(), 1u);
  // Stored entries are used in place: the tensors point into the file, 64-byte aligned.
  EXPECT_EQ(reinterpret_cast<uintptr_t>(set.find("emb.weight")->data) % 64, 0u);
}

// More than 1,000 tensors: several SETITEMS batches and memo indices past 255 (LONG_BINPUT).
TEST(PthReader, ManyTensorsRoundTrip) {
  std::vector<PthTensor> tensors;
  for (int i = 0; i < 1500; ++i) tensors.push_back(f32_tensor("t" + std::to_string(i), {2}, 2, i));
  const TensorSet set = read_pth(write_temp(test::pth_bytes(tensors)));
  ASSERT_EQ(set.size(), 1500u);
  EXPECT_EQ(reinterpret_cast<const float*>(set.find("t1499")->data)[1], 1499.5f);
}

struct Layout {
  const char* name;
  bool zip64;
  bool align64;
  bool data_descriptor;
};

class PthReaderLayout : public ::testing::TestWithParam<Layout> {};

TEST_P(PthReaderLayout, Loads) {
  PthOptions options;
  options.zip.zip64 = GetParam().zip64;
  options.zip.align64 = GetParam().align64;
  options.zip.data_descriptor = GetParam().data_descriptor;
  options.zip.comment = "a comment with a fake record PK\x05\x06 inside";
  const std::vector<PthTensor> tensors = small_tensors();
  const TensorSet set = read_pth(write_temp(test::pth_bytes(tensors, options)));
  ASSERT_EQ(set.size(), 2u);
  EXPECT_EQ(std::memcmp(set.find("ln_out.bias")->data, tensors[1].data.data(), 12), 0);
}

INSTANTIATE_TEST_SUITE_P(PthLayouts, PthReaderLayout,
                         ::testing::Values(Layout{"Plain", false, true, true},
                                           Layout{"Unaligned", false, false, true},
                                           Layout{"NoDataDescriptor", false, true, false},
                                           Layout{"Zip64", true, true, true},
                                           Layout{"Zip64LocalExtra", true, false, false}),
                         [](const ::testing::TestParamInfo<Layout>& p) {
                           return std::string(p.param.name);
                         });

TEST(PthReader, PrefixIsTheFileStem) {
  PthOptions options;
  options.prefix = "RWKV-x070-World-0.1B";
  EXPECT_EQ(read_pth(write_temp(test::pth_bytes(small_tensors(), options))).size(), 2u);
}

TEST(PthReader, PlainDictAndParameters) {
  PthOptions options;
  options.ordered_dict = false;
  options.parameters = true;
  const TensorSet set = read_pth(write_temp(test::pth_bytes(small_tensors(), options)));
  ASSERT_EQ(set.size(), 2u);
  EXPECT_EQ(set.find("emb.weight")->shape, (std::vector<int64_t>{2, 3}));
}

TEST(PthReader, UntypedStorageWithDtypeLoads) {
  PthOptions options;
  options.untyped_v3 = true;
  const std::vector<PthTensor> tensors = small_tensors();
  const TensorSet set = read_pth(write_temp(test::pth_bytes(tensors, options)));
  ASSERT_EQ(set.size(), 2u);
  EXPECT_EQ(set.find("emb.weight")->dtype, DType::F32);
  EXPECT_EQ(std::memcmp(set.find("emb.weight")->data, tensors[0].data.data(), 24), 0);
}

TEST(PthReader, DeflatedPickleLoads) {
  PthOptions options;
  options.deflate_pickle = true;
  EXPECT_EQ(read_pth(write_temp(test::pth_bytes(small_tensors(), options))).size(), 2u);
}

TEST(PthReader, TensorsShareAStorageAtOffsets) {
  PthTensor a = f32_tensor("a", {2}, 6);
  a.storage_key = "shared";
  PthTensor b = a;
  b.name = "b";
  b.shape = {4};
  b.storage_offset = 2;
  const TensorSet set = read_pth(write_temp(test::pth_bytes({a, b})));
  const Tensor& ta = *set.find("a");
  const Tensor& tb = *set.find("b");
  EXPECT_EQ(tb.data, ta.data + 8);
  EXPECT_EQ(reinterpret_cast<const float*>(tb.data)[3], 2.5f);
}

TEST(PthReader, LittleEndianByteOrderLoadsBigIsRefused) {
  PthOptions options;
  options.byteorder = "little";
  EXPECT_EQ(read_pth(write_temp(test::pth_bytes(small_tensors(), options))).size(), 2u);
  options.byteorder = "big";
  EXPECT_CONTAINS(pth_error(test::pth_bytes(small_tensors(), options)), "big-endian");
}

// ---- hostile and damaged checkpoints
// --------------------------------------------------------------

TEST(PthReader, EmptyFile) {
  EXPECT_CONTAINS(pth_error({}), "the file is empty");
}

TEST(PthReader, RandomGarbage) {
  std::mt19937 rng(1);
  for (size_t size : {1, 3, 21, 22, 100, 4096, 70000}) {
    std::vector<uint8_t> bytes(size);
    for (uint8_t& b : bytes) b = uint8_t(rng());
    if (size >= 4) std::memcpy(bytes.data(), "PK\x03\x04", 4);
    EXPECT_CONTAINS(pth_error(bytes), "no end-of-central-directory record");
  }
}

TEST(PthReader, UnknownGlobalIsRefused) {
  PthOptions options;
  options.raw_pickle =
      "\x80\x02"
      "cos\nsystem\nq\x00X\x02\x00\x00\x00lsq\x01\x85R."s;
  const std::string msg = pth_error(test::pth_bytes(small_tensors(), options));
  EXPECT_CONTAINS(msg, "GLOBAL 'os system' is not allowed in a checkpoint");
  EXPECT_CONTAINS(msg, "archive/data.pkl");
}

TEST(PthReader, UnknownOpcodeIsRefused) {
  PthOptions options;
  options.raw_pickle = std::string("\x80\x02}\xff.", 5);
  EXPECT_CONTAINS(pth_error(test::pth_bytes(small_tensors(), options)),
                  "opcode 0xff is not supported (at offset 3)");
}

TEST(PthReader, TruncatedArchive) {
  const std::vector<uint8_t> full = test::pth_bytes(small_tensors());
  const ZipArchive zip(MappedFile::open(write_temp(full)));
  const ZipEntry& pkl = *zip.find("archive/data.pkl");
  const ZipEntry& data = *zip.find("archive/data/0");
  const size_t directory = size_t(read_le(full, full.size() - 22 + 16, 4));  // from the EOCD
  const size_t cuts[] = {10,                            // in the first local header
                         size_t(pkl.data_offset + 5),   // in the pickle
                         size_t(data.data_offset + 7),  // in tensor data
                         size_t(directory + 30),        // in the central directory
                         full.size() - 10};             // in the EOCD record
  for (size_t cut : cuts) {
    const std::vector<uint8_t> bytes(full.begin(), full.begin() + std::ptrdiff_t(cut));
    EXPECT_CONTAINS(pth_error(bytes), "the archive is truncated");
  }
  // A file that lost its middle but kept its central directory and EOCD record.
  std::vector<uint8_t> holed(full.begin(), full.begin() + std::ptrdiff_t(data.data_offset + 7));
  holed.insert(holed.end(), full.begin() + std::ptrdiff_t(directory), full.end());
  EXPECT_CONTAINS(pth_error(holed), "archive truncated: central directory at offset");
}

TEST(PthReader, TruncationAtEveryOffsetIsAnError) {
  for (bool zip64 : {false, true}) {
    PthOptions options;
    options.zip.zip64 = zip64;
    options.zip.align64 = false;
    const std::vector<uint8_t> full = test::pth_bytes({f32_tensor("w", {2}, 2)}, options);
    const std::string path = test::scratch_dir() + "/cut.pth";
    for (size_t cut = 0; cut < full.size(); ++cut) {
      test::write_file(path,
                       std::vector<uint8_t>(full.begin(), full.begin() + std::ptrdiff_t(cut)));
      try {
        read_pth(path);
        ADD_FAILURE() << "a file cut at " << cut << " of " << full.size() << " bytes loaded";
      } catch (const Error& e) {
        ASSERT_EQ(e.status(), RWKVRT_ERR_FORMAT) << e.what();
      }
    }
  }
}

// Random byte changes anywhere in a small file: each either loads or gives Error(FORMAT).
TEST(PthReader, MutationsNeverCrash) {
  PthOptions options;
  options.zip.align64 = false;
  const std::vector<uint8_t> full = test::pth_bytes(small_tensors(), options);
  const std::string path = test::scratch_dir() + "/mutated.pth";
  std::mt19937 rng(3);
  for (int round = 0; round < 3000; ++round) {
    std::vector<uint8_t> m = full;
    const int changes = 1 + int(rng() % 3);
    for (int i = 0; i < changes; ++i) m[rng() % m.size()] = uint8_t(rng());
    test::write_file(path, m);
    try {
      read_pth(path);
    } catch (const Error& e) {
      ASSERT_EQ(e.status(), RWKVRT_ERR_FORMAT) << e.what();
    }
  }
}

TEST(PthReader, StorageSmallerThanItDeclares) {
  std::vector<PthTensor> tensors = small_tensors();
  tensors[0].declared_numel = 1000;
  EXPECT_CONTAINS(pth_error(test::pth_bytes(tensors)),
                  "storage \"0\" declares 1000 elements of float32 but its entry "
                  "\"archive/data/0\" holds 24 bytes");
}

TEST(PthReader, TensorExtentPastItsStorage) {
  std::vector<PthTensor> tensors = small_tensors();
  tensors[0].shape = {3, 3};  // 9 elements of a 6-element storage
  EXPECT_CONTAINS(pth_error(test::pth_bytes(tensors)),
                  "tensor \"emb.weight\" of shape (3, 3) at storage offset 0 is out of range");
  tensors = small_tensors();
  tensors[1].storage_offset = 1;  // elements [1, 4) of a 3-element storage
  EXPECT_CONTAINS(pth_error(test::pth_bytes(tensors)), "is out of range of its storage \"1\"");
  tensors = small_tensors();
  tensors[0].shape = {int64_t(1) << 62, 8};  // the byte count overflows 64 bits
  tensors[0].stride = {8, 1};
  EXPECT_CONTAINS(pth_error(test::pth_bytes(tensors)), "is out of range");
}

TEST(PthReader, NonContiguousTensorIsRefused) {
  std::vector<PthTensor> tensors = small_tensors();
  tensors[0].stride = {1, 2};  // a transposed view
  EXPECT_CONTAINS(pth_error(test::pth_bytes(tensors)),
                  "tensor \"emb.weight\" of shape (2, 3) is not contiguous (strides (1, 2))");
}

TEST(PthReader, MissingPickle) {
  PthOptions options;
  options.write_pickle = false;
  EXPECT_CONTAINS(pth_error(test::pth_bytes(small_tensors(), options)),
                  "without a <prefix>/data.pkl entry");
}

TEST(PthReader, MissingStorageEntry) {
  PthOptions options;
  options.omit_storages = {"1"};
  EXPECT_CONTAINS(pth_error(test::pth_bytes(small_tensors(), options)),
                  "tensor \"ln_out.bias\": its storage entry \"archive/data/1\" is missing");
}

TEST(PthReader, UnsupportedDtypesNameTheTensor) {
  PthTensor d;
  d.name = "blocks.0.att.time_decay";
  d.dtype = "float64";
  d.shape = {2};
  d.data.assign(16, 0);
  EXPECT_CONTAINS(pth_error(test::pth_bytes({d})),
                  "tensor \"blocks.0.att.time_decay\" has dtype float64");
  PthOptions options;
  options.untyped_v3 = true;
  d.dtype = "uint16";
  d.data.assign(4, 0);
  EXPECT_CONTAINS(pth_error(test::pth_bytes({d}, options)), "has dtype uint16");
}

TEST(PthReader, StorageDeclaredTwiceDifferently) {
  PthTensor a = f32_tensor("a", {2}, 4);
  a.storage_key = "s";
  PthTensor b = a;
  b.name = "b";
  b.declared_numel = 2;
  EXPECT_CONTAINS(pth_error(test::pth_bytes({a, b})),
                  "tensor \"b\" declares storage \"s\" as 2 elements of float32, an earlier "
                  "tensor as 4");
}

TEST(PthReader, CorruptPickleFailsItsCrc) {
  std::vector<uint8_t> bytes = test::pth_bytes(small_tensors());
  const ZipArchive zip(MappedFile::open(write_temp(bytes)));
  bytes[zip.find("archive/data.pkl")->data_offset + 10] ^= 0x20;
  EXPECT_CONTAINS(pth_error(bytes), "entry \"archive/data.pkl\" is corrupt: CRC-32");
}

TEST(PthReader, TwoPicklesAreRefused) {
  const std::string pickle = test::pth_pickle(small_tensors());
  const std::vector<uint8_t> bytes =
      test::zip_bytes({{"a/data.pkl", pickle}, {"b/data.pkl", pickle}});
  EXPECT_CONTAINS(pth_error(bytes), "holds two pickles");
}

// ---- the zip reader
// ------------------------------------------------------------------------------

ZipArchive open_zip(const std::vector<uint8_t>& bytes) {
  return ZipArchive(MappedFile::open(write_temp(bytes, "z.zip")));
}

std::string zip_error(const std::vector<uint8_t>& bytes) {
  return format_error([&] { open_zip(bytes); });
}

TEST(ZipArchive, StoredAndDeflatedEntries) {
  std::string big(200000, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = char(i * 7 + i / 1000);
  ZipEntrySpec stored{"dir/stored", "hello"};
  ZipEntrySpec deflated{"dir/deflated", big};
  deflated.deflate = true;
  ZipEntrySpec empty{"dir/empty", ""};
  empty.deflate = true;
  test::ZipWriteOptions options;
  options.comment = "comment";
  const ZipArchive zip = open_zip(test::zip_bytes({stored, deflated, empty}, options));
  ASSERT_EQ(zip.entries().size(), 3u);
  EXPECT_EQ(zip.find("dir/nothing"), nullptr);

  const ZipBytes s = zip.read(*zip.find("dir/stored"), /*verify_crc=*/true);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(s.data), s.size), "hello");
  const ZipBytes d = zip.read(*zip.find("dir/deflated"), /*verify_crc=*/false);
  ASSERT_EQ(d.size, big.size());
  EXPECT_EQ(std::memcmp(d.data, big.data(), big.size()), 0);
  EXPECT_EQ(zip.find("dir/deflated")->method, 8);
  EXPECT_EQ(zip.read(*zip.find("dir/empty"), false).size, 0u);
}

TEST(ZipArchive, Zip64RecordsAndExtraFields) {
  test::ZipWriteOptions options;
  options.zip64 = true;
  options.data_descriptor = false;
  const ZipArchive zip = open_zip(test::zip_bytes({{"a", "12345"}, {"b", "xyz"}}, options));
  ASSERT_EQ(zip.entries().size(), 2u);
  EXPECT_EQ(zip.find("b")->uncompressed_size, 3u);
  const ZipBytes b = zip.read(*zip.find("b"), true);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(b.data), b.size), "xyz");
}

TEST(ZipArchive, UnsupportedMethodIsNamed) {
  ZipEntrySpec e{"x", "data"};
  e.method = 12;
  const ZipArchive zip = open_zip(test::zip_bytes({e}));
  const std::string msg = format_error([&] { zip.read(zip.entries()[0], false); });
  EXPECT_CONTAINS(msg, "entry \"x\" uses compression method 12 (bzip2)");
}

TEST(ZipArchive, CorruptDeflateData) {
  ZipEntrySpec e{"x", "some data"};
  e.deflate = true;
  std::vector<uint8_t> bytes = test::zip_bytes({e});
  const uint64_t data_offset = open_zip(bytes).entries()[0].data_offset;
  bytes[data_offset] = 0x07;  // block type 3, which does not exist
  const ZipArchive zip = open_zip(bytes);
  EXPECT_CONTAINS(format_error([&] { zip.read(zip.entries()[0], false); }),
                  "deflate data is corrupt");
}

TEST(ZipArchive, DataRunningIntoTheCentralDirectory) {
  ZipEntrySpec e{"x", "data"};
  e.size_delta = 1000;
  EXPECT_CONTAINS(zip_error(test::zip_bytes({e})),
                  "entry \"x\": 1004 bytes of data at offset 64 run past the start of the central "
                  "directory");
}

TEST(ZipArchive, LocalNameDiffers) {
  ZipEntrySpec e{"archive/data/0", "data"};
  e.local_name = "archive/data/9";
  EXPECT_CONTAINS(zip_error(test::zip_bytes({e})),
                  "entry \"archive/data/0\": its local header at offset 0 names it "
                  "\"archive/data/9\"");
}

TEST(ZipArchive, LocalSizesDisagree) {
  test::ZipWriteOptions options;
  options.data_descriptor = false;
  std::vector<uint8_t> bytes = test::zip_bytes({{"x", "data"}}, options);
  bytes[22] = 9;  // the local header's uncompressed size
  EXPECT_CONTAINS(zip_error(bytes), "local header (size 9, compressed 4");
}

TEST(ZipArchive, DuplicateNames) {
  EXPECT_CONTAINS(zip_error(test::zip_bytes({{"x", "1"}, {"x", "2"}})),
                  "entry \"x\" appears twice");
}

// The EOCD record is the last 22 bytes of an archive without comment.
std::vector<uint8_t> patch_eocd(std::vector<uint8_t> bytes, size_t field, uint32_t value, int n) {
  write_le(bytes, bytes.size() - 22 + field, value, n);
  return bytes;
}

TEST(ZipArchive, DamagedEndOfCentralDirectory) {
  const std::vector<uint8_t> ok = test::zip_bytes({{"x", "1"}, {"y", "2"}});
  EXPECT_CONTAINS(zip_error(patch_eocd(ok, 8, 1000 | 1000u << 16, 4)),
                  "cannot hold the 1000 entries");
  EXPECT_CONTAINS(zip_error(patch_eocd(ok, 4, 1, 2)), "multi-disk");
  EXPECT_CONTAINS(zip_error(patch_eocd(ok, 16, 0x7fffffff, 4)),
                  "archive truncated: central directory at offset 2147483647");
  EXPECT_CONTAINS(zip_error(patch_eocd(ok, 16, 0xffffffff, 4)), "no zip64 locator");
  EXPECT_CONTAINS(zip_error(patch_eocd(ok, 16, 1, 4)), "has no entry signature");
  // Room for the count of fixed-size headers, but the second one's name runs past the end.
  EXPECT_CONTAINS(zip_error(patch_eocd(ok, 12, 92, 4)), "runs past the end of the central");
}

TEST(ZipArchive, DamagedZip64Locator) {
  test::ZipWriteOptions options;
  options.zip64 = true;
  std::vector<uint8_t> bytes = test::zip_bytes({{"x", "1"}}, options);
  const size_t locator = bytes.size() - 22 - 20;
  std::vector<uint8_t> far = bytes;
  far[locator + 8 + 5] = 1;  // record offset beyond the file
  EXPECT_CONTAINS(zip_error(far), "zip64 end-of-central-directory record at offset");
  std::vector<uint8_t> moved = bytes;
  write_le(moved, locator + 8, read_le(bytes, locator + 8, 8) - 1, 8);  // a byte before the record
  EXPECT_CONTAINS(zip_error(moved), "no zip64 end-of-central-directory record at offset");
}

TEST(ZipArchive, CentralZip64FieldMissing) {
  std::vector<uint8_t> bytes = test::zip_bytes({{"x", "1"}});
  const size_t central = bytes.size() - 22 - (46 + 1);
  for (int i = 0; i < 4; ++i) bytes[central + 42 + i] = 0xff;  // local offset says "see zip64"
  EXPECT_CONTAINS(zip_error(bytes), "needs a zip64 extra field, and there is none");
}

// ---- the unpickler -----------------------------------------------------------------------------

TEST(PickleReader, ReadsWhatTheWriterWrites) {
  PthTensor t = f32_tensor("x", {int64_t(1) << 33, 0}, 0);  // a LONG1 dimension
  t.storage_offset = 70000;                                 // BININT
  const std::string pickle = test::pth_pickle({t});
  const std::vector<PickledTensor> out =
      unpickle_tensor_dict(reinterpret_cast<const uint8_t*>(pickle.data()), pickle.size());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].name, "x");
  EXPECT_EQ(out[0].shape, (std::vector<int64_t>{int64_t(1) << 33, 0}));
  EXPECT_EQ(out[0].storage_offset, 70000u);
  EXPECT_EQ(out[0].storage.key, "0");
  EXPECT_EQ(out[0].storage.location, "cpu");
  EXPECT_STREQ(out[0].dtype->name, "float32");
}

TEST(PickleReader, RefusesGlobalsOutsideTheWhitelist) {
  EXPECT_CONTAINS(pickle_error("\x80\x02"
                               "cbuiltins\neval\n."),
                  "GLOBAL 'builtins eval' is not allowed in a checkpoint (at offset 2)");
  EXPECT_CONTAINS(pickle_error("\x80\x02"
                               "ctorch\nload\n."),
                  "GLOBAL 'torch load' is not allowed");
  EXPECT_CONTAINS(pickle_error("\x80\x02"
                               "ctorch._utils\n_rebuild_qtensor\n."),
                  "GLOBAL 'torch._utils _rebuild_qtensor'");
  EXPECT_CONTAINS(pickle_error(std::string("\x80\x02"
                                           "cos\x01\nsystem\n.",
                                           15)),
                  "GLOBAL 'os\\x01 system'");
  EXPECT_CONTAINS(pickle_error("\x80\x02"
                               "c" +
                               std::string(300, 'a') + "\nb\n."),
                  "GLOBAL argument is not a line of at most 256 bytes");
}

TEST(PickleReader, RefusesOtherOpcodes) {
  EXPECT_CONTAINS(pickle_error("\x80\x02\x93."), "opcode 0x93 is not supported (at offset 2)");
  EXPECT_CONTAINS(pickle_error("\x80\x02}b."), "opcode 0x62 ('b') is not supported");
  EXPECT_CONTAINS(pickle_error("\x80\x02]."), "opcode 0x5d (']') is not supported");
  EXPECT_CONTAINS(pickle_error("\x80\x04."), "protocol 4 is not supported");
}

TEST(PickleReader, StructuralErrors) {
  EXPECT_CONTAINS(pickle_error("\x80\x02N."), "holds None, not a dict of tensors");
  EXPECT_CONTAINS(pickle_error("\x80\x02}.x"), "has 1 bytes after STOP");
  EXPECT_CONTAINS(pickle_error("\x80\x02}"), "truncated: it ends without STOP");
  EXPECT_CONTAINS(pickle_error("\x80\x02}X\x01\x00\x00\x00"
                               "aK\x01s."s),
                  "entry 'a' is an int, not a tensor");
  EXPECT_CONTAINS(pickle_error("\x80\x02}K\x01K\x01s."), "dict key is an int");
  EXPECT_CONTAINS(pickle_error("\x80\x02}(X\x01\x00\x00\x00"
                               "a}u."s),
                  "nests a dict inside a dict");
  EXPECT_CONTAINS(pickle_error("\x80\x02t."), "has no MARK to pop to");
  EXPECT_CONTAINS(pickle_error("\x80\x02}(\x85."), "stack underflow");
  EXPECT_CONTAINS(pickle_error("\x80\x02h\x05."), "memo index 5 was never stored");
  EXPECT_CONTAINS(pickle_error("\x80\x02X\xff\xff\xff\x7f"),
                  "truncated: needs 2147483647 more bytes at offset 7");
  EXPECT_CONTAINS(pickle_error("\x80\x02T\xff\xff\xff\xff"), "BINSTRING length -1 is negative");
  EXPECT_CONTAINS(pickle_error("\x80\x02\x8a\x09"), "LONG1 integer of 9 bytes is too large");
  EXPECT_CONTAINS(pickle_error("\x80\x02K\x01)R."), "REDUCE calls an int");
  EXPECT_CONTAINS(pickle_error("\x80\x02"
                               "ccollections\nOrderedDict\nK\x01\x85R."),
                  "OrderedDict is called with arguments");
  EXPECT_CONTAINS(pickle_error("\x80\x02K\x01Q."), "persistent id is not ('storage'");
  EXPECT_CONTAINS(pickle_error("\x80\x02"
                               "ctorch._utils\n_rebuild_tensor_v2\nK\x01\x85R."),
                  "_rebuild_tensor_v2 takes 6 or 7 arguments, got 1");
}

TEST(PickleReader, DuplicateNamesAreRefused) {
  const PthTensor w = f32_tensor("w", {1}, 1);
  EXPECT_CONTAINS(pickle_error(test::pth_pickle({w, w})), "entry 'w' appears twice");
}

TEST(PickleReader, LimitsBoundHostileInput) {
  EXPECT_CONTAINS(pickle_error("\x80\x02N" + std::string(20, '\x85') + "."),
                  "values nested more than 16 deep");
  EXPECT_CONTAINS(pickle_error("\x80\x02" + std::string(70000, 'N')), "stack deeper than 65536");
  EXPECT_CONTAINS(pickle_error("\x80\x02" + std::string(70000, '(')), "more than 65536 open MARKs");
  std::string memo = "\x80\x02N";
  for (uint32_t i = 0; i <= (1u << 18); ++i) {
    memo += 'r';
    for (int k = 0; k < 4; ++k) memo += char(i >> (8 * k));
  }
  EXPECT_CONTAINS(pickle_error(memo), "memo holds more than 262144 values");
}

TEST(PickleReader, TruncationAtEveryOffsetIsAnError) {
  const std::string pickle = test::pth_pickle(small_tensors());
  for (size_t cut = 0; cut < pickle.size(); ++cut) {
    const std::string msg = pickle_error(pickle.substr(0, cut));
    ASSERT_EQ(msg.rfind("pickle ", 0), 0u) << msg;
  }
}

// Random byte changes of a valid pickle: each either parses or gives Error(FORMAT).
TEST(PickleReader, MutationsNeverCrash) {
  PthOptions options;
  options.parameters = true;
  const std::string pickle = test::pth_pickle(small_tensors(), options);
  std::mt19937 rng(7);
  for (int round = 0; round < 20000; ++round) {
    std::string m = pickle;
    const int changes = 1 + int(rng() % 4);
    for (int i = 0; i < changes; ++i) m[rng() % m.size()] = char(rng());
    try {
      unpickle_tensor_dict(reinterpret_cast<const uint8_t*>(m.data()), m.size());
    } catch (const Error& e) {
      ASSERT_EQ(e.status(), RWKVRT_ERR_FORMAT) << e.what();
    }
  }
}

}  // namespace
}  // namespace rwkvrt
