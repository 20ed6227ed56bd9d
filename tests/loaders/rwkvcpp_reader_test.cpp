// The rwkv.cpp .bin reader: every tiny model of the shared test data loads with the official names
// and shapes; each converter transform is undone, checked value by value against the stored data
// (read here by an independent minimal parser); FP16 and quantised files agree with the FP32 ones;
// hostile and truncated files fail cleanly with Error(FORMAT/UNSUPPORTED).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "dtype_convert.h"
#include "loaders/checkpoint_readers.h"
#include "support/test_data.h"

namespace rwkvrt {
namespace {

std::string model_path(const std::string& file) {
  return test::testdata_path("rwkvcpp/" + file);
}

std::vector<float> values(const Tensor& t) {
  std::vector<float> v(t.numel());
  EXPECT_TRUE(convert_to_f32(static_cast<rwkvrt_bk_dtype>(t.dtype), t.data, v.data(), v.size()));
  return v;
}

// --- an independent minimal parser of the container, to see what the file really stores -------

struct Stored {
  uint32_t type = 0;
  std::vector<uint32_t> ne;  // ggml order
  std::vector<uint8_t> bytes;

  std::vector<float> f32() const {
    const size_t n = bytes.size() / (type == 0 ? 4 : 2);
    std::vector<float> v(n);
    for (size_t i = 0; i < n; ++i) {
      if (type == 0) {
        std::memcpy(&v[i], &bytes[4 * i], 4);
      } else {
        uint16_t h;
        std::memcpy(&h, &bytes[2 * i], 2);
        v[i] = f16_to_f32(h);
      }
    }
    return v;
  }
};

std::map<std::string, Stored> read_stored(const std::string& path) {
  const std::vector<uint8_t> b = test::read_file(path);
  auto u32 = [&](size_t at) {
    uint32_t v;
    std::memcpy(&v, &b[at], 4);
    return v;
  };
  std::map<std::string, Stored> out;
  size_t at = 24;
  while (at < b.size()) {
    Stored s;
    const uint32_t n_dims = u32(at), name_len = u32(at + 4);
    s.type = u32(at + 8);
    at += 12;
    uint64_t n = 1;
    for (uint32_t d = 0; d < n_dims; ++d, at += 4) {
      s.ne.push_back(u32(at));
      n *= s.ne.back();
    }
    const std::string name(reinterpret_cast<const char*>(&b[at]), name_len);
    at += name_len;
    const uint64_t block_bytes[] = {0, 0, 18, 20, 0, 0, 0, 22, 24, 34};
    const uint64_t size = s.type == 0 ? 4 * n : s.type == 1 ? 2 * n : n / 32 * block_bytes[s.type];
    s.bytes.assign(b.begin() + long(at), b.begin() + long(at + size));
    at += size;
    out.emplace(name, std::move(s));
  }
  return out;
}

// --- building synthetic files ------------------------------------------------------------------

constexpr uint32_t kMagic = 0x67676d66;

struct BinBuilder {
  std::vector<uint8_t> bytes;

  explicit BinBuilder(uint32_t version = 101, uint32_t magic = kMagic) {
    for (uint32_t v : {magic, version, 256u, 64u, 1u, 0u}) u32(v);
  }
  void u32(uint32_t v) {
    for (int i = 0; i < 4; ++i) bytes.push_back(uint8_t(v >> (8 * i)));
  }
  void raw(const void* p, size_t n) {
    const auto* c = static_cast<const uint8_t*>(p);
    bytes.insert(bytes.end(), c, c + n);
  }
  // `ne` in ggml order (ne[0] is the PyTorch last dimension).
  void tensor(const std::string& name, uint32_t type, const std::vector<uint32_t>& ne,
              const void* data, size_t nbytes) {
    u32(uint32_t(ne.size()));
    u32(uint32_t(name.size()));
    u32(type);
    for (uint32_t d : ne) u32(d);
    raw(name.data(), name.size());
    raw(data, nbytes);
  }
  void f32(const std::string& name, const std::vector<uint32_t>& ne, const std::vector<float>& v) {
    tensor(name, 0, ne, v.data(), v.size() * 4);
  }
  std::string save() const {
    const std::string path = test::scratch_dir() + "/model.bin";
    test::write_file(path, bytes);
    return path;
  }
};

// A small valid v4-style file: a plain matrix, a transformed vector and a quantised matrix.
BinBuilder small_file() {
  BinBuilder b;
  b.f32("emb.weight", {4, 3}, std::vector<float>(12, 0.5f));
  b.f32("blocks.0.att.time_decay", {4}, {-1.0f, -2.0f, -0.5f, -1.5f});
  std::vector<float> w(64);
  for (size_t i = 0; i < w.size(); ++i) w[i] = float(i) / 64.0f - 0.5f;
  std::vector<uint8_t> q(2 * 34);
  quantize_from_f32(RWKVRT_BK_Q8_0, w.data(), q.data(), w.size());
  b.tensor("blocks.0.att.key.weight", 9, {32, 2}, q.data(), q.size());
  return b;
}

void expect_error(const std::string& path, rwkvrt_status status, const std::string& substring) {
  try {
    read_rwkvcpp(path);
    ADD_FAILURE() << "no error; expected one containing '" << substring << "'";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), status) << e.what();
    EXPECT_NE(std::string(e.what()).find(substring), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

void expect_error(const BinBuilder& b, rwkvrt_status status, const std::string& substring) {
  expect_error(b.save(), status, substring);
}

// --- every real file ---------------------------------------------------------------------------

DType manifest_dtype(const std::string& name) {
  if (name == "FP32") return DType::F32;
  if (name == "FP16") return DType::F16;
  if (name == "Q5_0") return DType::Q5_0;
  if (name == "Q5_1") return DType::Q5_1;
  ADD_FAILURE() << "unexpected manifest type " << name;
  return DType::F32;
}

void expect_shape(const TensorSet& s, const std::string& name, std::vector<int64_t> shape) {
  const Tensor* t = s.find(name);
  ASSERT_NE(t, nullptr) << name;
  EXPECT_EQ(t->shape, shape) << name << " is " << t->shape_string();
}

TEST(RwkvcppReaderTest, EveryManifestModelLoadsInTheOfficialLayout) {
  const auto manifest = nlohmann::json::parse(test::read_file(model_path("MANIFEST.json")));
  int models = 0;
  for (const auto& m : manifest["files"]) {
    if (m["kind"] != "model") continue;
    ++models;
    const std::string file = m["file"];
    SCOPED_TRACE(file);
    const TensorSet s = read_rwkvcpp(model_path(file));
    const int64_t V = m["n_vocab"], C = m["n_embed"], L = m["n_layer"], F = m["ffn_dim"];
    const std::string arch = m["arch"];
    EXPECT_EQ(s.metadata.at("format"), "rwkvcpp");
    EXPECT_EQ(s.metadata.at("rwkvcpp.file_version"), std::to_string(int(m["file_version"])));
    EXPECT_EQ(s.metadata.count("rwkvrt.group_norm_eps"), arch[0] == '5' ? 1u : 0u);

    // Tensor count and dtypes: v7 splits each layer's x_rwkvag into six FP32 vectors.
    std::map<std::string, int> types;
    for (const auto& [type, n] : m["tensor_types"].items()) types[type] = n;
    if (arch == "7.0") types["FP32"] += int(5 * L);
    std::map<std::string, int> seen;
    for (const Tensor& t : s.tensors()) {
      for (const auto& [type, n] : types)
        if (manifest_dtype(type) == t.dtype) ++seen[type];
    }
    EXPECT_EQ(seen, types);

    int64_t layers = 0;
    for (const Tensor& t : s.tensors())
      if (t.name.rfind("blocks.", 0) == 0)
        layers = std::max<int64_t>(layers, std::stoll(t.name.substr(7)) + 1);
    EXPECT_EQ(layers, L);
    expect_shape(s, "emb.weight", {V, C});
    expect_shape(s, "head.weight", {V, C});
    expect_shape(s, "blocks.0.ffn.key.weight", {F, C});
    EXPECT_EQ(s.find("blocks.0.att.key.weight")->dtype,
              manifest_dtype(m["header_data_type"].get<std::string>()));

    const std::string a = "blocks." + std::to_string(L - 1) + ".att.";
    if (arch == "4.0") {
      expect_shape(s, a + "time_decay", {C});
      expect_shape(s, a + "time_first", {C});
      expect_shape(s, a + "time_mix_k", {1, 1, C});
      expect_shape(s, "blocks.0.ffn.time_mix_r", {1, 1, C});
    } else if (arch[0] == '5') {
      const int64_t H = m["head_count"], N = m["head_size"];
      expect_shape(s, a + "time_mix_k", {1, 1, C});
      expect_shape(s, a + "ln_x.weight", {C});
      if (arch == "5.1") {
        expect_shape(s, a + "time_decay", {H});
        expect_shape(s, a + "time_first", {H});
      } else {
        expect_shape(s, a + "time_decay", {H, N});
        expect_shape(s, a + "time_faaaa", {H, N});
        expect_shape(s, a + "time_mix_g", {1, 1, C});
      }
    } else if (arch == "6.0") {
      const int64_t H = m["head_count"], N = m["head_size"];
      for (const char* mix : {"x", "w", "k", "v", "r", "g"})
        expect_shape(s, a + "time_maa_" + mix, {1, 1, C});
      expect_shape(s, a + "time_maa_w1", {C, 5 * 32});
      expect_shape(s, a + "time_maa_w2", {5, 32, C});
      expect_shape(s, a + "time_decay", {1, 1, C});
      expect_shape(s, a + "time_decay_w1", {C, 64});
      expect_shape(s, a + "time_decay_w2", {64, C});
      expect_shape(s, a + "time_faaaa", {H, N});
      expect_shape(s, "blocks.0.ffn.time_maa_k", {1, 1, C});
    } else {
      ASSERT_EQ(arch, "7.0");
      const int64_t H = m["head_count"], N = m["head_size"];
      for (const char* mix :
           {"x_r", "x_w", "x_k", "x_v", "x_a", "x_g", "w0", "a0", "v0", "k_k", "k_a"})
        expect_shape(s, a + mix, {1, 1, C});
      for (const char* lora : {"w", "a", "v", "g"}) {
        expect_shape(s, a + lora + "1", {C, 32});
        expect_shape(s, a + lora + "2", {32, C});
      }
      expect_shape(s, a + "r_k", {H, N});
      expect_shape(s, "blocks.0.ffn.x_k", {1, 1, C});
      EXPECT_EQ(s.find(a + "x_rwkvag"), nullptr);
      EXPECT_EQ(s.find("blocks.0.att.v1"), nullptr);  // layer 0 has no value residual
    }
  }
  EXPECT_EQ(models, 9);
}

// --- each transform, value by value ------------------------------------------------------------

TEST(RwkvcppReaderTest, V4TimeDecayIsLogOfNegatedStored) {
  const std::string path = model_path("tiny-rwkv-4v0-660K-FP32.bin");
  const auto stored = read_stored(path);
  const TensorSet s = read_rwkvcpp(path);
  for (int l = 0; l < 4; ++l) {
    const std::string name = "blocks." + std::to_string(l) + ".att.time_decay";
    const std::vector<float> raw = stored.at(name).f32();
    const std::vector<float> w = values(*s.find(name));
    ASSERT_EQ(raw.size(), w.size());
    for (size_t i = 0; i < raw.size(); ++i) {
      ASSERT_LT(raw[i], 0.0f) << "a v4 stored decay is −exp(w)";
      EXPECT_NEAR(-std::exp(w[i]), raw[i], 2e-7f * std::fabs(raw[i])) << name << "[" << i << "]";
    }
    // time_first is stored raw in v4.
    const std::string first = "blocks." + std::to_string(l) + ".att.time_first";
    EXPECT_EQ(values(*s.find(first)), stored.at(first).f32());
  }
}

TEST(RwkvcppReaderTest, V51DecayAndFirstAreRebuiltFromTheirExponentials) {
  const std::string path = model_path("tiny-rwkv-5v1-730K-FP32.bin");
  const auto stored = read_stored(path);
  const TensorSet s = read_rwkvcpp(path);
  const std::vector<float> raw_decay = stored.at("blocks.3.att.time_decay").f32();
  const std::vector<float> raw_first = stored.at("blocks.3.att.time_first").f32();
  const std::vector<float> w = values(*s.find("blocks.3.att.time_decay"));
  const std::vector<float> u = values(*s.find("blocks.3.att.time_first"));
  ASSERT_EQ(w.size(), 8u);
  ASSERT_EQ(u.size(), 8u);
  for (size_t h = 0; h < 8; ++h) {
    ASSERT_GT(raw_decay[h], 0.0f);
    ASSERT_LT(raw_decay[h], 1.0f);
    EXPECT_NEAR(std::exp(-std::exp(double(w[h]))), raw_decay[h], 1e-6 * raw_decay[h]);
    EXPECT_NEAR(std::exp(double(u[h])), raw_first[h], 1e-6 * raw_first[h]);
  }
}

TEST(RwkvcppReaderTest, V52DecayIsRebuiltPerHeadAndChannel) {
  const std::string path = model_path("tiny-rwkv-5v2-730K-FP32.bin");
  const auto stored = read_stored(path);
  const TensorSet s = read_rwkvcpp(path);
  for (int l : {0, 11}) {
    const std::string at = "blocks." + std::to_string(l) + ".att.";
    const Stored& raw = stored.at(at + "time_decay");
    EXPECT_EQ(raw.ne, (std::vector<uint32_t>{1, 8, 8}));  // (H, S, 1) in ggml order
    const std::vector<float> r = raw.f32(), w = values(*s.find(at + "time_decay"));
    for (size_t i = 0; i < r.size(); ++i)
      EXPECT_NEAR(std::exp(-std::exp(double(w[i]))), r[i], 1e-6 * r[i]) << i;
    // time_faaaa is only reshaped: the very bytes of the file.
    const Tensor* bonus = s.find(at + "time_faaaa");
    const Stored& raw_bonus = stored.at(at + "time_faaaa");
    ASSERT_EQ(bonus->nbytes, raw_bonus.bytes.size());
    EXPECT_EQ(std::memcmp(bonus->data, raw_bonus.bytes.data(), bonus->nbytes), 0);
  }
}

// Checks official[b][i][j] == stored[b][j][i] for a batch of matrices (official shape b×R×K).
void expect_transposed(const Tensor& official, const Stored& stored) {
  SCOPED_TRACE(official.name);
  const std::vector<float> o = values(official), s = stored.f32();
  ASSERT_EQ(o.size(), s.size());
  const size_t dims = official.shape.size();
  const size_t R = size_t(official.shape[dims - 2]), K = size_t(official.shape[dims - 1]);
  // The stored PyTorch shape is ggml's reversed: its last two axes are (K, R).
  ASSERT_EQ(stored.ne[0], R);
  ASSERT_EQ(stored.ne[1], K);
  for (size_t b = 0; b < o.size() / (R * K); ++b)
    for (size_t i = 0; i < R; ++i)
      for (size_t j = 0; j < K; ++j)
        ASSERT_EQ(o[b * R * K + i * K + j], s[b * R * K + j * R + i]) << b << "," << i << "," << j;
}

TEST(RwkvcppReaderTest, V6LorasAreTransposedBackAndDecayReshaped) {
  const std::string path = model_path("tiny-rwkv-6v0-1m-FP32.bin");
  const auto stored = read_stored(path);
  const TensorSet s = read_rwkvcpp(path);
  const std::string at = "blocks.5.att.";
  for (const char* name : {"time_maa_w1", "time_maa_w2", "time_decay_w1", "time_decay_w2"})
    expect_transposed(*s.find(at + name), stored.at(at + name));
  // time_decay is raw in v6 (values around −6..−5 here, not exp(−exp(·)) in (0, 1)).
  const Tensor* decay = s.find(at + "time_decay");
  EXPECT_EQ(values(*decay), stored.at(at + "time_decay").f32());
  EXPECT_LT(values(*decay)[0], -1.0f);
  EXPECT_EQ(values(*s.find(at + "time_faaaa")), stored.at(at + "time_faaaa").f32());
}

TEST(RwkvcppReaderTest, V7MixesAreSplitAndLorasTransposedBack) {
  for (const char* file : {"tiny-rwkv-7v0-834K-FP32.bin", "tiny-rwkv-7v0-834K-FP16.bin"}) {
    SCOPED_TRACE(file);
    const auto stored = read_stored(model_path(file));
    const TensorSet s = read_rwkvcpp(model_path(file));
    const std::string at = "blocks.4.att.";
    const std::vector<float> mixes = stored.at(at + "x_rwkvag").f32();
    const char* order[] = {"x_r", "x_w", "x_k", "x_v", "x_a", "x_g"};
    for (size_t i = 0; i < 6; ++i) {
      const std::vector<float> v = values(*s.find(at + order[i]));
      ASSERT_EQ(v.size(), 64u);
      EXPECT_TRUE(std::equal(v.begin(), v.end(), mixes.begin() + long(64 * i))) << order[i];
    }
    for (const char* lora : {"w1", "w2", "a1", "a2", "v1", "v2", "g1", "g2"}) {
      const Tensor& t = *s.find(at + lora);
      EXPECT_EQ(t.dtype, stored.at(at + lora).type == 0 ? DType::F32 : DType::F16);
      expect_transposed(t, stored.at(at + lora));
    }
  }
}

TEST(RwkvcppReaderTest, Fp16ModelMatchesFp32WithinHalfPrecision) {
  const TensorSet a = read_rwkvcpp(model_path("tiny-rwkv-7v0-834K-FP32.bin"));
  const TensorSet b = read_rwkvcpp(model_path("tiny-rwkv-7v0-834K-FP16.bin"));
  ASSERT_EQ(a.size(), b.size());
  for (const Tensor& ta : a.tensors()) {
    const Tensor* tb = b.find(ta.name);
    ASSERT_NE(tb, nullptr) << ta.name;
    ASSERT_EQ(ta.shape, tb->shape) << ta.name;
    const std::vector<float> va = values(ta), vb = values(*tb);
    for (size_t i = 0; i < va.size(); ++i)
      ASSERT_NEAR(vb[i], va[i], std::ldexp(std::fabs(va[i]), -11) + 6e-8f) << ta.name << i;
  }
}

// Each 32-value block of a dequantised matrix lies within one quantisation step of the FP32
// model's block (the ideal rounding error is half a step; the fp16 scale and minimum add a little,
// relative to the block's magnitude, and at least fp16's subnormal spacing 2^-24 per code step,
// which matters for the 4v0 model's FFN weights of about 1e-7).
void expect_quantised_close(const std::string& quantised, const std::string& reference) {
  SCOPED_TRACE(quantised);
  const TensorSet q = read_rwkvcpp(model_path(quantised));
  const TensorSet r = read_rwkvcpp(model_path(reference));
  int matrices = 0;
  for (const Tensor& tq : q.tensors()) {
    const Tensor* tr = r.find(tq.name);
    ASSERT_NE(tr, nullptr) << tq.name;
    ASSERT_EQ(tq.shape, tr->shape);
    const std::vector<float> vq = values(tq), vr = values(*tr);
    if (dtype_block_values(tq.dtype) == 1) {
      EXPECT_EQ(vq, vr) << tq.name << ": unquantised tensors are identical";
      continue;
    }
    ++matrices;
    for (size_t blk = 0; blk < vr.size(); blk += 32) {
      const auto [lo, hi] =
          std::minmax_element(vr.begin() + long(blk), vr.begin() + long(blk + 32));
      const float amax = std::max(std::fabs(*lo), std::fabs(*hi));
      const float step = tq.dtype == DType::Q5_0 ? amax / 16.0f : (*hi - *lo) / 31.0f;
      for (size_t i = blk; i < blk + 32; ++i)
        ASSERT_LE(std::fabs(vq[i] - vr[i]), step + 1e-3f * amax + 32 * std::ldexp(1.0f, -24))
            << tq.name << i;
    }
  }
  EXPECT_GT(matrices, 0);
}

TEST(RwkvcppReaderTest, QuantisedModelsMatchFp32WithinAStep) {
  expect_quantised_close("tiny-rwkv-7v0-834K-Q5_1.bin", "tiny-rwkv-7v0-834K-FP32.bin");
  expect_quantised_close("tiny-rwkv-5v2-730K-Q5_0.bin", "tiny-rwkv-5v2-730K-FP32.bin");
  expect_quantised_close("tiny-rwkv-4v0-660K-Q5_1.bin", "tiny-rwkv-4v0-660K-FP32.bin");
}

// Q4_0, Q4_1 and Q8_0 have no file in the test data: quantise a real matrix with our own code,
// store it, and read it back.  A quantised v7 LoRA matrix is dequantised before its transpose.
TEST(RwkvcppReaderTest, OtherQuantisationTypesRoundTrip) {
  const TensorSet ref = read_rwkvcpp(model_path("tiny-rwkv-7v0-834K-FP32.bin"));
  const std::vector<float> key = values(*ref.find("blocks.2.att.key.weight"));  // (64, 64)
  const std::vector<float> w1 = values(*ref.find("blocks.2.att.w1"));           // (64, 32)
  std::vector<float> w1_stored(w1.size());  // rwkv.cpp's transposed (32, 64)
  for (size_t c = 0; c < 64; ++c)
    for (size_t d = 0; d < 32; ++d) w1_stored[d * 64 + c] = w1[c * 32 + d];

  struct Case {
    uint32_t code;
    rwkvrt_bk_dtype bk;
    DType dtype;
  };
  for (const Case& c : {Case{2, RWKVRT_BK_Q4_0, DType::Q4_0}, Case{3, RWKVRT_BK_Q4_1, DType::Q4_1},
                        Case{9, RWKVRT_BK_Q8_0, DType::Q8_0}}) {
    SCOPED_TRACE(dtype_name(c.dtype));
    const size_t bb = quant_block_bytes(c.bk);
    std::vector<uint8_t> qkey(key.size() / 32 * bb), qw1(w1.size() / 32 * bb);
    ASSERT_TRUE(quantize_from_f32(c.bk, key.data(), qkey.data(), key.size()));
    ASSERT_TRUE(quantize_from_f32(c.bk, w1_stored.data(), qw1.data(), w1.size()));
    BinBuilder b;
    b.f32("blocks.0.att.r_k", {64, 1}, std::vector<float>(64, 0.25f));
    b.tensor("blocks.0.att.key.weight", c.code, {64, 64}, qkey.data(), qkey.size());
    b.tensor("blocks.0.att.w1", c.code, {64, 32}, qw1.data(), qw1.size());
    const TensorSet s = read_rwkvcpp(b.save());

    const Tensor* k = s.find("blocks.0.att.key.weight");
    ASSERT_EQ(k->dtype, c.dtype);
    ASSERT_EQ(k->nbytes, qkey.size());
    EXPECT_EQ(std::memcmp(k->data, qkey.data(), qkey.size()), 0);
    const float tol = c.dtype == DType::Q8_0 ? 2e-3f : 3e-2f;
    const std::vector<float> vk = values(*k);
    for (size_t i = 0; i < key.size(); ++i) ASSERT_NEAR(vk[i], key[i], tol) << i;

    const Tensor* t = s.find("blocks.0.att.w1");
    ASSERT_EQ(t->dtype, DType::F32);
    EXPECT_EQ(t->shape, (std::vector<int64_t>{64, 32}));
    const std::vector<float> vt = values(*t);
    for (size_t i = 0; i < w1.size(); ++i) ASSERT_NEAR(vt[i], w1[i], tol) << i;
  }
}

// --- hostile files -----------------------------------------------------------------------------

TEST(RwkvcppReaderTest, RejectsEmptyAndTruncatedHeaders) {
  BinBuilder empty;
  empty.bytes.clear();
  expect_error(empty, RWKVRT_ERR_FORMAT, "is empty");
  BinBuilder b;
  b.bytes.resize(10);
  expect_error(b, RWKVRT_ERR_FORMAT, "truncated");
  expect_error(BinBuilder(), RWKVRT_ERR_FORMAT, "no tensors");
}

TEST(RwkvcppReaderTest, RejectsWrongMagicAndVersion) {
  BinBuilder magic = small_file();
  magic.bytes[0] = 'x';
  expect_error(magic, RWKVRT_ERR_FORMAT, "magic");
  BinBuilder version = small_file();
  version.bytes[4] = 99;
  expect_error(version, RWKVRT_ERR_FORMAT, "file version 99");
}

TEST(RwkvcppReaderTest, RejectsBadRecords) {
  const std::vector<float> four(4, -1.0f);
  {
    BinBuilder b;
    b.f32("a", {}, {});  // zero dimensions
    expect_error(b, RWKVRT_ERR_FORMAT, "has 0 dimensions");
  }
  {
    BinBuilder b;
    b.f32("a", {1, 1, 2, 2}, four);
    expect_error(b, RWKVRT_ERR_FORMAT, "has 4 dimensions");
  }
  {
    BinBuilder b;
    b.u32(1);
    b.u32(0x7fffffff);  // name length
    b.u32(0);
    b.u32(4);
    expect_error(b, RWKVRT_ERR_FORMAT, "name length of 2147483647");
  }
  {
    BinBuilder b;
    b.f32("a", {4, 0}, {});
    expect_error(b, RWKVRT_ERR_FORMAT, "zero dimension");
  }
  {
    BinBuilder b;
    b.f32("a", {4}, four);
    b.f32("a", {4}, four);
    expect_error(b, RWKVRT_ERR_FORMAT, "'a' appears twice");
  }
  {
    BinBuilder b;  // 2^32-1 cubed elements: the byte count would overflow 64 bits
    b.f32("huge", {0xffffffffu, 0xffffffffu, 0xffffffffu}, four);
    expect_error(b, RWKVRT_ERR_FORMAT, "impossibly large");
  }
  {
    BinBuilder b;
    b.f32("a", {4, 4}, four);  // 16 values announced, 4 present
    expect_error(b, RWKVRT_ERR_FORMAT, "truncated: the data of tensor 'a'");
  }
}

TEST(RwkvcppReaderTest, RejectsUnknownAndUnsupportedTypes) {
  const std::vector<uint8_t> data(4 * 34);
  for (uint32_t code : {4u, 5u, 6u, 17u, 1000u}) {
    BinBuilder b;
    b.tensor("blocks.0.att.key.weight", code, {32, 4}, data.data(), data.size());
    expect_error(
        b, RWKVRT_ERR_FORMAT,
        "'blocks.0.att.key.weight' has unknown rwkv.cpp data type " + std::to_string(code));
  }
  for (uint32_t code : {10u, 12u, 16u}) {
    BinBuilder b;
    b.tensor("blocks.0.att.key.weight", code, {256, 4}, data.data(), data.size());
    expect_error(b, RWKVRT_ERR_UNSUPPORTED, "data type " + std::to_string(code) + " (a k-quant)");
  }
}

TEST(RwkvcppReaderTest, RejectsMisshapenAndVersion100QuantisedTensors) {
  std::vector<uint8_t> q(4 * 24);
  {
    BinBuilder b(100);
    b.tensor("blocks.0.att.key.weight", 8, {32, 4}, q.data(), q.size());
    expect_error(b, RWKVRT_ERR_UNSUPPORTED, "version-100 file");
  }
  {
    BinBuilder b;
    b.tensor("blocks.0.att.key.weight", 8, {128}, q.data(), q.size());
    expect_error(b, RWKVRT_ERR_FORMAT, "quantised tensors must be 2-D");
  }
  {
    BinBuilder b;
    b.tensor("blocks.0.att.key.weight", 8, {48, 2}, q.data(), q.size());
    expect_error(b, RWKVRT_ERR_FORMAT, "multiple of 32");
  }
}

TEST(RwkvcppReaderTest, RejectsValuesAndShapesTheConverterCannotHaveWritten) {
  {
    BinBuilder b;  // v4 stores −exp(w) < 0
    b.f32("blocks.0.att.time_decay", {4}, {-1.0f, 0.5f, -1.0f, -1.0f});
    expect_error(b, RWKVRT_ERR_FORMAT, "at index 1, not a negative number");
  }
  {
    BinBuilder b;  // v5 stores exp(−exp(w)) in [0, 1]
    b.f32("blocks.0.att.ln_x.weight", {4}, {1, 1, 1, 1});
    b.f32("blocks.0.att.time_decay", {1, 2, 2}, {0.5f, 0.5f, 1.5f, 0.5f});
    expect_error(b, RWKVRT_ERR_FORMAT, "outside [0, 1]");
  }
  {
    BinBuilder b;
    b.f32("blocks.0.att.ln_x.weight", {4}, {1, 1, 1, 1});
    b.f32("blocks.0.att.time_decay", {4}, {0.5f, 0.5f, 0.5f, 0.5f});
    expect_error(b, RWKVRT_ERR_FORMAT, "expected rwkv.cpp's layout (H, S, 1)");
  }
  {
    BinBuilder b;
    b.f32("blocks.0.att.r_k", {4, 1}, std::vector<float>(4, 0.0f));
    b.f32("blocks.0.att.x_rwkvag", {4, 1, 5}, std::vector<float>(20, 0.0f));
    expect_error(b, RWKVRT_ERR_FORMAT, "expected rwkv.cpp's layout (6, 1, C)");
  }
  {
    BinBuilder b;  // a split mix colliding with a stored tensor of the same name
    b.f32("blocks.0.att.r_k", {4, 1}, std::vector<float>(4, 0.0f));
    b.f32("blocks.0.att.x_r", {4, 1, 1}, std::vector<float>(4, 0.0f));
    b.f32("blocks.0.att.x_rwkvag", {4, 1, 6}, std::vector<float>(24, 0.0f));
    expect_error(b, RWKVRT_ERR_FORMAT, "'blocks.0.att.x_r' appears twice");
  }
}

// The saturated ends of exp(−exp(w)) rebuild to finite decays that map back to the same value.
TEST(RwkvcppReaderTest, SaturatedV5DecaysStayFinite) {
  BinBuilder b;
  b.f32("blocks.0.att.ln_x.weight", {4}, {1, 1, 1, 1});
  b.f32("blocks.0.att.time_decay", {1, 2, 2}, {0.0f, 1.0f, 1e-40f, 0.5f});
  const TensorSet s = read_rwkvcpp(b.save());
  const std::vector<float> stored = {0.0f, 1.0f, 1e-40f, 0.5f};
  const std::vector<float> w = values(*s.find("blocks.0.att.time_decay"));
  for (size_t i = 0; i < w.size(); ++i) {
    ASSERT_TRUE(std::isfinite(w[i]));
    EXPECT_NEAR(std::exp(-std::exp(w[i])), stored[i], 1e-6f * stored[i] + 1e-44f) << i;
  }
}

// Cutting a file anywhere gives a clean Error, except exactly at a record boundary: the format has
// no tensor count, so that is a valid file with fewer tensors.
void truncation_sweep(const std::vector<uint8_t>& full, const std::vector<size_t>& cuts) {
  // Record boundaries, from the container's own sizes.
  std::set<size_t> boundaries;
  size_t at = 24;
  while (at < full.size()) {
    uint32_t n_dims, name_len, type;
    std::memcpy(&n_dims, &full[at], 4);
    std::memcpy(&name_len, &full[at + 4], 4);
    std::memcpy(&type, &full[at + 8], 4);
    uint64_t n = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      uint32_t ne;
      std::memcpy(&ne, &full[at + 12 + 4 * d], 4);
      n *= ne;
    }
    const uint64_t block_bytes[] = {0, 0, 18, 20, 0, 0, 0, 22, 24, 34};
    at += 12 + 4 * n_dims + name_len +
          (type == 0   ? 4 * n
           : type == 1 ? 2 * n
                       : n / 32 * block_bytes[type]);
    boundaries.insert(at);
  }
  const std::string path = test::scratch_dir() + "/cut.bin";
  for (size_t cut : cuts) {
    test::write_file(path, std::vector<uint8_t>(full.begin(), full.begin() + long(cut)));
    try {
      const TensorSet s = read_rwkvcpp(path);
      EXPECT_TRUE(boundaries.count(cut)) << "cut at " << cut << " read without error";
    } catch (const Error& e) {
      EXPECT_FALSE(boundaries.count(cut)) << "cut at " << cut << ": " << e.what();
      EXPECT_EQ(e.status(), RWKVRT_ERR_FORMAT) << e.what();
      const std::string msg = e.what();
      EXPECT_TRUE(msg.find("truncated") != std::string::npos ||
                  msg.find("is empty") != std::string::npos ||
                  msg.find("no tensors") != std::string::npos)
          << "cut at " << cut << ": " << msg;
    }
  }
}

TEST(RwkvcppReaderTest, TruncationAtEveryOffsetOfASmallFileFailsCleanly) {
  const std::vector<uint8_t> full = small_file().bytes;
  std::vector<size_t> cuts(full.size());
  for (size_t i = 0; i < full.size(); ++i) cuts[i] = i;
  truncation_sweep(full, cuts);
}

TEST(RwkvcppReaderTest, TruncatedRealFileFailsCleanly) {
  const std::vector<uint8_t> full = test::read_file(model_path("tiny-rwkv-7v0-834K-Q5_1.bin"));
  std::vector<size_t> cuts;
  for (size_t i = 0; i < 200; ++i) cuts.push_back(i);  // header and the first records
  for (size_t i = 1; i < 100; ++i) cuts.push_back(full.size() * i / 100);
  for (size_t i = 1; i < 20; ++i) cuts.push_back(full.size() - i);
  truncation_sweep(full, cuts);
}

}  // namespace
}  // namespace rwkvrt
