// State blobs: round trip, and every kind of bad blob refused with the right status before the
// session's state changes.
#include <gtest/gtest.h>

#include <vector>

#include "core/error.h"
#include "model/model.h"
#include "model/synthetic_model.h"
#include "session/session.h"
#include "session/state_blob.h"
#include "support/backends.h"
#include "support/golden.h"

namespace rwkvrt {
namespace {

std::shared_ptr<Model> tiny_model(uint64_t seed, uint32_t layers = 2, const std::string& backend = "") {
  SyntheticShape s;
  s.n_layer = layers;
  s.n_embd = 64;
  s.n_vocab = 50;
  s.head_size = 32;
  s.seed = seed;
  LoadOptions o;
  o.backend = backend;
  return Model::from_tensors(make_synthetic_v7(s), o);
}

rwkvrt_status status_of_load(Session& s, const std::vector<uint8_t>& blob) {
  try {
    s.load_state(blob.data(), blob.size());
  } catch (const Error& e) {
    return e.status();
  }
  return RWKVRT_OK;
}

class StateBlob : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = tiny_model(1);
    session_ = std::make_unique<Session>(model_);
    const int32_t tokens[] = {3, 1, 4, 1, 5, 9, 2, 6};
    session_->feed(tokens, 8, LogitsMode::None, nullptr);
    blob_ = session_->save_state();
  }
  // The logits of token 7 from the session's current state (a fingerprint of that state).
  std::vector<float> probe(Session& s) {
    std::vector<float> state(model_->state_floats());
    s.export_state(state.data());
    std::vector<float> logits(model_->config().n_vocab);
    const int32_t t = 7;
    s.feed(&t, 1, LogitsMode::Last, logits.data());
    s.import_state(state.data());
    return logits;
  }
  std::shared_ptr<Model> model_;
  std::unique_ptr<Session> session_;
  std::vector<uint8_t> blob_;
};

TEST_F(StateBlob, RoundTripContinuesIdentically) {
  ASSERT_EQ(blob_.size(), state_blob_size(*model_));
  Session other(model_);
  other.load_state(blob_.data(), blob_.size());
  EXPECT_EQ(test::max_abs_diff(probe(other), probe(*session_)), 0.0);
}

TEST_F(StateBlob, EveryFlippedBitIsDetected) {
  Session other(model_);
  const std::vector<float> before = probe(other);
  for (size_t pos : {size_t(9), size_t(20), size_t(44), size_t(64), blob_.size() / 2,
                     blob_.size() - 5, blob_.size() - 1}) {
    std::vector<uint8_t> bad = blob_;
    bad[pos] ^= 0x10;
    const rwkvrt_status st = status_of_load(other, bad);
    EXPECT_TRUE(st == RWKVRT_ERR_CORRUPT || st == RWKVRT_ERR_FORMAT) << "byte " << pos;
  }
  std::vector<uint8_t> bad = blob_;
  bad[0] = 'X';
  EXPECT_EQ(status_of_load(other, bad), RWKVRT_ERR_FORMAT);
  bad = blob_;
  bad[100] ^= 1;
  EXPECT_EQ(status_of_load(other, bad), RWKVRT_ERR_CORRUPT);
  EXPECT_EQ(test::max_abs_diff(probe(other), before), 0.0) << "a refused blob changed the state";
}

TEST_F(StateBlob, TruncatedAtEveryLengthIsRefused) {
  Session other(model_);
  for (size_t n = 0; n < blob_.size(); n += (n < 128 ? 1 : 997)) {
    std::vector<uint8_t> cut(blob_.begin(), blob_.begin() + std::ptrdiff_t(n));
    EXPECT_EQ(status_of_load(other, cut), RWKVRT_ERR_FORMAT) << "length " << n;
  }
}

TEST_F(StateBlob, AnotherModelsStateIsRefusedWithTheReason) {
  auto deeper = tiny_model(1, 3);
  Session s3(deeper);
  try {
    s3.load_state(blob_.data(), blob_.size());
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), RWKVRT_ERR_STATE_MISMATCH);
    EXPECT_NE(std::string(e.what()).find("2 layers"), std::string::npos) << e.what();
  }
  auto same_shape = tiny_model(2);
  Session s2(same_shape);
  try {
    s2.load_state(blob_.data(), blob_.size());
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), RWKVRT_ERR_STATE_MISMATCH);
    EXPECT_NE(std::string(e.what()).find("different model"), std::string::npos) << e.what();
  }
}

TEST_F(StateBlob, MovesBetweenBackends) {
  for (const std::string& backend : test::usable_backends()) {
    SCOPED_TRACE("backend " + backend);
    auto there = tiny_model(1, 2, backend);
    ASSERT_EQ(there->fingerprint(), model_->fingerprint());
    Session s(there);
    s.load_state(blob_.data(), blob_.size());
    std::vector<float> logits(there->config().n_vocab);
    const int32_t t = 7;
    s.feed(&t, 1, LogitsMode::Last, logits.data());
    EXPECT_LE(test::max_abs_diff(logits, probe(*session_)), 1e-4);
  }
}

}  // namespace
}  // namespace rwkvrt
