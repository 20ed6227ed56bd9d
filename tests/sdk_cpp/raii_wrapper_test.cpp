// The header-only C++ wrapper rwkvrt.hpp on the project's default model (byte-level RWKV-7):
// errors as exceptions, exceptions from callbacks, ownership (objects outliving the handles they
// came from), moves, and that every wrapped call does what its C counterpart does.
//
// This file includes only the public headers: rwkvrt::Session here is the wrapper's.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "rwkvrt/rwkvrt.hpp"
#include "support/test_data.h"

namespace {

const char kPrompt[] = "In the beginning";

std::string default_model_path() {
  return std::string(RWKVRT_SOURCE_DIR) + "/models/default/rwkv7-kjv-byte.pth";
}

rwkvrt::ModelParams test_params() {
  return rwkvrt::ModelParams().backend("cpu").threads(2);
}

struct CppWrapper : ::testing::Test {
  static rwkvrt::Model& model() {
    static rwkvrt::Model m = rwkvrt::Model::load(default_model_path(), test_params());
    return m;
  }
  static rwkvrt::Session greedy_session() {
    rwkvrt::Session s(model());
    s.set_sampling(rwkvrt::SamplingParams::greedy());
    return s;
  }
};

rwkvrt::GenerateParams limit(uint32_t max_tokens) {
  rwkvrt::GenerateParams p;
  p.max_tokens = max_tokens;
  p.stop_at_eos = false;
  return p;
}

int32_t argmax(const std::vector<float>& v) {
  return int32_t(std::max_element(v.begin(), v.end()) - v.begin());
}

// The status of the rwkvrt::Error that `f` throws (a test failure if it throws none).
template <typename F>
rwkvrt_status status_thrown_by(F&& f, std::string* message = nullptr) {
  try {
    f();
  } catch (const rwkvrt::Error& e) {
    if (message) *message = e.what();
    return e.status();
  }
  ADD_FAILURE() << "no rwkvrt::Error was thrown";
  return RWKVRT_OK;
}

struct CallbackFailure {};  // thrown by callbacks to check that it comes back out

TEST_F(CppWrapper, ModelInfoAndTokenizer) {
  const rwkvrt_model_info info = model().info();
  EXPECT_EQ(info.rwkv_version, 70u);
  EXPECT_EQ(info.n_vocab, 256u);
  EXPECT_STREQ(info.backend, "cpu");
  const rwkvrt::TokenizerInfo t = model().tokenizer().info();
  EXPECT_EQ(t.kind, "byte");
  EXPECT_EQ(t.vocab_size, 256u);
  EXPECT_EQ(model().tokenizer().encode("Hi"), (std::vector<int32_t>{'H', 'i'}));
}

TEST_F(CppWrapper, FailuresThrowErrorWithStatusAndMessage) {
  std::string message;
  EXPECT_EQ(status_thrown_by([] { rwkvrt::Model::load("/nonexistent/model.pth"); }, &message),
            RWKVRT_ERR_IO);
  EXPECT_NE(message.find("/nonexistent/model.pth"), std::string::npos) << message;

  rwkvrt::Session s(model());
  EXPECT_EQ(status_thrown_by([&] { s.step(256); }), RWKVRT_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(status_thrown_by([&] { s.generate(limit(3)); }), RWKVRT_ERR_INVALID_ARGUMENT)
      << "generation without a prompt must fail: there are no logits";
  EXPECT_EQ(status_thrown_by([&] {
              s.load_state(std::vector<uint8_t>{1, 2, 3});
            }),
            RWKVRT_ERR_FORMAT);
  rwkvrt::SamplingParams bad;
  bad.top_p = 2.0f;
  EXPECT_EQ(status_thrown_by([&] { s.set_sampling(bad); }), RWKVRT_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(status_thrown_by([] { rwkvrt::Session empty{rwkvrt::Model()}; }),
            RWKVRT_ERR_INVALID_ARGUMENT);
}

TEST_F(CppWrapper, ProgressCallbackCanCancelOrThrow) {
  int calls = 0;
  rwkvrt::Model::load(default_model_path(), test_params().progress([&](float f, std::string_view) {
    EXPECT_GE(f, 0.0f);
    EXPECT_LE(f, 1.0f);
    ++calls;
    return true;
  }));
  EXPECT_GT(calls, 0);

  EXPECT_EQ(status_thrown_by([] {
              rwkvrt::Model::load(
                  default_model_path(),
                  test_params().progress([](float, std::string_view) { return false; }));
            }),
            RWKVRT_ERR_CANCELLED);

  EXPECT_THROW(rwkvrt::Model::load(default_model_path(),
                                   test_params().progress([](float, std::string_view) -> bool {
                                     throw CallbackFailure();
                                   })),
               CallbackFailure);
}

TEST_F(CppWrapper, TokenizerRoundTripsAndGrowsItsBuffers) {
  const rwkvrt::Tokenizer world =
      rwkvrt::Tokenizer::load(rwkvrt::test::testdata_path("tokenizer/rwkv_vocab_v20230424.txt"));
  EXPECT_EQ(world.info().kind, "world");
  EXPECT_EQ(world.encode("Hello world"), (std::vector<int32_t>{33155, 40213}));
  // Long tokens: the decoded text is longer than the wrapper's first guess of the buffer size.
  std::string text;
  for (int i = 0; i < 40; ++i) text += " internationalization";
  const std::vector<int32_t> ids = world.encode(text);
  ASSERT_LT(ids.size() * 4 + 16, text.size()) << "the text no longer exercises the retry";
  EXPECT_EQ(world.decode(ids), text);
  EXPECT_EQ(world.encode(""), std::vector<int32_t>{});
  EXPECT_EQ(world.decode(std::vector<int32_t>{}), "");
  EXPECT_EQ(status_thrown_by([&] { world.decode(std::vector<int32_t>{70000}); }),
            RWKVRT_ERR_INVALID_ARGUMENT);

  const rwkvrt::Tokenizer bytes = rwkvrt::Tokenizer::byte_level();
  const std::string binary("\xff\x00\x80z", 4);
  EXPECT_EQ(bytes.decode(bytes.encode(binary)), binary);
}

TEST_F(CppWrapper, GreedyGenerationEqualsALoopOverStep) {
  rwkvrt::Session s = greedy_session();
  s.prompt(kPrompt);
  const rwkvrt::Generated g = s.generate(limit(32));
  EXPECT_EQ(g.finish, RWKVRT_FINISH_LENGTH);
  EXPECT_EQ(g.n_generated, 32u);

  rwkvrt::Session r(model());
  std::vector<float> logits = r.feed(model().tokenizer().encode(kPrompt));
  ASSERT_EQ(logits.size(), 256u);
  std::string expected;
  for (int i = 0; i < 32; ++i) {
    const int32_t t = argmax(logits);
    expected += char(t);
    logits = r.step(t);
  }
  EXPECT_EQ(g.text, expected);
  // Both sessions fed the prompt and the same 32 tokens.
  const std::vector<float> a = s.export_state(), b = r.export_state();
  ASSERT_EQ(a.size(), b.size());
  float worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(a[i] - b[i]));
  EXPECT_LT(worst, 1e-4f);
}

TEST_F(CppWrapper, CallbackPullAndRangeGiveTheSameText) {
  rwkvrt::Session a = greedy_session(), b = greedy_session(), c = greedy_session();
  for (rwkvrt::Session* s : {&a, &b, &c}) s->prompt(kPrompt);

  std::string streamed;
  std::vector<uint32_t> counts;
  const rwkvrt::Generated whole = a.generate(limit(24), [&](const rwkvrt::Piece& p) {
    streamed += p.text;
    counts.push_back(p.n_generated);
  });
  EXPECT_EQ(streamed, whole.text);
  ASSERT_FALSE(counts.empty());
  EXPECT_EQ(counts.back(), 24u);

  std::string pulled;
  b.generate_begin(limit(24));
  for (;;) {
    const rwkvrt::Piece p = b.generate_next();
    pulled += p.text;
    if (p.finished()) break;
  }
  EXPECT_EQ(pulled, whole.text);

  std::string ranged;
  int finished_pieces = 0;
  for (const rwkvrt::Piece& p : c.pieces(limit(24))) {
    ranged += p.text;
    finished_pieces += p.finished();
  }
  EXPECT_EQ(ranged, whole.text);
  EXPECT_EQ(finished_pieces, 1) << "the range ends with exactly one finished piece";
}

TEST_F(CppWrapper, CallbackCanStopAndItsExceptionPropagates) {
  rwkvrt::Session s = greedy_session();
  s.prompt(kPrompt);
  int pieces = 0;
  const rwkvrt::Generated stopped =
      s.generate(limit(50), [&](const rwkvrt::Piece&) { return ++pieces < 5; });
  EXPECT_EQ(stopped.finish, RWKVRT_FINISH_CANCELLED);
  EXPECT_EQ(stopped.n_generated, 5u);

  s.prompt(kPrompt);
  int calls_after_throw = 0;
  bool thrown = false;
  EXPECT_THROW(s.generate(limit(50),
                          [&](const rwkvrt::Piece&) {
                            if (thrown) ++calls_after_throw;
                            thrown = true;
                            throw CallbackFailure();
                          }),
               CallbackFailure);
  EXPECT_EQ(calls_after_throw, 0) << "the callback is not called again after it threw";
  // The session is still usable.
  s.prompt(kPrompt);
  EXPECT_EQ(s.generate(limit(3)).n_generated, 3u);
}

TEST_F(CppWrapper, StopStringsAndLimits) {
  rwkvrt::Session s = greedy_session();
  s.prompt(kPrompt);
  const std::string full = s.generate(limit(60)).text;
  ASSERT_GT(full.size(), 30u);
  const std::string stop = full.substr(20, 3);

  rwkvrt::Session t = greedy_session();
  t.prompt(kPrompt);
  rwkvrt::GenerateParams params = limit(60);
  params.stop = {"not in the text", stop};
  const rwkvrt::Generated g = t.generate(params);
  EXPECT_EQ(g.finish, RWKVRT_FINISH_STOP);
  EXPECT_EQ(g.text, full.substr(0, full.find(stop)));
}

TEST_F(CppWrapper, CancelFromAnotherThread) {
  rwkvrt::Session s(model());
  rwkvrt::SamplingParams sampling;
  sampling.seed = 5;
  s.set_sampling(sampling);
  s.prompt(kPrompt);
  std::atomic<int> pieces{0};
  std::thread canceller([&] {
    while (pieces.load() < 3) std::this_thread::yield();
    s.cancel();
  });
  const rwkvrt::Generated g =
      s.generate(limit(100000), [&](const rwkvrt::Piece&) { pieces.fetch_add(1); });
  canceller.join();
  EXPECT_EQ(g.finish, RWKVRT_FINISH_CANCELLED);
  EXPECT_LT(g.n_generated, 100000u);
}

// rwkvrt.h: rwkvrt_session_cancel stops "the session's generation in progress (or, if none, its
// next one)", so a cancel that races ahead of the generation it targets is not lost.
TEST_F(CppWrapper, CancelWithNoGenerationInProgressHasNoEffect) {
  // The header's contract: a cancel only stops the generation in progress, so a stale cancel
  // (e.g. a stop button pressed just as a reply finished) never eats the next reply.
  rwkvrt::Session s = greedy_session();
  s.prompt(kPrompt);
  s.cancel();
  const rwkvrt::Generated g = s.generate(limit(10));
  EXPECT_EQ(g.finish, RWKVRT_FINISH_LENGTH);
  EXPECT_EQ(g.n_generated, 10u);
}

TEST_F(CppWrapper, SavedStateAndForkContinueIdentically) {
  rwkvrt::Session s = greedy_session();
  s.prompt(kPrompt);
  s.generate(limit(10));
  const std::vector<uint8_t> blob = s.save_state();
  ASSERT_GT(blob.size(), 64u);
  rwkvrt::Session forked = s.fork();
  s.prompt(std::string(" and"));
  const std::string expected = s.generate(limit(20)).text;

  rwkvrt::Session restored = greedy_session();
  restored.load_state(blob);
  restored.prompt(std::string(" and"));
  EXPECT_EQ(restored.generate(limit(20)).text, expected);

  forked.prompt(std::string(" and"));
  EXPECT_EQ(forked.generate(limit(20)).text, expected);

  // reset() goes back to the initial state: the first generation repeats.
  rwkvrt::Session fresh = greedy_session();
  fresh.prompt(kPrompt);
  const std::string first = fresh.generate(limit(10)).text;
  fresh.reset();
  fresh.prompt(kPrompt);
  EXPECT_EQ(fresh.generate(limit(10)).text, first);
}

TEST_F(CppWrapper, SamplingParamsReachTheSampler) {
  auto sample = [](const rwkvrt::SamplingParams& p) {
    rwkvrt::Session s(model());
    s.set_sampling(p);
    s.prompt(kPrompt);
    return s.generate(limit(40)).text;
  };
  rwkvrt::SamplingParams seeded;
  seeded.seed = 11;
  EXPECT_EQ(sample(seeded), sample(seeded));
  rwkvrt::SamplingParams other = seeded;
  other.seed = 12;
  EXPECT_NE(sample(seeded), sample(other));

  rwkvrt::SamplingParams no_spaces = rwkvrt::SamplingParams::greedy();
  no_spaces.banned = {' ', '\n'};
  const std::string text = sample(no_spaces);
  EXPECT_EQ(text.find(' '), std::string::npos) << text;
  EXPECT_EQ(text.find('\n'), std::string::npos) << text;

  rwkvrt::SamplingParams only_q = rwkvrt::SamplingParams::greedy();
  only_q.logit_bias = {{'q', 1000.0f}};
  EXPECT_EQ(sample(only_q), std::string(40, 'q'));
}

TEST_F(CppWrapper, ObjectsKeepWhatTheyNeedAlive) {
  rwkvrt::Session session = [] {
    rwkvrt::Model local = rwkvrt::Model::load(default_model_path(), test_params());
    return rwkvrt::Session(local);
  }();  // the only Model handle is gone: the session keeps the model
  session.set_sampling(rwkvrt::SamplingParams::greedy());
  session.prompt(kPrompt);
  EXPECT_EQ(session.generate(limit(5)).n_generated, 5u);

  rwkvrt::Tokenizer tokenizer = [] {
    return rwkvrt::Model::load(default_model_path(), test_params()).tokenizer();
  }();
  EXPECT_EQ(tokenizer.decode(tokenizer.encode("abc")), "abc");

  // Moves transfer the session; the moved-from object holds nothing.
  rwkvrt::Session moved = std::move(session);
  EXPECT_EQ(session.get(), nullptr);  // NOLINT(bugprone-use-after-move): checking the contract
  ASSERT_NE(moved.get(), nullptr);
  moved.prompt(kPrompt);
  EXPECT_EQ(moved.generate(limit(2)).n_generated, 2u);
  rwkvrt::Session target(model());
  target = std::move(moved);
  EXPECT_EQ(moved.get(), nullptr);  // NOLINT(bugprone-use-after-move)
  EXPECT_NE(target.get(), nullptr);
}

TEST_F(CppWrapper, BatchMatchesSessionByItself) {
  rwkvrt::Session a = greedy_session(), b = greedy_session();
  a.prompt(std::string("In the beginning"));
  b.prompt(std::string("And God said"));
  rwkvrt::Session a_alone = a.fork(), b_alone = b.fork();

  rwkvrt::Batch batch(model(), 4);
  const std::vector<float> rows = batch.step({&a, &b}, {'x', 'y'});
  ASSERT_EQ(rows.size(), 2u * 256u);
  const std::vector<float> la = a_alone.step('x'), lb = b_alone.step('y');
  for (size_t i = 0; i < 256; ++i) {
    EXPECT_NEAR(rows[i], la[i], 1e-3f);
    EXPECT_NEAR(rows[256 + i], lb[i], 1e-3f);
  }
  EXPECT_EQ(status_thrown_by([&] { batch.step({&a, &b}, {'x'}); }), RWKVRT_ERR_INVALID_ARGUMENT);

  // Batched generation: each session gets what it would get by itself.
  const std::string expect_a = a_alone.generate(limit(12)).text;
  const std::string expect_b = b_alone.generate(limit(12)).text;
  a.generate_begin(limit(12));
  b.generate_begin(limit(12));
  std::string text_a, text_b;
  std::vector<rwkvrt::Session*> active = {&a, &b};
  while (!active.empty()) {
    const std::vector<rwkvrt::Piece> pieces = batch.generate_next(active);
    std::vector<rwkvrt::Session*> still;
    for (size_t i = 0; i < active.size(); ++i) {
      (active[i] == &a ? text_a : text_b) += pieces[i].text;
      if (!pieces[i].finished()) still.push_back(active[i]);
    }
    active = still;
  }
  EXPECT_EQ(text_a, expect_a);
  EXPECT_EQ(text_b, expect_b);
}

TEST_F(CppWrapper, PrefixCacheIsSharedAndOutlivesItsHandle) {
  const std::string prompt = "And it came to pass in those days, that there went out a decree";
  rwkvrt::Session first = greedy_session(), second = greedy_session();
  {
    rwkvrt::PrefixCache cache(model(), 16u << 20);
    first.set_prefix_cache(cache);
    second.set_prefix_cache(cache);
  }  // the sessions keep the cache alive
  first.prompt(prompt);
  EXPECT_EQ(first.prefix_cache_hit(), 0u);
  second.prompt(prompt + " from Caesar");
  EXPECT_GT(second.prefix_cache_hit(), 0u);

  rwkvrt::Session uncached = greedy_session();
  uncached.prompt(prompt + " from Caesar");
  EXPECT_EQ(second.generate(limit(16)).text, uncached.generate(limit(16)).text);
  second.detach_prefix_cache();
  second.prompt(prompt);
  EXPECT_EQ(second.prefix_cache_hit(), 0u);
}

}  // namespace
