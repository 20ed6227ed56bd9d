// Version and dimension detection, and the validation that turns a malformed tensor set into a
// clear error before any weight is prepared.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>

#include "core/error.h"
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
  const std::string e =
      error_of(edited(small_v7(), "", "blocks.1.ffn.value.weight", {128, 500}));
  EXPECT_NE(e.find("blocks.1.ffn.value.weight"), std::string::npos) << e;
  EXPECT_NE(e.find("(128, 500)"), std::string::npos) << e;
  EXPECT_NE(e.find("expected (128, 512)"), std::string::npos) << e;
}

TEST(ModelConfig, LayerZeroMayLackTheUnusedValueLora) {
  TensorSet t = edited(edited(edited(small_v7(), "blocks.0.att.v0"), "blocks.0.att.v1"),
                       "blocks.0.att.v2");
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

}  // namespace
}  // namespace rwkvrt
