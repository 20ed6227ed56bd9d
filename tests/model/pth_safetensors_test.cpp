// The same weights as .pth and as the safetensors file `rwkvrt convert` writes give identical
// logits, and loading a converted file keeps the metadata-carried GroupNorm eps.
#include <gtest/gtest.h>

#include <map>
#include <vector>

#include "loaders/checkpoint_readers.h"
#include "loaders/safetensors_writer.h"
#include "model/model.h"
#include "model/model_config.h"
#include "session/session.h"
#include "support/golden.h"
#include "support/test_data.h"

namespace rwkvrt {
namespace {

std::vector<float> logits_of(const std::string& path) {
  auto m = Model::load(path, LoadOptions{});
  Session s(m);
  const int32_t tokens[] = {5, 17, 2, 99};
  std::vector<float> out(m->config().n_vocab * 4);
  s.feed(tokens, 4, LogitsMode::All, out.data());
  return out;
}

TEST(PthVsSafetensors, IdenticalLogitsForEveryGoldenModel) {
  const std::string dir = test::scratch_dir();
  for (const std::string& name : test::golden_names()) {
    SCOPED_TRACE(name);
    const std::string pth = test::testdata_path("golden/" + name + ".pth");
    const std::string st = dir + "/" + name + ".safetensors";
    const TensorSet t = read_checkpoint(pth);
    write_safetensors(st, t, {{"rwkvrt.version", version_name(detect_config(t).version)}}, {});
    EXPECT_EQ(test::max_abs_diff(logits_of(pth), logits_of(st)), 0.0);
  }
}

TEST(PthVsSafetensors, RwkvcppGroupNormEpsSurvivesConversion) {
  const std::string src = test::testdata_path("rwkvcpp/tiny-rwkv-5v1-730K-FP32.bin");
  const std::string st = test::scratch_dir() + "/5v1.safetensors";
  const TensorSet t = read_checkpoint(src);
  std::map<std::string, std::string> meta = {{"rwkvrt.group_norm_eps",
                                              t.metadata.at("rwkvrt.group_norm_eps")}};
  write_safetensors(st, t, meta, {});
  EXPECT_FLOAT_EQ(Model::load(st, LoadOptions{})->config().group_norm_eps, 1e-5f);
  EXPECT_EQ(test::max_abs_diff(logits_of(src), logits_of(st)), 0.0);
}

}  // namespace
}  // namespace rwkvrt
