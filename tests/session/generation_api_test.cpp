// Streaming generation through the C ABI on the project's default model (byte-level RWKV-7):
// greedy output against a hand-written greedy loop, seeds, limits, stop strings, cancellation,
// state round trips, fork, batches, the prefix cache, state-tuning files and tokenizers.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "loaders/checkpoint_readers.h"
#include "loaders/safetensors_writer.h"
#include "model/model_config.h"
#include "rwkvrt/rwkvrt.h"
#include "support/golden.h"
#include "support/test_data.h"

namespace {

#define ASSERT_OK(call) ASSERT_EQ((call), RWKVRT_OK) << rwkvrt_last_error()

const std::string& default_model_path() {
  static const std::string p =
      std::string(RWKVRT_SOURCE_DIR) + "/models/default/rwkv7-kjv-byte.pth";
  return p;
}

struct Fixture : ::testing::Test {
  static rwkvrt_model* model;
  static void SetUpTestSuite() {
    rwkvrt_model_params p = rwkvrt_model_params_default();
    p.backend = "cpu";
    p.n_threads = 2;
    ASSERT_OK(rwkvrt_model_load(default_model_path().c_str(), &p, &model));
  }
  static void TearDownTestSuite() {
    rwkvrt_model_free(model);
    model = nullptr;
  }
  rwkvrt_session* session() {
    rwkvrt_session* s = nullptr;
    EXPECT_EQ(rwkvrt_session_create(model, &s), RWKVRT_OK) << rwkvrt_last_error();
    owned.push_back(s);
    return s;
  }
  void TearDown() override {
    for (rwkvrt_session* s : owned) rwkvrt_session_free(s);
  }
  std::vector<rwkvrt_session*> owned;
};
rwkvrt_model* Fixture::model = nullptr;

struct Generation {
  std::string text;
  std::vector<int32_t> tokens;
  rwkvrt_finish_reason finish = RWKVRT_FINISH_NONE;
};

Generation pull(rwkvrt_session* s, const rwkvrt_generate_params* params) {
  Generation g;
  EXPECT_EQ(rwkvrt_session_generate_begin(s, params), RWKVRT_OK) << rwkvrt_last_error();
  rwkvrt_generate_piece piece{};
  do {
    if (rwkvrt_session_generate_next(s, &piece) != RWKVRT_OK) {
      ADD_FAILURE() << rwkvrt_last_error();
      break;
    }
    g.text.append(piece.text, piece.text_len);
    if (piece.token >= 0) g.tokens.push_back(piece.token);
  } while (piece.finish == RWKVRT_FINISH_NONE);
  g.finish = piece.finish;
  return g;
}

rwkvrt_generate_params limit(uint32_t max_tokens, bool eos = true) {
  rwkvrt_generate_params p = rwkvrt_generate_params_default();
  p.max_tokens = max_tokens;
  p.stop_at_eos = eos ? 1 : 0;
  return p;
}

void set_seeded(rwkvrt_session* s, uint64_t seed, float temperature = 1.0f) {
  rwkvrt_sampling_params p = rwkvrt_sampling_params_default();
  p.seed = seed;
  p.temperature = temperature;
  ASSERT_OK(rwkvrt_session_set_sampling(s, &p));
}

void set_greedy(rwkvrt_session* s) {
  set_seeded(s, 0, 0.0f);
}

std::vector<float> state_of(rwkvrt_session* s, size_t n) {
  std::vector<float> v(n);
  EXPECT_EQ(rwkvrt_session_export_state(s, v.data(), n), RWKVRT_OK);
  return v;
}

size_t state_floats(rwkvrt_model* m) {
  rwkvrt_model_info info{};
  info.struct_size = sizeof(info);
  EXPECT_EQ(rwkvrt_model_get_info(m, &info), RWKVRT_OK);
  return info.state_floats;
}

bool valid_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = s[i];
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 2) return false;
    i += n;
  }
  return true;
}

const char kPrompt[] = "In the beginning";

using GenerationApi = Fixture;

TEST_F(GenerationApi, GreedyGenerationEqualsAHandWrittenGreedyLoop) {
  rwkvrt_session* s = session();
  set_greedy(s);
  ASSERT_OK(rwkvrt_session_prompt(s, kPrompt, strlen(kPrompt)));
  rwkvrt_generate_params params = limit(40, false);
  const Generation g = pull(s, &params);
  EXPECT_EQ(g.finish, RWKVRT_FINISH_LENGTH);
  ASSERT_EQ(g.tokens.size(), 40u);

  // The same thing from the token-level calls: feed, argmax, repeat.
  rwkvrt_session* r = session();
  const size_t V = 256;
  std::vector<float> logits(V);
  std::vector<int32_t> ids(kPrompt, kPrompt + strlen(kPrompt));
  ASSERT_OK(rwkvrt_session_feed(r, ids.data(), ids.size(), RWKVRT_LOGITS_LAST, logits.data(), V));
  std::string expected;
  for (int i = 0; i < 40; ++i) {
    const int32_t t = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
    EXPECT_EQ(t, g.tokens[i]) << "at token " << i;
    expected += char(t);
    ASSERT_OK(rwkvrt_session_step(r, t, logits.data(), V));
  }
  EXPECT_EQ(g.text, expected);
  // The session remembers the logits after its last token, as the hand-written loop has them.
  std::vector<float> remembered(V);
  ASSERT_OK(rwkvrt_session_get_logits(s, remembered.data(), V));
  EXPECT_LT(rwkvrt::test::max_abs_diff(remembered, logits), 1e-5);
  EXPECT_EQ(rwkvrt_session_get_logits(s, remembered.data(), V - 1), RWKVRT_ERR_BUFFER_TOO_SMALL);
  // Every generated token was fed, including the last: the states agree.
  const size_t n = state_floats(model);
  EXPECT_LT(rwkvrt::test::max_abs_diff(state_of(s, n), state_of(r, n)), 1e-5);
}

TEST_F(GenerationApi, SeedMakesSamplingReproducibleAndDifferentSeedsDiffer) {
  rwkvrt_generate_params params = limit(48, false);
  std::vector<std::string> texts;
  for (uint64_t seed : {7u, 7u, 8u}) {
    rwkvrt_session* s = session();
    set_seeded(s, seed);
    ASSERT_OK(rwkvrt_session_prompt(s, kPrompt, strlen(kPrompt)));
    texts.push_back(pull(s, &params).text);
  }
  EXPECT_EQ(texts[0], texts[1]);
  EXPECT_NE(texts[0], texts[2]);
}

TEST_F(GenerationApi, EveryPieceIsValidUtf8EvenFromRandomBytes) {
  rwkvrt_session* s = session();
  set_seeded(s, 3, 4.0f);  // hot sampling: arbitrary bytes, many invalid sequences
  ASSERT_OK(rwkvrt_session_prompt(s, kPrompt, strlen(kPrompt)));
  rwkvrt_generate_params params = limit(300, false);
  ASSERT_OK(rwkvrt_session_generate_begin(s, &params));
  rwkvrt_generate_piece piece{};
  int non_ascii = 0;
  do {
    ASSERT_OK(rwkvrt_session_generate_next(s, &piece));
    const std::string text(piece.text, piece.text_len);
    EXPECT_TRUE(valid_utf8(text));
    if (piece.token >= 0x80) ++non_ascii;
  } while (piece.finish == RWKVRT_FINISH_NONE);
  EXPECT_GT(non_ascii, 0) << "the test did not exercise non-ASCII bytes";
}

TEST_F(GenerationApi, StopStringCutsTheTextEvenAcrossTokens) {
  rwkvrt_session* s = session();
  set_greedy(s);
  ASSERT_OK(rwkvrt_session_prompt(s, kPrompt, strlen(kPrompt)));
  rwkvrt_generate_params params = limit(60, false);
  const std::string full = pull(s, &params).text;
  ASSERT_GT(full.size(), 30u);
  // A stop string of several bytes (so several byte tokens) from the middle of the output.
  const std::string stop = full.substr(20, 4);
  const size_t at = full.find(stop);

  rwkvrt_session* t = session();
  set_greedy(t);
  ASSERT_OK(rwkvrt_session_prompt(t, kPrompt, strlen(kPrompt)));
  const char* stops[] = {"never appears in the text", stop.c_str()};
  params.stop = stops;
  params.n_stop = 2;
  const Generation g = pull(t, &params);
  EXPECT_EQ(g.finish, RWKVRT_FINISH_STOP);
  EXPECT_EQ(g.text, full.substr(0, at));
  EXPECT_EQ(g.tokens.size(), at + stop.size());  // byte tokens: the stop string's last byte ends it
}

TEST_F(GenerationApi, CancelFromAnotherThreadStopsWithinAStep) {
  rwkvrt_session* s = session();
  set_seeded(s, 1);
  ASSERT_OK(rwkvrt_session_prompt(s, kPrompt, strlen(kPrompt)));
  rwkvrt_generate_params params = limit(0, false);  // no limit: only the cancel ends it
  std::atomic<int> pieces{0};
  std::thread canceller([&] {
    while (pieces.load() < 5) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    EXPECT_EQ(rwkvrt_session_cancel(s), RWKVRT_OK);
  });
  rwkvrt_finish_reason finish = RWKVRT_FINISH_NONE;
  auto count = [](void* user, const rwkvrt_generate_piece*) {
    static_cast<std::atomic<int>*>(user)->fetch_add(1);
    return 0;
  };
  ASSERT_OK(rwkvrt_session_generate(s, &params, count, &pieces, &finish));
  canceller.join();
  EXPECT_EQ(finish, RWKVRT_FINISH_CANCELLED);
  EXPECT_LT(pieces.load(), 1000);
}

TEST_F(GenerationApi, CallbackStopFeedsExactlyTheReportedTokens) {
  rwkvrt_session* s = session();
  set_seeded(s, 5);
  ASSERT_OK(rwkvrt_session_prompt(s, kPrompt, strlen(kPrompt)));
  struct Seen {
    std::vector<int32_t> tokens;
  } seen;
  auto stop_after_five = [](void* user, const rwkvrt_generate_piece* p) {
    auto* seen_so_far = static_cast<Seen*>(user);
    if (p->token >= 0) seen_so_far->tokens.push_back(p->token);
    return seen_so_far->tokens.size() >= 5 ? 1 : 0;
  };
  rwkvrt_finish_reason finish{};
  rwkvrt_generate_params params = limit(100, false);
  ASSERT_OK(rwkvrt_session_generate(s, &params, stop_after_five, &seen, &finish));
  EXPECT_EQ(finish, RWKVRT_FINISH_CANCELLED);
  ASSERT_EQ(seen.tokens.size(), 5u);

  rwkvrt_session* r = session();
  std::vector<int32_t> ids(kPrompt, kPrompt + strlen(kPrompt));
  ids.insert(ids.end(), seen.tokens.begin(), seen.tokens.end());
  ASSERT_OK(rwkvrt_session_feed(r, ids.data(), ids.size(), RWKVRT_LOGITS_NONE, nullptr, 0));
  const size_t n = state_floats(model);
  EXPECT_LT(rwkvrt::test::max_abs_diff(state_of(s, n), state_of(r, n)), 1e-5);
}

TEST_F(GenerationApi, SavedStateResumesExactly) {
  // A then B in one session, versus A, save, load into a fresh session, then B.
  const char turn_a[] = "And God said, Let there be light:";
  const char turn_b[] = " and there was";
  rwkvrt_generate_params params = limit(24, false);

  rwkvrt_session* whole = session();
  set_greedy(whole);
  ASSERT_OK(rwkvrt_session_prompt(whole, turn_a, strlen(turn_a)));
  const std::string first = pull(whole, &params).text;
  size_t size = 0;
  ASSERT_OK(rwkvrt_session_save_state(whole, nullptr, 0, &size));
  std::vector<uint8_t> blob(size);
  ASSERT_OK(rwkvrt_session_save_state(whole, blob.data(), blob.size(), &size));
  ASSERT_OK(rwkvrt_session_prompt(whole, turn_b, strlen(turn_b)));
  const std::string expected = pull(whole, &params).text;

  rwkvrt_session* resumed = session();
  set_greedy(resumed);
  ASSERT_OK(rwkvrt_session_load_state(resumed, blob.data(), blob.size()));
  // A loaded state has no logits: generating before the next prompt is refused.
  EXPECT_EQ(rwkvrt_session_generate_begin(resumed, &params), RWKVRT_ERR_INVALID_ARGUMENT);
  float one_logit[256];
  EXPECT_EQ(rwkvrt_session_get_logits(resumed, one_logit, 256), RWKVRT_ERR_INVALID_ARGUMENT);
  ASSERT_OK(rwkvrt_session_prompt(resumed, turn_b, strlen(turn_b)));
  EXPECT_EQ(pull(resumed, &params).text, expected);
  EXPECT_FALSE(first.empty());

  // A corrupt copy is refused and leaves the state as it was.
  const size_t n = state_floats(model);
  const std::vector<float> before = state_of(resumed, n);
  blob[blob.size() / 2] ^= 0x40;
  EXPECT_EQ(rwkvrt_session_load_state(resumed, blob.data(), blob.size()), RWKVRT_ERR_CORRUPT);
  EXPECT_EQ(rwkvrt::test::max_abs_diff(before, state_of(resumed, n)), 0.0);
}

TEST_F(GenerationApi, ForkedSessionsEvolveIndependently) {
  rwkvrt_session* s = session();
  set_seeded(s, 11);
  ASSERT_OK(rwkvrt_session_prompt(s, kPrompt, strlen(kPrompt)));
  const size_t n = state_floats(model);
  const std::vector<float> at_fork = state_of(s, n);

  rwkvrt_session* f = nullptr;
  ASSERT_OK(rwkvrt_session_fork(s, &f));
  owned.push_back(f);
  rwkvrt_generate_params params = limit(32, false);
  const std::string from_fork = pull(f, &params).text;
  // The original did not move while the fork generated.
  EXPECT_EQ(rwkvrt::test::max_abs_diff(at_fork, state_of(s, n)), 0.0);
  // Same state, logits and sampler (random stream included): the same continuation.
  EXPECT_EQ(pull(s, &params).text, from_fork);
}

TEST_F(GenerationApi, BatchedGenerationEqualsGeneratingAlone) {
  const std::vector<std::string> prompts = {"In the beginning", "And Moses said", "Blessed are the",
                                            "The LORD is my"};
  rwkvrt_generate_params params = limit(20, false);
  std::vector<std::string> alone;
  for (size_t i = 0; i < prompts.size(); ++i) {
    rwkvrt_session* s = session();
    set_seeded(s, 100 + i);
    ASSERT_OK(rwkvrt_session_prompt(s, prompts[i].data(), prompts[i].size()));
    alone.push_back(pull(s, &params).text);
  }

  rwkvrt_batch* batch = nullptr;
  ASSERT_OK(rwkvrt_batch_create(model, 8, &batch));
  std::vector<rwkvrt_session*> active;
  std::vector<std::string> batched(prompts.size());
  std::vector<size_t> index;
  for (size_t i = 0; i < prompts.size(); ++i) {
    rwkvrt_session* s = session();
    set_seeded(s, 100 + i);
    ASSERT_OK(rwkvrt_session_prompt(s, prompts[i].data(), prompts[i].size()));
    // Staggered lengths, so sessions leave the batch at different steps.
    rwkvrt_generate_params p = limit(20, false);
    ASSERT_OK(rwkvrt_session_generate_begin(s, &p));
    active.push_back(s);
    index.push_back(i);
  }
  std::vector<rwkvrt_generate_piece> pieces(prompts.size());
  while (!active.empty()) {
    ASSERT_OK(rwkvrt_batch_generate_next(batch, active.data(), active.size(), pieces.data()));
    for (size_t k = active.size(); k-- > 0;) {
      batched[index[k]].append(pieces[k].text, pieces[k].text_len);
      if (pieces[k].finish != RWKVRT_FINISH_NONE) {
        active.erase(active.begin() + k);
        index.erase(index.begin() + k);
      }
    }
  }
  rwkvrt_batch_free(batch);
  EXPECT_EQ(batched, alone);
}

TEST_F(GenerationApi, BatchRefusesSessionsNotGeneratingWithoutSideEffects) {
  rwkvrt_session* a = session();
  rwkvrt_session* b = session();
  set_seeded(a, 1);
  ASSERT_OK(rwkvrt_session_prompt(a, kPrompt, strlen(kPrompt)));
  ASSERT_OK(rwkvrt_session_prompt(b, kPrompt, strlen(kPrompt)));
  rwkvrt_generate_params params = limit(4, false);
  ASSERT_OK(rwkvrt_session_generate_begin(a, &params));
  rwkvrt_batch* batch = nullptr;
  ASSERT_OK(rwkvrt_batch_create(model, 4, &batch));
  rwkvrt_session* both[] = {a, b};
  rwkvrt_generate_piece pieces[2];
  EXPECT_EQ(rwkvrt_batch_generate_next(batch, both, 2, pieces), RWKVRT_ERR_INVALID_ARGUMENT);
  // a's generation is intact: it still produces all of its 4 tokens.
  int n = 0;
  rwkvrt_generate_piece piece{};
  do {
    ASSERT_OK(rwkvrt_session_generate_next(a, &piece));
    ++n;
  } while (piece.finish == RWKVRT_FINISH_NONE);
  EXPECT_EQ(n, 4);
  rwkvrt_batch_free(batch);
}

TEST_F(GenerationApi, PrefixCacheReusesTheSharedPromptAndChangesNothing) {
  rwkvrt_prefix_cache* cache = nullptr;
  ASSERT_OK(rwkvrt_prefix_cache_create(model, 64u << 20, &cache));
  const std::string system = "The book of the generations of Jesus Christ, the son of David.";
  const std::string question = " And Abraham begat";

  rwkvrt_session* first = session();
  ASSERT_OK(rwkvrt_session_set_prefix_cache(first, cache));
  ASSERT_OK(rwkvrt_session_prompt(first, system.data(), system.size()));
  size_t hit = 99;
  ASSERT_OK(rwkvrt_session_prefix_cache_hit(first, &hit));
  EXPECT_EQ(hit, 0u);

  rwkvrt_session* second = session();
  ASSERT_OK(rwkvrt_session_set_prefix_cache(second, cache));
  const std::string full = system + question;
  ASSERT_OK(rwkvrt_session_prompt(second, full.data(), full.size()));
  ASSERT_OK(rwkvrt_session_prefix_cache_hit(second, &hit));
  EXPECT_EQ(hit, system.size());  // byte tokens: one per byte

  rwkvrt_session* plain = session();
  ASSERT_OK(rwkvrt_session_prompt(plain, full.data(), full.size()));
  const size_t n = state_floats(model);
  EXPECT_LT(rwkvrt::test::max_abs_diff(state_of(second, n), state_of(plain, n)), 1e-5);
  set_greedy(second);
  set_greedy(plain);
  rwkvrt_generate_params params = limit(16, false);
  EXPECT_EQ(pull(second, &params).text, pull(plain, &params).text);

  for (rwkvrt_session* s : owned) rwkvrt_session_set_prefix_cache(s, nullptr);
  rwkvrt_prefix_cache_free(cache);
}

TEST_F(GenerationApi, MisuseGivesClearErrors) {
  rwkvrt_session* s = session();
  rwkvrt_generate_piece piece{};
  EXPECT_EQ(rwkvrt_session_generate_next(s, &piece), RWKVRT_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(rwkvrt_session_generate_begin(s, nullptr), RWKVRT_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(rwkvrt_last_error()).find("prompt"), std::string::npos);
  EXPECT_EQ(rwkvrt_session_prompt(s, "", 0), RWKVRT_ERR_INVALID_ARGUMENT);
  ASSERT_OK(rwkvrt_session_prompt(s, kPrompt, strlen(kPrompt)));
  rwkvrt_generate_params params = limit(4);
  const char* empty_stop[] = {""};
  params.stop = empty_stop;
  params.n_stop = 1;
  EXPECT_EQ(rwkvrt_session_generate_begin(s, &params), RWKVRT_ERR_INVALID_ARGUMENT);
  rwkvrt_sampling_params sp = rwkvrt_sampling_params_default();
  sp.top_p = 2.0f;
  EXPECT_EQ(rwkvrt_session_set_sampling(s, &sp), RWKVRT_ERR_INVALID_ARGUMENT);
  const int32_t banned = 300;  // outside the byte vocabulary
  sp = rwkvrt_sampling_params_default();
  sp.banned = &banned;
  sp.n_banned = 1;
  EXPECT_EQ(rwkvrt_session_set_sampling(s, &sp), RWKVRT_ERR_INVALID_ARGUMENT);
}

TEST_F(GenerationApi, ModelTokenizerIsTheByteTokenizer) {
  const rwkvrt_tokenizer* t = nullptr;
  ASSERT_OK(rwkvrt_model_get_tokenizer(model, &t));
  rwkvrt_tokenizer_info info{};
  info.struct_size = sizeof(info);
  ASSERT_OK(rwkvrt_tokenizer_get_info(t, &info));
  EXPECT_STREQ(info.kind, "byte");
  EXPECT_EQ(info.vocab_size, 256u);
}

TEST(TokenizerApi, WorldVocabularyRoundTripAndBufferProtocol) {
  const std::string vocab = rwkvrt::test::testdata_path("tokenizer/rwkv_vocab_v20230424.txt");
  rwkvrt_tokenizer* t = nullptr;
  ASSERT_OK(rwkvrt_tokenizer_load(vocab.c_str(), &t));
  const std::string text = "Hello, world! 你好";
  size_t count = 0;
  EXPECT_EQ(rwkvrt_tokenizer_encode(t, text.data(), text.size(), nullptr, 0, &count),
            RWKVRT_ERR_BUFFER_TOO_SMALL);
  ASSERT_GT(count, 0u);
  std::vector<int32_t> ids(count);
  ASSERT_OK(rwkvrt_tokenizer_encode(t, text.data(), text.size(), ids.data(), ids.size(), &count));
  EXPECT_EQ(count, ids.size());
  size_t size = 0;
  EXPECT_EQ(rwkvrt_tokenizer_decode(t, ids.data(), ids.size(), nullptr, 0, &size),
            RWKVRT_ERR_BUFFER_TOO_SMALL);
  EXPECT_EQ(size, text.size());
  std::string back(size, '\0');
  ASSERT_OK(rwkvrt_tokenizer_decode(t, ids.data(), ids.size(), back.data(), back.size(), &size));
  EXPECT_EQ(back, text);
  const int32_t bad = 1 << 20;
  EXPECT_EQ(rwkvrt_tokenizer_decode(t, &bad, 1, back.data(), back.size(), &size),
            RWKVRT_ERR_INVALID_ARGUMENT);
  rwkvrt_tokenizer_free(t);
}

TEST(TokenizerApi, MissingTokenizerIsReportedWithWhatToDo) {
  // The v6 golden model has a 65536 vocabulary and no World vocabulary beside it.
  rwkvrt_model* m = nullptr;
  rwkvrt_model_params p = rwkvrt_model_params_default();
  p.backend = "cpu";
  const std::string path = rwkvrt::test::testdata_path("golden/v6_L2_C128.pth");
  ASSERT_OK(rwkvrt_model_load(path.c_str(), &p, &m));
  rwkvrt_model_info info{};
  info.struct_size = sizeof(info);
  ASSERT_OK(rwkvrt_model_get_info(m, &info));
  const rwkvrt_tokenizer* t = nullptr;
  if (info.n_vocab != 256) {
    EXPECT_EQ(rwkvrt_model_get_tokenizer(m, &t), RWKVRT_ERR_UNSUPPORTED);
    EXPECT_NE(std::string(rwkvrt_last_error()).find("tokenizer_path"), std::string::npos);
    rwkvrt_session* s = nullptr;
    ASSERT_OK(rwkvrt_session_create(m, &s));
    EXPECT_EQ(rwkvrt_session_prompt(s, "hi", 2), RWKVRT_ERR_UNSUPPORTED);
    rwkvrt_session_free(s);
  }
  rwkvrt_model_free(m);
}

TEST(StateTuning, TimeStateFileBecomesTheSessionsInitialState) {
  using namespace rwkvrt;
  const std::string golden = test::testdata_path("golden/v6_L2_C128.pth");
  const TensorSet base = read_checkpoint(golden);
  const ModelConfig cfg = detect_config(base);
  const uint64_t H = cfg.n_head, N = cfg.head_size;

  // A state-tuning file: blocks.<i>.att.time_state (H, N, N) as [h][value][key], random values.
  TensorSet tuned;
  std::vector<std::vector<float>> values(cfg.n_layer, std::vector<float>(H * N * N));
  uint32_t x = 12345;
  for (uint32_t l = 0; l < cfg.n_layer; ++l) {
    for (float& v : values[l]) {
      x = x * 1664525u + 1013904223u;
      v = float(int32_t(x >> 8) % 2001 - 1000) / 1000.0f;
    }
    Tensor t;
    t.name = "blocks." + std::to_string(l) + ".att.time_state";
    t.dtype = DType::F32;
    t.shape = {int64_t(H), int64_t(N), int64_t(N)};
    t.data = reinterpret_cast<const uint8_t*>(values[l].data());
    t.nbytes = values[l].size() * sizeof(float);
    tuned.add(t);
  }
  const std::string file = test::scratch_dir() + "/v6_state_tuning.safetensors";
  write_safetensors(file, tuned, {}, {});

  rwkvrt_model* m = nullptr;
  rwkvrt_model_params p = rwkvrt_model_params_default();
  p.backend = "cpu";
  ASSERT_OK(rwkvrt_model_load(golden.c_str(), &p, &m));
  rwkvrt_session* s = nullptr;
  ASSERT_OK(rwkvrt_session_create(m, &s));
  ASSERT_OK(rwkvrt_session_load_initial_state(s, file.c_str()));

  // Expected canonical state, built independently: shifts zero, wkv = transpose per head.
  size_t count = 0;
  ASSERT_OK(rwkvrt_model_state_tensor_count(m, &count));
  const size_t n = state_floats(m);
  std::vector<float> expected(n, 0.0f);
  for (size_t i = 0; i < count; ++i) {
    rwkvrt_state_tensor_info ti{};
    ti.struct_size = sizeof(ti);
    ASSERT_OK(rwkvrt_model_state_tensor_info(m, i, &ti));
    const std::string name = ti.name;
    if (name.find(".att.wkv") == std::string::npos) continue;
    const int layer = std::stoi(name.substr(7));
    for (uint64_t h = 0; h < H; ++h)
      for (uint64_t k = 0; k < N; ++k)
        for (uint64_t v = 0; v < N; ++v)
          expected[ti.offset + h * N * N + k * N + v] = values[layer][h * N * N + v * N + k];
  }
  EXPECT_EQ(test::max_abs_diff(state_of(s, n), expected), 0.0);

  // reset() returns to it, after the state moved.
  const int32_t tok = 5;
  ASSERT_OK(rwkvrt_session_step(s, tok, nullptr, 0));
  EXPECT_GT(test::max_abs_diff(state_of(s, n), expected), 0.0);
  ASSERT_OK(rwkvrt_session_reset(s));
  EXPECT_EQ(test::max_abs_diff(state_of(s, n), expected), 0.0);

  // A state file of another shape is refused.
  const std::string v7 = test::testdata_path("golden/v7_L2_C128.pth");
  EXPECT_EQ(rwkvrt_session_load_initial_state(s, v7.c_str()), RWKVRT_ERR_FORMAT);
  rwkvrt_session_free(s);
  rwkvrt_model_free(m);
}

}  // namespace
