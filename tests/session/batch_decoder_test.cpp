// Batched decode equals stepping each session alone, for sessions with different histories and
// batch compositions that change between steps (sessions join and leave), with the logits
// downloaded into the caller's buffer or into the decoder's own.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "core/error.h"
#include "model/model.h"
#include "model/synthetic_model.h"
#include "session/batch_decoder.h"
#include "session/session.h"
#include "support/backends.h"
#include "support/golden.h"

namespace rwkvrt {
namespace {

std::shared_ptr<Model> small_model(const std::string& backend, uint64_t seed = 5) {
  SyntheticShape s;
  s.n_layer = 2;
  s.n_embd = 64;
  s.n_vocab = 61;
  s.head_size = 32;
  s.seed = seed;
  s.matrix_dtype = DType::BF16;
  LoadOptions o;
  o.backend = backend;
  return Model::from_tensors(make_synthetic_v7(s), o);
}

TEST(BatchDecoder, EqualsSteppingEachSessionAlone) {
  for (const std::string& backend : test::usable_backends()) {
    SCOPED_TRACE("backend " + backend);
    auto model = small_model(backend);
    const size_t V = model->config().n_vocab, S = 9;
    std::mt19937 rng(11);
    // Two copies of every session: one advanced in batches, one alone.
    std::vector<std::unique_ptr<Session>> batched, alone;
    for (size_t i = 0; i < S; ++i) {
      batched.push_back(std::make_unique<Session>(model));
      alone.push_back(std::make_unique<Session>(model));
      std::vector<int32_t> prompt(1 + i * 3);
      for (int32_t& t : prompt) t = int32_t(rng() % V);
      batched[i]->feed(prompt.data(), prompt.size(), LogitsMode::None, nullptr);
      alone[i]->feed(prompt.data(), prompt.size(), LogitsMode::None, nullptr);
    }
    BatchDecoder decoder(model, 4);
    double worst = 0.0;
    for (int step = 0; step < 12; ++step) {
      // A different subset each step, in a different order.
      std::vector<Session*> members;
      std::vector<size_t> index;
      for (size_t i = 0; i < S; ++i)
        if ((i + size_t(step)) % 3 != 0) index.push_back(i);
      std::shuffle(index.begin(), index.end(), rng);
      std::vector<int32_t> tokens;
      for (size_t i : index) {
        members.push_back(batched[i].get());
        tokens.push_back(int32_t(rng() % V));
      }
      std::vector<float> logits(members.size() * V), one(V);
      if (step % 2 == 0) {
        decoder.step(members.data(), tokens.data(), members.size(), logits.data());
      } else {  // the decoder's own (page-locked on GPUs) rows, as batched generation reads them
        const float* rows = decoder.step_logits(members.data(), tokens.data(), members.size());
        std::copy(rows, rows + logits.size(), logits.begin());
      }
      for (size_t k = 0; k < index.size(); ++k) {
        alone[index[k]]->feed(&tokens[k], 1, LogitsMode::Last, one.data());
        worst = std::max(worst, test::max_abs_diff(one.data(), logits.data() + k * V, V));
      }
    }
    EXPECT_LE(worst, 1e-4);
    for (size_t i = 0; i < S; ++i) {
      std::vector<float> a(model->state_floats()), b(model->state_floats());
      batched[i]->export_state(a.data());
      alone[i]->export_state(b.data());
      EXPECT_LE(test::max_abs_diff(a, b), 1e-4) << "session " << i;
    }
  }
}

TEST(BatchDecoder, RefusesBadBatchesBeforeChangingAnyState) {
  auto model = small_model("");
  auto other = small_model("", 6);
  Session a(model), b(model), foreign(other);
  std::vector<float> before(model->state_floats()), after(model->state_floats());
  a.export_state(before.data());
  BatchDecoder decoder(model);
  const int32_t tokens[] = {1, 2};
  Session* dup[] = {&a, &a};
  EXPECT_THROW(decoder.step(dup, tokens, 2, nullptr), Error);
  Session* mixed[] = {&a, &foreign};
  EXPECT_THROW(decoder.step(mixed, tokens, 2, nullptr), Error);
  const int32_t bad[] = {1, 1000};
  Session* pair[] = {&a, &b};
  try {
    decoder.step(pair, bad, 2, nullptr);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), RWKVRT_ERR_INVALID_ARGUMENT);
  }
  a.export_state(after.data());
  EXPECT_EQ(test::max_abs_diff(before, after), 0.0);
}

}  // namespace
}  // namespace rwkvrt
