// Version and dimension detection, and the validation that turns a malformed tensor set into a
// clear error before any weight is prepared.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <map>
#include <new>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "model/model.h"
#include "model/model_config.h"
#include "model/synthetic_model.h"

namespace rwkvrt {
namespace {

TensorSet small_v7() {
  SyntheticShape s;
  s.n_layer = 3;
  s.n_embd = 128;
  s.n_vocab = 300;
  s.head_size = 32;
  return make_synthetic_v7(s);
}

// A copy of `src` without `drop`, with `reshape` given a new shape, in a shuffled key order.
TensorSet edited(const TensorSet& src, const std::string& drop = "",
                 const std::string& reshape = "", std::vector<int64_t> shape = {},
                 uint32_t shuffle_seed = 0) {
  std::vector<Tensor> ts = src.tensors();
  if (shuffle_seed) std::shuffle(ts.begin(), ts.end(), std::mt19937(shuffle_seed));
  TensorSet out;
  out.metadata = src.metadata;
  for (Tensor t : ts) {
    if (t.name == drop) continue;
    if (t.name == reshape) t.shape = shape;
    out.add(t);
  }
  return out;
}

std::string error_of(const TensorSet& t, rwkvrt_status* status = nullptr) {
  try {
    detect_config(t);
  } catch (const Error& e) {
    if (status) *status = e.status();
    return e.what();
  }
  return "";
}

TEST(ModelConfig, DetectsRwkv7DimsAndLoraRanks) {
  const ModelConfig c = detect_config(small_v7());
  EXPECT_EQ(c.version, RwkvVersion::V7);
  EXPECT_EQ(c.n_layer, 3u);
  EXPECT_EQ(c.n_embd, 128u);
  EXPECT_EQ(c.n_att, 128u);
  EXPECT_EQ(c.n_ffn, 512u);
  EXPECT_EQ(c.n_head, 4u);
  EXPECT_EQ(c.head_size, 32u);
  EXPECT_EQ(c.n_vocab, 300u);
  EXPECT_EQ(c.d_w, 32u);
  EXPECT_EQ(c.d_g, 32u);  // round(0.6·128^0.8 / 32)·32 = 32
  EXPECT_EQ(c.state_floats(), 3u * (2 * 128 + 4 * 32 * 32));
}

TEST(ModelConfig, DetectionDoesNotDependOnKeyOrder) {
  const TensorSet base = small_v7();
  const ModelConfig ref = detect_config(base);
  for (uint32_t seed = 1; seed <= 5; ++seed) {
    const ModelConfig c = detect_config(edited(base, "", "", {}, seed));
    EXPECT_EQ(c.version, ref.version);
    EXPECT_EQ(c.n_layer, ref.n_layer);
    EXPECT_EQ(c.d_v, ref.d_v);
  }
}

TEST(ModelConfig, MissingTensorIsNamed) {
  rwkvrt_status st{};
  const std::string e = error_of(edited(small_v7(), "blocks.2.att.g2"), &st);
  EXPECT_EQ(st, RWKVRT_ERR_FORMAT);
  EXPECT_NE(e.find("missing tensor 'blocks.2.att.g2'"), std::string::npos) << e;
}

TEST(ModelConfig, WrongShapeNamesExpectedAndFound) {
  const std::string e = error_of(edited(small_v7(), "", "blocks.1.ffn.value.weight", {128, 500}));
  EXPECT_NE(e.find("blocks.1.ffn.value.weight"), std::string::npos) << e;
  EXPECT_NE(e.find("(128, 500)"), std::string::npos) << e;
  EXPECT_NE(e.find("expected (128, 512)"), std::string::npos) << e;
}

TEST(ModelConfig, LayerZeroMayLackTheUnusedValueLora) {
  TensorSet t =
      edited(edited(edited(small_v7(), "blocks.0.att.v0"), "blocks.0.att.v1"), "blocks.0.att.v2");
  EXPECT_EQ(detect_config(t).version, RwkvVersion::V7);
}

TEST(ModelConfig, RejectsFilesThatAreNotRwkvCheckpoints) {
  TensorSet empty;
  EXPECT_NE(error_of(empty).find("emb.weight"), std::string::npos);
  const std::string e = error_of(edited(small_v7(), "head.weight"));
  EXPECT_NE(e.find("head.weight"), std::string::npos);
}

TEST(ModelConfig, RejectsConvertModelOutput) {
  TensorSet t = small_v7();
  Tensor marker;
  marker.name = "_strategy";
  marker.shape = {1};
  marker.data = t.allocate(4);
  marker.nbytes = 4;
  t.add(marker);
  rwkvrt_status st{};
  EXPECT_NE(error_of(t, &st).find("convert_model.py"), std::string::npos);
  EXPECT_EQ(st, RWKVRT_ERR_UNSUPPORTED);
}

TEST(ModelConfig, HeadCountMustDivideTheWidth) {
  const std::string e = error_of(edited(small_v7(), "", "blocks.0.att.r_k", {3, 32}));
  EXPECT_FALSE(e.empty());
}

// ---- configurations that would make a small file allocate absurdly

// The readers accept this shape (no elements; the product of its dimensions fits in 64 bits), but
// the product overflowed int64 in the vector check before it reached the 0 (UBSan; fuzz finding
// ln0_shape_overflow).
TEST(ModelConfig, VectorWithHugeDimensionsIsAFormatError) {
  rwkvrt_status st{};
  const std::string e =
      error_of(edited(small_v7(), "", "blocks.0.ln0.weight", {int64_t(1) << 40, 1 << 23, 0}), &st);
  EXPECT_EQ(st, RWKVRT_ERR_FORMAT);
  EXPECT_NE(e.find("tensor 'blocks.0.ln0.weight' has shape (1099511627776, 8388608, 0) with an "
                   "implausible dimension 1099511627776"),
            std::string::npos)
      << e;
}

// An RWKV-5.2 tensor set of the given dimensions, shapes only: detect_config reads no data.
TensorSet v5_shapes(int64_t C, int64_t H, int64_t N, uint32_t layers = 1) {
  const int64_t A = H * N, F = 4 * C, V = 16;
  TensorSet t;
  auto add = [&](const std::string& name, std::vector<int64_t> shape) {
    Tensor x;
    x.name = name;
    x.shape = std::move(shape);
    t.add(x);
  };
  add("emb.weight", {V, C});
  add("head.weight", {V, C});
  for (const char* n : {"blocks.0.ln0.weight", "blocks.0.ln0.bias", "ln_out.weight", "ln_out.bias"})
    add(n, {C});
  for (uint32_t i = 0; i < layers; ++i) {
    const std::string b = "blocks." + std::to_string(i) + ".";
    for (const char* n :
         {"ln1.weight", "ln1.bias", "ln2.weight", "ln2.bias", "att.time_mix_k", "att.time_mix_v",
          "att.time_mix_r", "att.time_mix_g", "ffn.time_mix_k", "ffn.time_mix_r"})
      add(b + n, {C});
    add(b + "att.time_decay", {H, N});
    add(b + "att.time_faaaa", {H, N});
    add(b + "att.ln_x.weight", {A});
    add(b + "att.ln_x.bias", {A});
    for (const char* n :
         {"att.key.weight", "att.value.weight", "att.receptance.weight", "att.gate.weight"})
      add(b + n, {A, C});
    add(b + "att.output.weight", {C, A});
    add(b + "ffn.key.weight", {F, C});
    add(b + "ffn.receptance.weight", {C, C});
    add(b + "ffn.value.weight", {C, F});
  }
  return t;
}

TEST(ModelConfig, ShapeOnlyRwkv5IsAccepted) {
  // The base of the two tests below: the same builder with ordinary heads is a valid model.
  const ModelConfig c = detect_config(v5_shapes(64, 2, 32, 2));
  EXPECT_EQ(c.version, RwkvVersion::V5_2);
  EXPECT_EQ(c.n_head, 2u);
  EXPECT_EQ(c.head_size, 32u);
  EXPECT_EQ(c.state_floats(), 2u * (2 * 64 + 2 * 32 * 32));
}

TEST(ModelConfig, HeadSizeAboveTheLimitIsUnsupported) {
  // One head of 8192 in a model of width 1: a 256 MiB state per layer (fuzz finding
  // v5_one_head_of_16384 is the same with 16384).
  rwkvrt_status st{};
  const std::string e = error_of(v5_shapes(1, 1, 8192), &st);
  EXPECT_EQ(st, RWKVRT_ERR_UNSUPPORTED);
  EXPECT_NE(e.find("1 head(s) of size 8192 (attention width 8192): head sizes above 4096 are not "
                   "supported"),
            std::string::npos)
      << e;
}

TEST(ModelConfig, StateLargerThanTheCheckpointIsUnsupported) {
  // Heads of 2048 are within the head-size limit, but 64 layers of one such head over a width of
  // 1 would need a 1 GiB state for a model of about 1.2 million parameters.
  rwkvrt_status st{};
  const std::string e = error_of(v5_shapes(1, 1, 2048, 64), &st);
  EXPECT_EQ(st, RWKVRT_ERR_UNSUPPORTED);
  EXPECT_NE(e.find("the recurrent state would hold 268435584 values (64 layers, 1 head(s) of size "
                   "2048), more than the checkpoint's"),
            std::string::npos)
      << e;
  // The same heads are fine in a model wide enough for them.
  EXPECT_EQ(detect_config(v5_shapes(512, 1, 2048, 2)).head_size, 2048u);
}

// Every input the model_load fuzz target found goes through the whole load path and must end in
// Error, never in a crash, a sanitizer report or std::bad_alloc.
TEST(ModelConfig, FuzzRegressionInputsFailCleanly) {
  const std::filesystem::path dir =
      std::filesystem::path(RWKVRT_SOURCE_DIR) / "tests/fuzz/regressions/model_load";
  std::map<std::string, std::pair<rwkvrt_status, std::string>> expected = {
      {"ln0_shape_overflow.safetensors",
       {RWKVRT_ERR_FORMAT, "tensor 'blocks.0.ln0.weight' has shape (1099511627776, 8388608, 0)"}},
      {"v5_one_head_of_16384.pth",
       {RWKVRT_ERR_UNSUPPORTED, "1 head(s) of size 16384 (attention width 16384)"}},
  };
  size_t seen = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string file = entry.path().filename().string();
    SCOPED_TRACE(file);
    try {
      LoadOptions options;
      options.n_threads = 1;
      Model::load(entry.path().string(), options);
      ADD_FAILURE() << "the model loaded";
    } catch (const Error& e) {
      auto it = expected.find(file);
      if (it == expected.end()) continue;  // a newer input: any clean Error will do
      ++seen;
      EXPECT_EQ(e.status(), it->second.first) << e.what();
      EXPECT_NE(std::string(e.what()).find(it->second.second), std::string::npos) << e.what();
    } catch (const std::bad_alloc&) {
      ADD_FAILURE() << "std::bad_alloc";
    }
  }
  EXPECT_EQ(seen, expected.size());
}

}  // namespace
}  // namespace rwkvrt
