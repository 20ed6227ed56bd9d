// Sequence mode (whole prompts, split into passes of at most max_rows_per_pass rows) equals RNN
// mode (one token at a time) on a random-weight model, for prompts longer than one pass.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "model/model.h"
#include "model/synthetic_model.h"
#include "session/session.h"
#include "support/backends.h"
#include "support/golden.h"

namespace rwkvrt {
namespace {

TEST(SequenceVsRnn, LongPromptAcrossSeveralPassesMatchesStepByStep) {
  SyntheticShape shape;
  shape.n_layer = 2;
  shape.n_embd = 64;
  shape.n_vocab = 97;
  shape.head_size = 32;
  shape.matrix_dtype = DType::BF16;
  const TensorSet tensors = make_synthetic_v7(shape);
  for (const std::string& backend : test::usable_backends()) {
    SCOPED_TRACE("backend " + backend);
    LoadOptions o;
    o.backend = backend;
    auto model = Model::from_tensors(tensors, o);
    const size_t T = model->max_rows_per_pass() * 2 + 37, V = shape.n_vocab;
    std::vector<int32_t> tokens(T);
    std::mt19937 rng(3);
    for (int32_t& t : tokens) t = int32_t(rng() % V);

    Session seq(model), rnn(model);
    std::vector<float> all(T * V), step(V);
    seq.feed(tokens.data(), T, LogitsMode::All, all.data());
    double worst = 0.0;
    for (size_t t = 0; t < T; ++t) {
      rnn.feed(&tokens[t], 1, LogitsMode::Last, step.data());
      worst = std::max(worst, test::max_abs_diff(step.data(), all.data() + t * V, V));
    }
    EXPECT_LE(worst, 1e-4);
    std::vector<float> s1(model->state_floats()), s2(model->state_floats());
    seq.export_state(s1.data());
    rnn.export_state(s2.data());
    EXPECT_LE(test::max_abs_diff(s1, s2), 1e-4);
  }
}

}  // namespace
}  // namespace rwkvrt
