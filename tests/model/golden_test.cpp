// The model graphs against the reference package's golden vectors, on every usable backend, in
// RNN mode (one token at a time), sequence mode (all tokens at once, and split into pieces), the
// state after the sequence (canonical layout), and the continuation from an imported state.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "model/model.h"
#include "session/session.h"
#include "support/backends.h"
#include "support/golden.h"
#include "support/test_data.h"

namespace rwkvrt {
namespace {

// fp32 compute against the reference's fp32: a few 1e-6 is expected (RWKV-MATH.md); the issue's
// bound is 1e-4.
constexpr double kLogitTolerance = 1e-4;

class GoldenTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    golden_ = test::load_golden(GetParam());
    backends_ = test::usable_backends();
    ASSERT_FALSE(backends_.empty()) << "no usable backend; is RWKVRT_BACKEND_PATH set?";
  }

  std::shared_ptr<Model> load(const std::string& backend) {
    LoadOptions o;
    o.backend = backend;
    o.weight_dtype = RWKVRT_BK_F32;  // fp32 compute, as the goldens were made
    return Model::load(test::testdata_path("golden/" + GetParam() + ".pth"), o);
  }

  test::Golden golden_;
  std::vector<std::string> backends_;
};

TEST_P(GoldenTest, RnnModeMatchesEveryStep) {
  for (const std::string& backend : backends_) {
    SCOPED_TRACE("backend " + backend);
    auto model = load(backend);
    Session s(model);
    const size_t V = model->config().n_vocab;
    std::vector<float> logits(V);
    double worst = 0.0;
    for (size_t t = 0; t < golden_.tokens.size(); ++t) {
      s.feed(&golden_.tokens[t], 1, LogitsMode::Last, logits.data());
      const double err = test::max_abs_diff(logits, golden_.logits_rnn[t]);
      worst = std::max(worst, err);
      ASSERT_LE(err, kLogitTolerance) << "step " << t;
    }
    RecordProperty("max_abs_error_rnn_" + backend, std::to_string(worst));
  }
}

TEST_P(GoldenTest, SequenceModeMatchesLastAndAllRows) {
  for (const std::string& backend : backends_) {
    SCOPED_TRACE("backend " + backend);
    auto model = load(backend);
    const size_t V = model->config().n_vocab, T = golden_.tokens.size();
    Session s(model);
    std::vector<float> last(V);
    s.feed(golden_.tokens.data(), T, LogitsMode::Last, last.data());
    EXPECT_LE(test::max_abs_diff(last, golden_.logits_seq_last), kLogitTolerance);

    s.reset();
    std::vector<float> all(T * V);
    s.feed(golden_.tokens.data(), T, LogitsMode::All, all.data());
    for (size_t t = 0; t < T; ++t)
      ASSERT_LE(test::max_abs_diff(all.data() + t * V, golden_.logits_rnn[t].data(), V),
                kLogitTolerance)
          << "row " << t;
  }
}

TEST_P(GoldenTest, AnySplitOfTheSequenceIsExact) {
  for (const std::string& backend : backends_) {
    SCOPED_TRACE("backend " + backend);
    auto model = load(backend);
    const size_t V = model->config().n_vocab, T = golden_.tokens.size();
    Session s(model);
    std::vector<float> logits(V);
    const size_t cuts[] = {0, 1, 6, 13, T};
    for (size_t i = 0; i + 1 < std::size(cuts); ++i)
      s.feed(golden_.tokens.data() + cuts[i], cuts[i + 1] - cuts[i], LogitsMode::Last,
             logits.data());
    EXPECT_LE(test::max_abs_diff(logits, golden_.logits_seq_last), kLogitTolerance);
  }
}

TEST_P(GoldenTest, StateAfterSequenceMatchesCanonicalExport) {
  for (const std::string& backend : backends_) {
    SCOPED_TRACE("backend " + backend);
    auto model = load(backend);
    Session s(model);
    s.feed(golden_.tokens.data(), golden_.tokens.size(), LogitsMode::None, nullptr);
    std::vector<float> state(model->state_floats());
    s.export_state(state.data());
    const auto& layout = model->state_layout();
    ASSERT_EQ(layout.size(), golden_.state_after_seq.size());
    for (size_t i = 0; i < layout.size(); ++i) {
      const test::GoldenTensor& g = golden_.state_after_seq[i];
      SCOPED_TRACE("state tensor " + layout[i].name);
      ASSERT_EQ(layout[i].numel(), g.data.size());
      for (size_t j = 0; j < g.data.size(); ++j) {
        const double want = g.data[j], got = state[layout[i].offset + j];
        // Relative for the v4 accumulators (aa, bb grow with the sequence), absolute near zero.
        ASSERT_NEAR(got, want, 1e-4 * std::max(1.0, std::fabs(want))) << "element " << j;
      }
    }
  }
}

TEST_P(GoldenTest, ContinuesFromImportedState) {
  for (const std::string& backend : backends_) {
    SCOPED_TRACE("backend " + backend);
    auto model = load(backend);
    std::vector<float> state;
    for (const test::GoldenTensor& g : golden_.state_after_seq)
      state.insert(state.end(), g.data.begin(), g.data.end());
    ASSERT_EQ(state.size(), model->state_floats());
    Session s(model);
    s.import_state(state.data());
    std::vector<float> logits(model->config().n_vocab);
    s.feed(&golden_.next_token, 1, LogitsMode::Last, logits.data());
    EXPECT_LE(test::max_abs_diff(logits, golden_.logits_after_next), kLogitTolerance);
  }
}

INSTANTIATE_TEST_SUITE_P(AllVersions, GoldenTest, ::testing::ValuesIn(test::golden_names()));

}  // namespace
}  // namespace rwkvrt
