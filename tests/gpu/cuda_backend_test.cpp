// CUDA-specific tests of the CUDA backend plugin (backends/cuda).  The cross-backend op test,
// the golden vectors and the session tests already cover CUDA whenever it is usable; these add
// what only a GPU backend has: graph capture against eager execution, the tensor-core matmul
// paths' error bounds, batches of up to 1024 sequences with scattered states, T = 4096 prefill
// recurrences, and state moving between CUDA and CPU.
//
// Without a usable CUDA device every GPU case is skipped with the registry's reason; the loader
// case runs everywhere: on a machine without a GPU the plugin must still load and say why it
// cannot run.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "core/backend_registry.h"
#include "core/device.h"
#include "core/error.h"
#include "dtype_convert.h"
#include "model/graph.h"
#include "model/model.h"
#include "model/synthetic_model.h"
#include "reference_ops.h"
#include "session/session.h"
#include "support/golden.h"
#include "support/test_data.h"

namespace rwkvrt {
namespace {

using Floats = std::vector<float>;

// ---- helpers -----------------------------------------------------------------------------------

// The registry's entry for the CUDA plugin, if the plugin file was found.
bool find_cuda(BackendEntry* out) {
  BackendRegistry& r = BackendRegistry::instance();
  for (size_t i = 0; i < r.count(); ++i) {
    BackendEntry e = r.entry(i);
    if (e.name == "cuda") {
      *out = e;
      return true;
    }
  }
  return false;
}

bool cuda_plugin_built() {
  return std::filesystem::exists(std::string(RWKVRT_BUILD_LIB_DIR) + "/librwkvrt-backend-cuda.so");
}

class Rng {
 public:
  explicit Rng(uint64_t seed) : g_(seed) {}
  Floats normal(uint64_t n, float mean = 0.0f, float sd = 1.0f) {
    std::normal_distribution<float> d(mean, sd);
    Floats v(n);
    for (float& x : v) x = d(g_);
    return v;
  }
  Floats uniform(uint64_t n, float lo, float hi) {
    std::uniform_real_distribution<float> d(lo, hi);
    Floats v(n);
    for (float& x : v) x = d(g_);
    return v;
  }
  std::mt19937_64& engine() { return g_; }

 private:
  std::mt19937_64 g_;
};

struct Error2 {
  double rel_l2 = 0.0;   // ‖got − want‖₂ / ‖want‖₂
  double max_rel = 0.0;  // max |got − want| / max |want|
  bool finite = true;
};

Error2 compare(const Floats& got, const Floats& want) {
  Error2 e;
  double d2 = 0.0, w2 = 0.0, dmax = 0.0, wmax = 0.0;
  for (size_t i = 0; i < want.size(); ++i) {
    if (!std::isfinite(got[i])) e.finite = false;
    const double d = std::fabs(double(got[i]) - double(want[i]));
    d2 += d * d;
    w2 += double(want[i]) * want[i];
    dmax = std::max(dmax, d);
    wmax = std::max(wmax, std::fabs(double(want[i])));
  }
  e.rel_l2 = w2 > 0 ? std::sqrt(d2 / w2) : std::sqrt(d2);
  e.max_rel = wmax > 0 ? dmax / wmax : dmax;
  return e;
}

// Skips the test (with the registry's reason) unless the CUDA backend can run here.
class CudaTest : public ::testing::Test {
 public:
  void SetUp() override {
    if (!find_cuda(&entry_)) {
      GTEST_SKIP() << "no CUDA backend plugin found (not built, or RWKVRT_BACKEND_PATH unset)";
    }
    if (!entry_.usable()) {
      GTEST_SKIP() << "CUDA backend unavailable: " << entry_.unavailable_reason;
    }
    device_ = std::make_shared<Device>(entry_, 0, 0);
    stream_ = std::make_unique<Stream>(device_);
  }

  DeviceBuffer upload(const void* src, uint64_t bytes) {
    DeviceBuffer b(device_, bytes);
    stream_->upload(b.get(), src, bytes);
    return b;
  }
  DeviceBuffer upload(const Floats& v) { return upload(v.data(), v.size() * sizeof(float)); }
  Floats download(const void* p, uint64_t n) {
    Floats v(n);
    stream_->download(v.data(), p, n * sizeof(float));
    return v;
  }

  BackendEntry entry_;
  std::shared_ptr<Device> device_;
  std::unique_ptr<Stream> stream_;
};

// ---- the loader --------------------------------------------------------------------------------

TEST(CudaPlugin, LoadsEverywhereAndSaysWhetherItCanRun) {
  if (!cuda_plugin_built()) GTEST_SKIP() << "the CUDA plugin is not part of this build";
  BackendEntry e;
  ASSERT_TRUE(find_cuda(&e)) << "librwkvrt-backend-cuda.so is built but the registry did not "
                                "list it (RWKVRT_BACKEND_PATH?)";
  ASSERT_NE(e.api, nullptr) << "the plugin did not load or negotiate: " << e.unavailable_reason;
  if (e.usable()) {
    EXPECT_GT(e.score, 10.0f) << "a usable GPU must outrank the CPU backend";
    EXPECT_GE(e.device_count, 1);
    std::printf("CUDA backend usable: %s, %d device(s), first: %s\n", e.description.c_str(),
                e.device_count, e.device_names.empty() ? "?" : e.device_names[0].c_str());
  } else {
    EXPECT_FALSE(e.unavailable_reason.empty());
    std::printf("CUDA backend unavailable (expected without a GPU): %s\n",
                e.unavailable_reason.c_str());
  }
}

TEST_F(CudaTest, DescribesTheDeviceWithLargePasses) {
  rwkvrt_bk_device_desc d{};
  d.struct_size = sizeof(d);
  ASSERT_EQ(entry_.api->device_describe(0, &d), RWKVRT_BK_OK);
  EXPECT_GT(d.memory_total, 0u);
  EXPECT_GE(d.preferred_pass_rows, 1024u);
  std::printf("device 0: %s, %.1f GiB, preferred pass %u rows\n", d.name,
              double(d.memory_total) / double(1ull << 30), d.preferred_pass_rows);
}

// Small uploads go through a pinned ring: the caller may overwrite its buffer at once, and more
// uploads than the ring has slots must still all land.
TEST_F(CudaTest, UploadLetsTheHostReuseItsBufferAtOnce) {
  const int n = 100;
  DeviceBuffer dst(device_, n * 64 * sizeof(float));
  Floats host(64);
  for (int i = 0; i < n; ++i) {
    std::fill(host.begin(), host.end(), float(i));
    stream_->upload(dst.f32(uint64_t(i) * 64), host.data(), 64 * sizeof(float));
  }
  const Floats got = download(dst.get(), n * 64);
  for (int i = 0; i < n; ++i) ASSERT_EQ(got[uint64_t(i) * 64 + 17], float(i)) << "upload " << i;
}

// Host buffers come from the plugin's host_alloc (page-locked) and take downloads and uploads
// like any host memory.
TEST_F(CudaTest, HostBuffersArePageLocked) {
  const uint64_t n = (8u << 20) / sizeof(float);
  HostBuffer host(device_, n * sizeof(float));
  EXPECT_TRUE(host.page_locked());
  for (uint64_t i = 0; i < n; ++i) host.f32()[i] = float(i % 1000);
  DeviceBuffer dev(device_, n * sizeof(float));
  stream_->upload(dev.get(), host.f32(), n * sizeof(float));
  HostBuffer back(device_, n * sizeof(float));
  stream_->download(back.f32(), dev.get(), n * sizeof(float));
  EXPECT_EQ(std::memcmp(host.f32(), back.f32(), n * sizeof(float)), 0);
}

// Outputs whose bits differ (the tests of fused or replayed work against the plain ops).
size_t bit_mismatches(const Floats& a, const Floats& b) {
  EXPECT_EQ(a.size(), b.size());
  size_t n = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i)
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0) ++n;
  return n;
}

// ---- graph capture -----------------------------------------------------------------------------

// A whole forward pass (embedding, every layer, head) replayed from a captured graph gives the
// eager pass's logits and states bit for bit: same kernels, same order, same addresses.
TEST_F(CudaTest, GraphReplayEqualsEagerExecution) {
  // Layers, width, vocabulary, head size, matrix type.
  const SyntheticShape shape{2, 256, 512, 64, DType::F16};
  LoadOptions o;
  o.backend = "cuda";
  const auto model = Model::from_tensors(make_synthetic_v7(shape), o);
  const std::shared_ptr<Device>& dev = model->device();
  const uint64_t V = model->config().n_vocab, S = model->state_floats();
  Rng rng(7);
  // (B, T): a decode step (GEMV), a batch on the split tensor-core path, a short prefill batch,
  // a prompt on the chunked WKV (two kernels and their scratch records, captured).
  for (auto [B, T] : {std::pair<uint64_t, uint64_t>{1, 1}, {16, 1}, {2, 20}, {1, 600}}) {
    SCOPED_TRACE("B=" + std::to_string(B) + " T=" + std::to_string(T));
    const uint64_t M = B * T;
    Stream s(dev);
    Workspace ws(dev, model->config(), M);
    std::vector<int32_t> ids(M);
    for (auto& id : ids) id = int32_t(rng.engine()() % V);
    std::vector<Floats> init;
    std::vector<DeviceBuffer> states;
    std::vector<void*> bases;
    for (uint64_t b = 0; b < B; ++b) {
      init.push_back(rng.uniform(S, -0.2f, 0.2f));
      states.emplace_back(dev, S * sizeof(float));
      bases.push_back(states.back().get());
    }
    s.upload(ws.bases(B), bases.data(), B * sizeof(void*));
    s.upload(ws.ids(), ids.data(), M * sizeof(int32_t));
    float* logits = ws.logits(M);
    // Structured bindings are copied explicitly: lambdas may not capture them before C++20.
    auto reset = [&, B = B] {
      for (uint64_t b = 0; b < B; ++b) s.upload(bases[b], init[b].data(), S * sizeof(float));
    };
    auto fetch = [&](const void* p, uint64_t n) {
      Floats v(n);
      s.download(v.data(), p, n * sizeof(float));
      return v;
    };
    auto results = [&, B = B] {
      Floats all = fetch(logits, M * V);
      for (uint64_t b = 0; b < B; ++b) {
        const Floats st = fetch(bases[b], S);
        all.insert(all.end(), st.begin(), st.end());
      }
      return all;
    };
    reset();
    model->forward(s, ws, B, T, ws.ids(), ws.bases(B), LogitRows::All);
    const Floats eager = results();
    s.capture_begin();
    model->forward(s, ws, B, T, ws.ids(), ws.bases(B), LogitRows::All);
    const CapturedGraph g = s.capture_end();
    for (int replay = 0; replay < 2; ++replay) {
      reset();
      s.launch(g);
      const Floats got = results();
      ASSERT_EQ(got.size(), eager.size());
      EXPECT_EQ(bit_mismatches(got, eager), 0u)
          << "replay " << replay << " differs from the eager pass";
    }
  }
}

// ---- matmul error bounds -----------------------------------------------------------------------

struct MatmulRun {
  Error2 err;
  std::string what;
};

// `wf` ([rows][cols]) encoded as f16, bf16 or kept as f32 (dt), and prepared on the device with
// `precision`.  The encoded values need not outlive the call: weight_prepare returns once they
// are uploaded.
PreparedWeight prepared_weight(const std::shared_ptr<Device>& dev, rwkvrt_bk_dtype dt,
                               const char* name, uint64_t rows, uint64_t cols, const Floats& wf,
                               rwkvrt_bk_matmul_precision precision = RWKVRT_BK_MATMUL_EXACT) {
  std::vector<uint16_t> enc(dt == RWKVRT_BK_F32 ? 0 : rows * cols);
  for (uint64_t i = 0; i < enc.size(); ++i)
    enc[i] = dt == RWKVRT_BK_F16 ? f32_to_f16(wf[i]) : f32_to_bf16(wf[i]);
  rwkvrt_bk_weight_desc d{};
  d.struct_size = sizeof(d);
  d.name = name;
  d.rows = rows;
  d.cols = cols;
  d.src_dtype = dt;
  d.src = dt == RWKVRT_BK_F32 ? static_cast<const void*>(wf.data()) : enc.data();
  d.want_dtype = RWKVRT_BK_SAME;
  d.matmul_precision = precision;
  return PreparedWeight(dev, d);
}

// y = x·Wᵀ on the device against a double-precision reference on the stored weight values.
MatmulRun run_matmul(CudaTest&, const std::shared_ptr<Device>& dev, Stream& s, rwkvrt_bk_dtype dt,
                     uint64_t N, uint64_t K, uint64_t M, const Floats& x, const Floats& wf,
                     rwkvrt_bk_matmul_precision precision = RWKVRT_BK_MATMUL_EXACT) {
  Floats stored(N * K);
  for (uint64_t i = 0; i < N * K; ++i)
    stored[i] =
        dt == RWKVRT_BK_F16 ? f16_to_f32(f32_to_f16(wf[i])) : bf16_to_f32(f32_to_bf16(wf[i]));
  const PreparedWeight w = prepared_weight(dev, dt, "w", N, K, wf, precision);
  Floats want(M * N);
  reference::matmul(x.data(), M, K, {stored.data(), N, K}, want.data(), N, false);
  const Floats poison(M * N, std::nanf(""));
  DeviceBuffer dx(dev, M * K * sizeof(float)), dy(dev, M * N * sizeof(float));
  s.upload(dx.get(), x.data(), M * K * sizeof(float));
  s.upload(dy.get(), poison.data(), M * N * sizeof(float));
  s.matmul(dx.f32(), M, w, dy.f32());
  Floats got(M * N);
  s.download(got.data(), dy.get(), M * N * sizeof(float));
  return {compare(got, want),
          std::string(dt == RWKVRT_BK_F16 ? "f16" : "bf16") + " M=" + std::to_string(M)};
}

// Every default path keeps fp32-level accuracy: the GEMV (M ≤ 8), the stacked split GEMM
// (8 < M < 256: 2 f16 or 3 bf16 terms, bound 1e-5 as in the op test) and the two-GEMM split
// (M ≥ 256: 2 terms; f16 within 2^-22, bf16 within 2^-16 per activation, so about 2^-16/√3 ≈
// 9e-6 relative for bf16: bound 3e-5).
TEST_F(CudaTest, HalfWeightMatmulErrorBounds) {
  Rng rng(11);
  const uint64_t N = 384, K = 2048;
  const Floats wf = rng.normal(N * K, 0.0f, 0.05f);
  for (rwkvrt_bk_dtype dt : {RWKVRT_BK_F16, RWKVRT_BK_BF16})
    for (uint64_t M : {1, 5, 8, 9, 64, 255, 256, 512}) {
      const Floats x = rng.normal(M * K);
      const MatmulRun r = run_matmul(*this, device_, *stream_, dt, N, K, M, x, wf);
      const double bound = M >= 256 && dt == RWKVRT_BK_BF16 ? 3e-5 : 1e-5;
      std::printf("matmul %-10s rel L2 %.3g, max rel %.3g\n", r.what.c_str(), r.err.rel_l2,
                  r.err.max_rel);
      RecordProperty("rel_l2_" + r.what, std::to_string(r.err.rel_l2));
      EXPECT_TRUE(r.err.finite) << r.what;
      EXPECT_LE(r.err.rel_l2, bound) << r.what;
      EXPECT_LE(r.err.max_rel, bound) << r.what;
    }
}

// The opt-in fast path (RWKVRT_CUDA_FAST_GEMM_ROWS, read when a context is created) rounds the
// activations to the weight type: relative error of each activation at most u (2^-11 f16, 2^-8
// bf16), about u/√3 on average, so the relative L2 error of y is about 2.8e-4 (f16) and 2.3e-3
// (bf16): bounds 1e-3 and 6e-3.
TEST_F(CudaTest, FastRoundedMatmulErrorBounds) {
  ::setenv("RWKVRT_CUDA_FAST_GEMM_ROWS", "256", 1);
  auto fast_device = std::make_shared<Device>(entry_, 0, 0);
  ::unsetenv("RWKVRT_CUDA_FAST_GEMM_ROWS");
  Stream fast_stream(fast_device);
  Rng rng(13);
  const uint64_t N = 384, K = 2048;
  const Floats wf = rng.normal(N * K, 0.0f, 0.05f);
  for (rwkvrt_bk_dtype dt : {RWKVRT_BK_F16, RWKVRT_BK_BF16})
    for (uint64_t M : {255, 256, 1024}) {
      const Floats x = rng.normal(M * K);
      const MatmulRun r = run_matmul(*this, fast_device, fast_stream, dt, N, K, M, x, wf);
      const bool fast = M >= 256;
      const double bound = !fast ? 1e-5 : dt == RWKVRT_BK_F16 ? 1e-3 : 6e-3;
      std::printf("matmul %-10s rel L2 %.3g, max rel %.3g (%s, fast path enabled)\n",
                  r.what.c_str(), r.err.rel_l2, r.err.max_rel, fast ? "rounded" : "accurate");
      EXPECT_TRUE(r.err.finite) << r.what;
      EXPECT_LE(r.err.rel_l2, bound) << r.what;
      EXPECT_LE(r.err.max_rel, 10 * bound) << r.what;
    }
}

// RWKVRT_BK_MATMUL_ROUNDED_ACTIVATIONS on a weight: every GEMM (M > 8) rounds the activations
// (bounds as above, and visibly larger than the exact path's 1e-5: the option takes effect),
// the GEMV (M ≤ 8) stays exact; an unknown precision is refused at preparation.
TEST_F(CudaTest, RoundedActivationsPerWeight) {
  Rng rng(15);
  const uint64_t N = 384, K = 2048;
  const Floats wf = rng.normal(N * K, 0.0f, 0.05f);
  for (rwkvrt_bk_dtype dt : {RWKVRT_BK_F16, RWKVRT_BK_BF16})
    for (uint64_t M : {1, 8, 9, 100, 1024}) {
      const Floats x = rng.normal(M * K);
      const MatmulRun r = run_matmul(*this, device_, *stream_, dt, N, K, M, x, wf,
                                     RWKVRT_BK_MATMUL_ROUNDED_ACTIVATIONS);
      const bool rounded = M > 8;
      const double bound = !rounded ? 1e-5 : dt == RWKVRT_BK_F16 ? 1e-3 : 6e-3;
      std::printf("matmul %-10s rel L2 %.3g, max rel %.3g (rounded activations asked for)\n",
                  r.what.c_str(), r.err.rel_l2, r.err.max_rel);
      EXPECT_TRUE(r.err.finite) << r.what;
      EXPECT_LE(r.err.rel_l2, bound) << r.what;
      if (rounded) {
        EXPECT_GT(r.err.rel_l2, 2e-5) << r.what << ": activations were not rounded";
      }
    }
  const std::vector<uint16_t> enc(64 * 64, 0);
  rwkvrt_bk_weight_desc d{};
  d.struct_size = sizeof(d);
  d.name = "bad_precision";
  d.rows = 64;
  d.cols = 64;
  d.src_dtype = RWKVRT_BK_F16;
  d.src = enc.data();
  d.want_dtype = RWKVRT_BK_SAME;
  d.matmul_precision = 9;
  try {
    PreparedWeight w(device_, d);
    ADD_FAILURE() << "an unknown matmul precision was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("matmul precision"), std::string::npos) << e.what();
  }
}

// The channel mix applies its ReLU² while the value GEMM's input is rounded (fast precision) or
// split into two terms (exact, M ≥ 256) instead of in an epilogue pass of its own: the result
// must equal matmul_act (ReLU²) followed by matmul bit for bit, f16 and bf16, with and without
// accumulation.
TEST_F(CudaTest, ChannelMixEqualsSeparateOps) {
  struct Case {
    rwkvrt_bk_matmul_precision precision;
    uint64_t M;
  };
  const uint64_t C = 256, F = 1000;
  for (rwkvrt_bk_dtype dt : {RWKVRT_BK_F16, RWKVRT_BK_BF16})
    for (const Case& cs : {Case{RWKVRT_BK_MATMUL_ROUNDED_ACTIVATIONS, 9},
                           Case{RWKVRT_BK_MATMUL_ROUNDED_ACTIVATIONS, 300},
                           Case{RWKVRT_BK_MATMUL_EXACT, 100}, Case{RWKVRT_BK_MATMUL_EXACT, 300}}) {
      const std::string what = std::string(dt == RWKVRT_BK_F16 ? "f16" : "bf16") +
                               (cs.precision == RWKVRT_BK_MATMUL_EXACT ? " exact" : " rounded") +
                               " M=" + std::to_string(cs.M);
      Rng rng(17);
      const uint64_t M = cs.M;
      const PreparedWeight wk = prepared_weight(device_, dt, "ffn.key", F, C,
                                                rng.normal(F * C, 0.0f, 0.1f), cs.precision),
                           wv = prepared_weight(device_, dt, "ffn.value", C, F,
                                                rng.normal(C * F, 0.0f, 0.1f), cs.precision);
      const Floats x = rng.normal(M * C), y_start = rng.normal(M * C);
      DeviceBuffer dx(device_, M * C * 4), hidden(device_, M * F * 4);
      stream_->upload(dx.get(), x.data(), M * C * 4);
      for (bool accumulate : {false, true}) {
        auto output = [&](bool fused) {
          DeviceBuffer y(device_, M * C * 4);
          stream_->upload(y.get(), y_start.data(), M * C * 4);
          if (fused) {
            stream_->channel_mix(dx.f32(), M, wk, wv, hidden.f32(), y.f32(), accumulate);
          } else {
            stream_->matmul_act(dx.f32(), M, wk, hidden.f32(), nullptr, RWKVRT_BK_RELU_SQUARE);
            stream_->matmul(hidden.f32(), M, wv, y.f32(), accumulate);
          }
          return download(y.get(), M * C);
        };
        const Floats separate = output(false), fused = output(true);
        EXPECT_EQ(bit_mismatches(separate, fused), 0u) << what << (accumulate ? " accumulate" : "")
                                                       << ": of " << separate.size() << " outputs";
      }
    }
}

// A group of GEMMs runs its operand preparation (rounding or splitting; an input shared by two
// items prepared once) and its epilogues (or split-product sums) as one launch each: the
// outputs must equal one call per item bit for bit, on every grouped path (rounded; exact split
// stacked for M < 256; exact split as two GEMMs for M ≥ 256), f16 and bf16.
TEST_F(CudaTest, GemmGroupEqualsSeparateCalls) {
  struct Case {
    rwkvrt_bk_matmul_precision precision;
    uint64_t M;
  };
  for (rwkvrt_bk_dtype dt : {RWKVRT_BK_F16, RWKVRT_BK_BF16})
    for (const Case& cs : {Case{RWKVRT_BK_MATMUL_ROUNDED_ACTIVATIONS, 100},
                           Case{RWKVRT_BK_MATMUL_EXACT, 100}, Case{RWKVRT_BK_MATMUL_EXACT, 300}}) {
      const std::string what = std::string(dt == RWKVRT_BK_F16 ? "f16" : "bf16") +
                               (cs.precision == RWKVRT_BK_MATMUL_EXACT ? " exact" : " rounded") +
                               " M=" + std::to_string(cs.M);
      Rng rng(16);
      const uint64_t M = cs.M, K = 512;
      const uint64_t rows[3] = {384, 64, 512};
      std::vector<PreparedWeight> w;
      for (int i = 0; i < 3; ++i)
        w.push_back(prepared_weight(device_, dt, "group", rows[i], K,
                                    rng.normal(rows[i] * K, 0.0f, 0.05f), cs.precision));
      const Floats x0 = rng.normal(M * K), x1 = rng.normal(M * K), bias = rng.normal(rows[1]);
      const Floats y2_start = rng.normal(M * rows[2]);
      DeviceBuffer dx0(device_, M * K * 4), dx1(device_, M * K * 4), db(device_, rows[1] * 4);
      stream_->upload(dx0.get(), x0.data(), M * K * 4);
      stream_->upload(dx1.get(), x1.data(), M * K * 4);
      stream_->upload(db.get(), bias.data(), rows[1] * 4);
      auto outputs = [&](bool grouped) {
        DeviceBuffer y0(device_, M * rows[0] * 4), y1(device_, M * rows[1] * 4),
            y2(device_, M * rows[2] * 4);
        stream_->upload(y2.get(), y2_start.data(), M * rows[2] * 4);
        if (grouped) {
          // Item 3 accumulates into y2; items 1 and 3 share x0.
          std::vector<rwkvrt_bk_matmul_item> items = {
              {{dx0.f32(), M, 0, w[0].get(), y0.f32(), 0, 0}, nullptr, RWKVRT_BK_NO_ACTIVATION},
              {{dx1.f32(), M, 0, w[1].get(), y1.f32(), 0, 0}, db.f32(), RWKVRT_BK_TANH},
              {{dx0.f32(), M, 0, w[2].get(), y2.f32(), 0, 1}, nullptr, RWKVRT_BK_NO_ACTIVATION}};
          device_->check(device_->api().matmul_group(stream_->raw(), items.data(), 3), "group");
        } else {
          stream_->matmul(dx0.f32(), M, w[0], y0.f32());
          stream_->matmul_act(dx1.f32(), M, w[1], y1.f32(), db.f32(), RWKVRT_BK_TANH);
          stream_->matmul(dx0.f32(), M, w[2], y2.f32(), /*accumulate=*/true);
        }
        Floats all = download(y0.get(), M * rows[0]);
        for (const DeviceBuffer* buf : {&y1, &y2}) {
          const Floats part = download(buf->get(), buf->bytes() / 4);
          all.insert(all.end(), part.begin(), part.end());
        }
        return all;
      };
      const Floats separate = outputs(false), grouped = outputs(true);
      ASSERT_EQ(separate.size(), grouped.size()) << what;
      EXPECT_EQ(bit_mismatches(separate, grouped), 0u)
          << what << ": of " << separate.size() << " outputs";
    }
}

// ---- half-precision activations (ABI revision 4) -------------------------------------------

// An activation as the matmul's rounding pass stores it (f16 saturating at ±65504).
uint16_t rounded_bits(rwkvrt_bk_dtype dt, float v) {
  if (dt == RWKVRT_BK_BF16) return f32_to_bf16(v);
  return f32_to_f16(std::isnan(v) ? v : std::min(65504.0f, std::max(-65504.0f, v)));
}

std::vector<uint16_t> rounded(rwkvrt_bk_dtype dt, const Floats& v) {
  std::vector<uint16_t> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = rounded_bits(dt, v[i]);
  return out;
}

size_t half_mismatches(const std::vector<uint16_t>& a, const std::vector<uint16_t>& b) {
  EXPECT_EQ(a.size(), b.size());
  size_t n = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) n += a[i] != b[i];
  return n;
}

// The producers of half activations write exactly what the fp32 op followed by the matmul's
// rounding pass gives: norm_shift_mix_half on the one-kernel paths (decode width, tiles of a
// prompt) and on the three-op fallback (C = 6), with outputs beyond the f16 range (gamma up to
// 1e6: saturated, not infinite) and the shift state updated as by norm_shift_mix;
// v7_output_half leaving y untouched.
TEST_F(CudaTest, HalfActivationProducersEqualRoundedFp32) {
  ASSERT_TRUE(device_->has_half_activations()) << "the CUDA backend offers half activations";
  struct Shape {
    uint64_t B, T, C;
    uint32_t n_out;
  };
  for (rwkvrt_bk_dtype dt : {RWKVRT_BK_F16, RWKVRT_BK_BF16})
    for (const Shape& sh :
         {Shape{3, 11, 256, 6}, Shape{1, 1, 4096, 6}, Shape{4, 1, 512, 1}, Shape{2, 5, 6, 2}}) {
      const std::string what = std::string(dtype_name(DType(dt))) + " B=" + std::to_string(sh.B) +
                               " T=" + std::to_string(sh.T) + " C=" + std::to_string(sh.C);
      Rng rng(31);
      const uint64_t M = sh.B * sh.T, C = sh.C;
      Floats gamma = rng.normal(C), beta = rng.normal(C);
      for (uint64_t c = 0; c < C; c += 5) gamma[c] *= 1e6f;  // beyond ±65504 after the mix
      const Floats x = rng.normal(M * C), mix = rng.uniform(sh.n_out * C, 0.0f, 1.0f),
                   state0 = rng.normal(sh.B * C);
      const DeviceBuffer dx = upload(x), dg = upload(gamma), db = upload(beta), dm = upload(mix);
      auto run = [&](bool half, Floats* state_after) {
        DeviceBuffer state = upload(state0), bases(device_, sh.B * sizeof(void*));
        std::vector<void*> b(sh.B);
        for (uint64_t i = 0; i < sh.B; ++i) b[i] = static_cast<float*>(state.get()) + i * C;
        stream_->upload(bases.get(), b.data(), b.size() * sizeof(void*));
        DeviceBuffer out(device_, sh.n_out * M * C * 4);
        const rwkvrt_bk_norm_shift_mix_args a{
            dx.f32(), sh.B,     sh.T,     C,
            dg.f32(), db.f32(), 1e-5f,    {static_cast<void* const*>(bases.get()), 0},
            sh.n_out, dm.f32(), out.f32()};
        if (half) {
          stream_->norm_shift_mix_half(a, dt);
        } else {
          DeviceBuffer xhat(device_, M * C * 4), prev(device_, M * C * 4);
          stream_->norm_shift_mix(a, xhat.f32(), prev.f32());
        }
        *state_after = download(state.get(), sh.B * C);
        std::vector<uint16_t> h(sh.n_out * M * C);
        if (half) {
          stream_->download(h.data(), out.get(), h.size() * 2);
          return h;
        }
        return rounded(dt, download(out.get(), sh.n_out * M * C));
      };
      Floats state_fp32, state_half;
      const std::vector<uint16_t> want = run(false, &state_fp32), got = run(true, &state_half);
      EXPECT_EQ(half_mismatches(want, got), 0u) << what << ": of " << want.size() << " outputs";
      EXPECT_EQ(bit_mismatches(state_fp32, state_half), 0u) << what << ": shift state";
      if (dt == RWKVRT_BK_F16) {
        const auto saturated = std::count(got.begin(), got.end(), uint16_t(0x7bff)) +
                               std::count(got.begin(), got.end(), uint16_t(0xfbff));
        EXPECT_GT(saturated, 0) << what << ": no output reached the f16 limit";
      }
    }

  const uint64_t M = 37, H = 4, N = 64, C = H * N;
  Rng rng(32);
  const Floats y0 = rng.normal(M * C), r = rng.normal(M * C), kt = rng.normal(M * C),
               v = rng.normal(M * C), g = rng.normal(M * C), gamma = rng.normal(C),
               beta = rng.normal(C), rk = rng.normal(C);
  const DeviceBuffer dr = upload(r), dk = upload(kt), dv = upload(v), dgate = upload(g),
                     dgam = upload(gamma), dbet = upload(beta), drk = upload(rk);
  for (rwkvrt_bk_dtype dt : {RWKVRT_BK_F16, RWKVRT_BK_BF16}) {
    DeviceBuffer y_fp32 = upload(y0), y_in = upload(y0), out(device_, M * C * 2);
    auto args = [&](float* y) {
      return rwkvrt_bk_v7_output_args{M,          H,          N,         y,
                                      dgam.f32(), dbet.f32(), 64e-5f,    dr.f32(),
                                      dk.f32(),   dv.f32(),   drk.f32(), dgate.f32()};
    };
    stream_->v7_output(args(y_fp32.f32()));
    stream_->v7_output_half(args(y_in.f32()), dt, out.get());
    std::vector<uint16_t> got(M * C);
    stream_->download(got.data(), out.get(), got.size() * 2);
    EXPECT_EQ(half_mismatches(rounded(dt, download(y_fp32.get(), M * C)), got), 0u)
        << dtype_name(DType(dt)) << " v7_output_half";
    EXPECT_EQ(bit_mismatches(download(y_in.get(), M * C), y0), 0u)
        << dtype_name(DType(dt)) << " v7_output_half wrote its input";
  }
}

// Matmuls handed rounded activations (matmul_group_half, channel_mix_half) give what the
// rounding path gives on the fp32 activations, bit for bit where the weight rows need no padding
// (K % 8 == 0): a group with a shared input, a bias + activation epilogue and an accumulating
// item, at the smallest rounding row count and beyond; the channel mix with and without
// accumulation.  A K needing padding (100) agrees to fp32 summation order.  Weights stored in
// another type, or a half type that is not one, are refused with messages that say so.
TEST_F(CudaTest, HalfActivationMatmulsEqualTheRoundingPath) {
  const auto fast = RWKVRT_BK_MATMUL_ROUNDED_ACTIVATIONS;
  ASSERT_TRUE(device_->has_half_activations());
  // The rows from which the plugin rounds activations (what device_describe reports as
  // half_activation_rows unless RWKVRT_CUDA_HALF_ACTIVATIONS=0 is set).
  const uint64_t M_min = 9;
  EXPECT_TRUE(device_->half_activation_rows() == M_min || device_->half_activation_rows() == 0);
  for (rwkvrt_bk_dtype dt : {RWKVRT_BK_F16, RWKVRT_BK_BF16})
    for (uint64_t M : {M_min, uint64_t(300)})
      for (uint64_t K : {uint64_t(512), uint64_t(100)}) {
        const std::string what = std::string(dtype_name(DType(dt))) + " M=" + std::to_string(M) +
                                 " K=" + std::to_string(K);
        Rng rng(33);
        const uint64_t rows[3] = {384, 64, 512};
        std::vector<PreparedWeight> w;
        for (int i = 0; i < 3; ++i)
          w.push_back(prepared_weight(device_, dt, "group", rows[i], K,
                                      rng.normal(rows[i] * K, 0.0f, 0.05f), fast));
        const Floats x0 = rng.normal(M * K), x1 = rng.normal(M * K), bias = rng.normal(rows[1]);
        const Floats y2_start = rng.normal(M * rows[2]);
        const DeviceBuffer dx0 = upload(x0), dx1 = upload(x1), db = upload(bias);
        const std::vector<uint16_t> h0 = rounded(dt, x0), h1 = rounded(dt, x1);
        const DeviceBuffer hx0 = upload(h0.data(), h0.size() * 2),
                           hx1 = upload(h1.data(), h1.size() * 2);
        auto outputs = [&](bool half) {
          DeviceBuffer y0(device_, M * rows[0] * 4), y1(device_, M * rows[1] * 4);
          DeviceBuffer y2 = upload(y2_start);
          const void* a = half ? hx0.get() : dx0.get();
          const void* b = half ? hx1.get() : dx1.get();
          const Stream::MatmulItem items[] = {
              {a, M, &w[0], y0.f32()},
              {b, M, &w[1], y1.f32(), db.f32(), RWKVRT_BK_TANH},
              {a, M, &w[2], y2.f32(), nullptr, RWKVRT_BK_NO_ACTIVATION, 0, true}};
          if (half)
            stream_->matmul_group_half(items, 3, dt);
          else
            stream_->matmul_group(items, 3);
          Floats all = download(y0.get(), M * rows[0]);
          for (const DeviceBuffer* buf : {&y1, &y2}) {
            const Floats part = download(buf->get(), buf->bytes() / 4);
            all.insert(all.end(), part.begin(), part.end());
          }
          return all;
        };
        const Floats want = outputs(false), got = outputs(true);
        if (K % 8 == 0) {
          EXPECT_EQ(bit_mismatches(want, got), 0u) << what << ": of " << want.size();
        } else {
          const Error2 e = compare(got, want);
          EXPECT_TRUE(e.finite) << what;
          EXPECT_LE(e.max_rel, 1e-6) << what;
        }
      }

  const uint64_t C = 256, F = 1000;
  for (rwkvrt_bk_dtype dt : {RWKVRT_BK_F16, RWKVRT_BK_BF16})
    for (uint64_t M : {M_min, uint64_t(300)}) {
      Rng rng(34);
      const PreparedWeight wk = prepared_weight(device_, dt, "ffn.key", F, C,
                                                rng.normal(F * C, 0.0f, 0.1f), fast),
                           wv = prepared_weight(device_, dt, "ffn.value", C, F,
                                                rng.normal(C * F, 0.0f, 0.1f), fast);
      const Floats x = rng.normal(M * C), y_start = rng.normal(M * C);
      const std::vector<uint16_t> hx = rounded(dt, x);
      const DeviceBuffer dx = upload(x), dhx = upload(hx.data(), hx.size() * 2);
      DeviceBuffer hidden(device_, M * F * 4);
      for (bool accumulate : {false, true}) {
        auto output = [&](bool half) {
          DeviceBuffer y = upload(y_start);
          if (half)
            stream_->channel_mix_half(dhx.get(), M, wk, wv, hidden.f32(), y.f32(), accumulate, dt);
          else
            stream_->channel_mix(dx.f32(), M, wk, wv, hidden.f32(), y.f32(), accumulate);
          return download(y.get(), M * C);
        };
        EXPECT_EQ(bit_mismatches(output(false), output(true)), 0u)
            << dtype_name(DType(dt)) << " channel_mix_half M=" << M
            << (accumulate ? " accumulate" : "");
      }
    }

  // Refusals.
  Rng rng(35);
  const uint64_t K = 64, N = 64, M = 16;
  const PreparedWeight w16 = prepared_weight(device_, RWKVRT_BK_F16, "blocks.0.att.key.weight", N,
                                             K, rng.normal(N * K), fast);
  const PreparedWeight w32 =
      prepared_weight(device_, RWKVRT_BK_F32, "blocks.0.att.value.weight", N, K, rng.normal(N * K));
  DeviceBuffer x(device_, M * K * 2), y(device_, M * N * 4);
  auto refusal = [&](const PreparedWeight& w, rwkvrt_bk_dtype dt) {
    const Stream::MatmulItem item{x.get(), M, &w, y.f32()};
    try {
      stream_->matmul_group_half(&item, 1, dt);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  const std::string f32_weight = refusal(w32, RWKVRT_BK_F16);
  EXPECT_NE(f32_weight.find("'blocks.0.att.value.weight' is stored as f32"), std::string::npos)
      << f32_weight;
  const std::string bf16_x = refusal(w16, RWKVRT_BK_BF16);
  EXPECT_NE(bf16_x.find("activations are bf16"), std::string::npos) << bf16_x;
  const std::string not_half = refusal(w16, RWKVRT_BK_F32);
  EXPECT_NE(not_half.find("must be f16 or bf16"), std::string::npos) << not_half;
  // The raw entries refuse malformed calls with a message, as their fp32 counterparts do.
  const rwkvrt_backend_v1& api = device_->api();
  rwkvrt_bk_stream* raw = stream_->raw();
  auto refused = [&](int rc, const char* needle, const char* what) {
    EXPECT_NE(rc, RWKVRT_BK_OK) << what;
    const std::string msg = api.last_error();
    EXPECT_NE(msg.find(needle), std::string::npos) << what << ": " << msg;
  };
  rwkvrt_bk_matmul_item items[RWKVRT_BK_MAX_GROUP + 1] = {};
  refused(api.matmul_group_half(raw, items, 0, RWKVRT_BK_F16), "items", "empty group");
  refused(api.matmul_group_half(raw, items, RWKVRT_BK_MAX_GROUP + 1, RWKVRT_BK_F16), "items",
          "oversized group");
  refused(api.matmul_group_half(raw, items, 1, RWKVRT_BK_F16), "null argument", "null weight");
  refused(api.matmul_group_half(nullptr, items, 1, RWKVRT_BK_F16), "null stream", "null stream");
  rwkvrt_bk_norm_shift_mix_args nsm{};
  nsm.n_out = 0;
  refused(api.norm_shift_mix_half(raw, &nsm, RWKVRT_BK_F16), "n_out", "no outputs");
  refused(api.norm_shift_mix_half(raw, &nsm, RWKVRT_BK_Q8_0), "f16 or bf16", "block type");
  rwkvrt_bk_v7_output_args out{};
  out.M = 1, out.H = 1, out.N = 64;
  refused(api.v7_output_half(raw, &out, RWKVRT_BK_BF16, nullptr), "null argument", "no output");
  out.y = y.f32();
  refused(api.v7_output_half(raw, &out, RWKVRT_BK_BF16, y.f32()), "overlap", "out over y");
  rwkvrt_bk_channel_mix_args cm{x.f32(), M, 0, w16.get(), w16.get(), y.f32(), y.f32(), 0, 2};
  refused(api.channel_mix_half(raw, &cm, RWKVRT_BK_F16), "accumulate", "accumulate 2");
}

// A whole v7 model in the fast precision: with the producers writing the rounded activations
// (the default) the logits of a prompt and the state after it equal those of the rounding
// passes (RWKVRT_CUDA_HALF_ACTIVATIONS=0) bit for bit, f16 and bf16.  Decode-sized passes
// keep fp32 activations.
TEST_F(CudaTest, HalfActivationModelEqualsRoundingPasses) {
  for (DType dt : {DType::F16, DType::BF16}) {
    const SyntheticShape shape{3, 512, 4096, 64, dt, 10};
    const TensorSet tensors = make_synthetic_v7(shape);
    LoadOptions fast;
    fast.backend = "cuda";
    fast.matmul_precision = RWKVRT_BK_MATMUL_ROUNDED_ACTIVATIONS;
    const auto with_half = Model::from_tensors(tensors, fast);
    ::setenv("RWKVRT_CUDA_HALF_ACTIVATIONS", "0", 1);
    std::shared_ptr<Model> without;
    try {
      without = Model::from_tensors(tensors, fast);
    } catch (...) {
      ::unsetenv("RWKVRT_CUDA_HALF_ACTIVATIONS");
      throw;
    }
    ::unsetenv("RWKVRT_CUDA_HALF_ACTIVATIONS");
    const rwkvrt_bk_dtype half = dt == DType::F16 ? RWKVRT_BK_F16 : RWKVRT_BK_BF16;
    ASSERT_EQ(with_half->activation_dtype(300), half) << "the half path is not taken";
    EXPECT_EQ(with_half->activation_dtype(1), RWKVRT_BK_F32) << "decode rounds its activations";
    ASSERT_EQ(without->activation_dtype(300), RWKVRT_BK_F32);
    const uint64_t V = shape.n_vocab;
    std::vector<int32_t> prompt(300);
    for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = int32_t((i * 97 + 3) % V);
    Session a(with_half), b(without);
    Floats la(prompt.size() * V), lb(prompt.size() * V);
    a.feed(prompt.data(), prompt.size(), LogitsMode::All, la.data());
    b.feed(prompt.data(), prompt.size(), LogitsMode::All, lb.data());
    Floats sa(with_half->state_floats()), sb(without->state_floats());
    a.export_state(sa.data());
    b.export_state(sb.data());
    EXPECT_EQ(bit_mismatches(la, lb), 0u) << dtype_name(DType(half)) << " logits of " << la.size();
    EXPECT_EQ(bit_mismatches(sa, sb), 0u) << dtype_name(DType(half)) << " state of " << sa.size();
  }
}

// A whole model in the fast precision: a prompt fed at once (GEMMs on rounded activations)
// against the exact model.  The difference is the rounding of every matmul input to f16 or
// bf16; it is reported and bounded (docs/CUDA.md gives the figures).
TEST_F(CudaTest, FastMatmulModelStaysCloseToExact) {
  for (DType dt : {DType::F16, DType::BF16}) {
    // Layers, width, vocabulary, head size, matrix type, seed.
    const SyntheticShape shape{4, 512, 4096, 64, dt, 9};
    const TensorSet tensors = make_synthetic_v7(shape);
    LoadOptions exact, fast;
    exact.backend = fast.backend = "cuda";
    fast.matmul_precision = RWKVRT_BK_MATMUL_ROUNDED_ACTIVATIONS;
    const auto me = Model::from_tensors(tensors, exact);
    const auto mf = Model::from_tensors(tensors, fast);
    const uint64_t V = shape.n_vocab;
    std::vector<int32_t> prompt(300);
    for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = int32_t((i * 131 + 7) % V);
    Session se(me), sf(mf);
    Floats a(V), b(V);
    se.feed(prompt.data(), prompt.size(), LogitsMode::Last, a.data());
    sf.feed(prompt.data(), prompt.size(), LogitsMode::Last, b.data());
    double worst = 0.0, scale = 0.0;
    for (uint64_t i = 0; i < V; ++i) {
      worst = std::max(worst, double(std::fabs(a[i] - b[i])));
      scale = std::max(scale, double(std::fabs(a[i])));
    }
    const bool f16 = dt == DType::F16;
    std::printf(
        "fast matmuls, %s model, 300-token prompt: max abs logit difference %.3g (max "
        "|logit| %.3g)\n",
        f16 ? "f16" : "bf16", worst, scale);
    RecordProperty(f16 ? "fast_f16_max_abs" : "fast_bf16_max_abs", std::to_string(worst));
    EXPECT_GT(worst, 0.0) << "the fast model computed exactly: the option had no effect";
    EXPECT_LE(worst, (f16 ? 2e-3 : 2e-2) * std::max(1.0, scale));
  }
}

// The decode GEMV's shapes: few rows with a long K (split-K with batched loads), many rows
// (a warp per rows), short rows (LoRA up projections: L lanes per row, from one vector per lane
// (K = 96 f16: 12 vectors, 16 lanes; K = 40 f32: 10 vectors, 16 lanes; K = 32: 4 lanes f16,
// 8 f32; K = 8: 1 lane f16, 2 f32) to two (K = 480 f16: 60 vectors, 32 lanes) — rows of one
// block straddling the end), f32 and f16, one to eight activation rows; exact storage, fp32
// sums.
TEST_F(CudaTest, SkinnyMatmulShapes) {
  Rng rng(14);
  struct Shape {
    uint64_t N, K;
  };
  for (const Shape& sh : {Shape{64, 16384}, Shape{8192, 2048}, Shape{4096, 14336}, Shape{4096, 96},
                          Shape{2049, 480}, Shape{333, 40}, Shape{100, 32}, Shape{77, 8}})
    for (rwkvrt_bk_dtype dt : {RWKVRT_BK_F16, RWKVRT_BK_F32})
      for (uint64_t M : {1, 3, 8}) {
        const Floats wf = rng.normal(sh.N * sh.K, 0.0f, 0.05f);
        const Floats x = rng.normal(M * sh.K);
        Floats stored = wf;
        std::vector<uint16_t> enc;
        rwkvrt_bk_weight_desc d{};
        d.struct_size = sizeof(d);
        d.name = "skinny";
        d.rows = sh.N;
        d.cols = sh.K;
        d.want_dtype = RWKVRT_BK_SAME;
        d.src_dtype = dt;
        if (dt == RWKVRT_BK_F16) {
          enc.resize(wf.size());
          for (size_t i = 0; i < wf.size(); ++i) {
            enc[i] = f32_to_f16(wf[i]);
            stored[i] = f16_to_f32(enc[i]);
          }
          d.src = enc.data();
        } else {
          d.src = wf.data();
        }
        const PreparedWeight w(device_, d);
        Floats want(M * sh.N);
        reference::matmul(x.data(), M, sh.K, {stored.data(), sh.N, sh.K}, want.data(), sh.N, false);
        const DeviceBuffer dx = upload(x), dy = upload(Floats(M * sh.N, std::nanf("")));
        stream_->matmul(dx.f32(), M, w, dy.f32());
        const Error2 e = compare(download(dy.get(), M * sh.N), want);
        const std::string what = std::string(dt == RWKVRT_BK_F16 ? "f16" : "f32") +
                                 " N=" + std::to_string(sh.N) + " K=" + std::to_string(sh.K) +
                                 " M=" + std::to_string(M);
        EXPECT_TRUE(e.finite) << what;
        EXPECT_LE(e.rel_l2, 1e-5) << what;
        EXPECT_LE(e.max_rel, 1e-5) << what;
      }
}

// The fp32-accurate f16 path scales each row by a power of two, so activations far beyond the
// f16 range (which the rounded path would saturate) still multiply exactly.
TEST_F(CudaTest, SplitF16PathHandlesActivationsBeyondHalfRange) {
  Rng rng(12);
  const uint64_t N = 96, K = 512, M = 24;
  const Floats wf = rng.normal(N * K, 0.0f, 0.05f);
  Floats x = rng.normal(M * K, 0.0f, 1e5f);
  x[3] = 3e7f;
  const MatmulRun r = run_matmul(*this, device_, *stream_, RWKVRT_BK_F16, N, K, M, x, wf);
  EXPECT_TRUE(r.err.finite);
  EXPECT_LE(r.err.rel_l2, 1e-5);
}

// ---- WKV: large batches with scattered states, and long sequences ------------------------------

// B state blocks carved out of one pool in shuffled order with gaps, so sequence b's state sits
// at no predictable place (as sessions' states do), with guard floats that must stay untouched.
class ScatteredStates {
 public:
  static constexpr float kGuard = -7.25f;
  ScatteredStates(CudaTest& t, const std::shared_ptr<Device>& dev, Stream& s,
                  const std::vector<Floats>& init, uint64_t offset_floats, Rng& rng)
      : t_(t), n_(init[0].size()), offset_(offset_floats) {
    const uint64_t B = init.size();
    stride_ = offset_ + n_ + 5;
    order_.resize(B);
    std::iota(order_.begin(), order_.end(), 0);
    std::shuffle(order_.begin(), order_.end(), rng.engine());
    Floats pool(stride_ * B, kGuard);
    for (uint64_t b = 0; b < B; ++b)
      std::copy(init[b].begin(), init[b].end(), pool.begin() + order_[b] * stride_ + offset_);
    pool_ = t.upload(pool);
    host_ = pool;
    std::vector<void*> dev_bases(B);
    for (uint64_t b = 0; b < B; ++b) {
      dev_bases[b] = pool_.f32(order_[b] * stride_);
      host_bases_.push_back(host_.data() + order_[b] * stride_);
    }
    bases_ = t.upload(dev_bases.data(), B * sizeof(void*));
    (void)dev;
    (void)s;
  }
  rwkvrt_bk_state_ref device_ref() const {
    return {static_cast<void* const*>(bases_.get()), offset_ * sizeof(float)};
  }
  rwkvrt_bk_state_ref host_ref() { return {host_bases_.data(), offset_ * sizeof(float)}; }
  // Device states against the host mirror (after the reference ran on it); guards exact.
  Error2 compare_states(uint64_t* guard_errors) {
    const Floats got = t_.download(pool_.get(), host_.size());
    Floats g, w;
    *guard_errors = 0;
    for (size_t b = 0; b < order_.size(); ++b) {
      const uint64_t base = order_[b] * stride_;
      for (uint64_t i = 0; i < stride_; ++i) {
        const bool inside = i >= offset_ && i < offset_ + n_;
        if (inside) {
          g.push_back(got[base + i]);
          w.push_back(host_[base + i]);
        } else if (got[base + i] != kGuard) {
          ++*guard_errors;
        }
      }
    }
    return compare(g, w);
  }

 private:
  CudaTest& t_;
  uint64_t n_, offset_, stride_ = 0;
  std::vector<uint64_t> order_;
  DeviceBuffer pool_, bases_;
  Floats host_;
  std::vector<void*> host_bases_;
};

struct Wkv7Data {
  Floats r, ld, k, v, kappa, a;
};

Wkv7Data wkv7_data(Rng& rng, uint64_t M, uint64_t H, uint64_t N) {
  const uint64_t C = H * N;
  Wkv7Data d{rng.normal(M * C, 0.0f, 0.5f),
             rng.normal(M * C),
             rng.normal(M * C, 0.0f, 0.5f),
             rng.normal(M * C),
             rng.normal(M * C),
             rng.uniform(M * C, 0.0f, 1.0f)};
  for (float& l : d.ld) l = -0.606531f / (1.0f + std::exp(-l));
  for (uint64_t m = 0; m < M * H; ++m) {
    double n2 = 0.0;
    for (uint64_t i = 0; i < N; ++i) n2 += double(d.kappa[m * N + i]) * d.kappa[m * N + i];
    for (uint64_t i = 0; i < N; ++i) d.kappa[m * N + i] = float(d.kappa[m * N + i] / std::sqrt(n2));
  }
  return d;
}

// steep_from: tokens [steep_from, steep_from + 16) of every sequence get log decays in
// (−12, −6), far below v7's (−0.61, 0]: the chunked kernel must run such a chunk token by token.
void check_wkv7(CudaTest& t, const std::shared_ptr<Device>& dev, Stream& s, uint64_t B, uint64_t T,
                uint64_t H, uint64_t N, double tol, uint64_t seed,
                uint64_t steep_from = UINT64_MAX) {
  SCOPED_TRACE("wkv7 B=" + std::to_string(B) + " T=" + std::to_string(T) +
               " H=" + std::to_string(H) + " N=" + std::to_string(N));
  Rng rng(seed);
  const uint64_t C = H * N, M = B * T;
  Wkv7Data d = wkv7_data(rng, M, H, N);
  for (uint64_t b = 0; b < B; ++b)
    for (uint64_t tok = steep_from; tok < T && tok < steep_from + 16; ++tok)
      for (uint64_t c = 0; c < C; ++c) d.ld[(b * T + tok) * C + c] = -6.0f - 6.0f * d.a[c];
  std::vector<Floats> init;
  for (uint64_t b = 0; b < B; ++b) init.push_back(rng.uniform(H * N * N, -0.5f, 0.5f));
  ScatteredStates st(t, dev, s, init, 3, rng);
  Floats want(M * C);
  reference::wkv7({B, T, H, N, d.r.data(), d.ld.data(), d.k.data(), d.v.data(), d.kappa.data(),
                   d.a.data(), want.data(), st.host_ref()});
  const DeviceBuffer dr = t.upload(d.r), dl = t.upload(d.ld), dk = t.upload(d.k),
                     dv = t.upload(d.v), dc = t.upload(d.kappa), da = t.upload(d.a),
                     dy = t.upload(Floats(M * C, std::nanf("")));
  s.wkv7({B, T, H, N, dr.f32(), dl.f32(), dk.f32(), dv.f32(), dc.f32(), da.f32(), dy.f32(),
          st.device_ref()});
  const Error2 ey = compare(t.download(dy.get(), M * C), want);
  uint64_t guards = 0;
  const Error2 es = st.compare_states(&guards);
  std::printf("wkv7 B=%llu T=%llu H=%llu N=%llu: y rel L2 %.3g max %.3g, state rel L2 %.3g\n",
              (unsigned long long)B, (unsigned long long)T, (unsigned long long)H,
              (unsigned long long)N, ey.rel_l2, ey.max_rel, es.rel_l2);
  EXPECT_TRUE(ey.finite);
  EXPECT_LE(ey.rel_l2, tol);
  EXPECT_LE(ey.max_rel, 10 * tol);
  EXPECT_LE(es.rel_l2, tol);
  EXPECT_EQ(guards, 0u) << "floats outside the state tensors were written";
}

// Options of check_wkv5: per-channel decays (v5) instead of per-token ones (v6), and, with
// per-token decays only, tokens [steep_from, steep_from + 20) of every sequence given decays far
// stronger than the usual λ ∈ (−20, 0): −1e4 and −∞ (w = 0 exactly).
struct Wkv5Case {
  bool per_token = true;
  uint64_t steep_from = UINT64_MAX;
};

void check_wkv5(CudaTest& t, const std::shared_ptr<Device>& dev, Stream& s, uint64_t B, uint64_t T,
                uint64_t H, uint64_t N, double tol, uint64_t seed, Wkv5Case c = {}) {
  ASSERT_TRUE(c.per_token || c.steep_from == UINT64_MAX) << "steep decays are per token";
  SCOPED_TRACE(std::string(c.per_token ? "wkv6" : "wkv5") + " B=" + std::to_string(B) +
               " T=" + std::to_string(T) + " H=" + std::to_string(H) + " N=" + std::to_string(N));
  Rng rng(seed);
  const uint64_t C = H * N, M = B * T;
  const Floats r = rng.normal(M * C, 0.0f, 0.5f), k = rng.normal(M * C, 0.0f, 0.5f),
               v = rng.normal(M * C), u = rng.normal(C, 0.0f, 0.5f);
  Floats lam = rng.normal(c.per_token ? M * C : C, -1.0f, 1.0f);
  for (float& l : lam) l = -std::exp(l);
  if (c.per_token)
    for (uint64_t b = 0; b < B; ++b)
      for (uint64_t tok = c.steep_from; tok < T && tok < c.steep_from + 20; ++tok)
        for (uint64_t ch = 0; ch < C; ++ch)
          if (ch % 3 != 2) lam[(b * T + tok) * C + ch] = ch % 3 == 0 ? -INFINITY : -1e4f;
  std::vector<Floats> init;
  for (uint64_t b = 0; b < B; ++b) init.push_back(rng.uniform(H * N * N, -1.0f, 1.0f));
  ScatteredStates st(t, dev, s, init, 1, rng);
  Floats want(M * C);
  reference::wkv5({B, T, H, N, r.data(), k.data(), v.data(), lam.data(), c.per_token, u.data(),
                   want.data(), st.host_ref()});
  const DeviceBuffer dr = t.upload(r), dk = t.upload(k), dv = t.upload(v), dl = t.upload(lam),
                     du = t.upload(u), dy = t.upload(Floats(M * C, std::nanf("")));
  s.wkv5({B, T, H, N, dr.f32(), dk.f32(), dv.f32(), dl.f32(), c.per_token, du.f32(), dy.f32(),
          st.device_ref()});
  const Error2 ey = compare(t.download(dy.get(), M * C), want);
  uint64_t guards = 0;
  const Error2 es = st.compare_states(&guards);
  std::printf("%s B=%llu T=%llu H=%llu N=%llu: y rel L2 %.3g max %.3g, state rel L2 %.3g\n",
              c.per_token ? "wkv6" : "wkv5", (unsigned long long)B, (unsigned long long)T,
              (unsigned long long)H, (unsigned long long)N, ey.rel_l2, ey.max_rel, es.rel_l2);
  EXPECT_TRUE(ey.finite);
  EXPECT_LE(ey.rel_l2, tol);
  EXPECT_LE(ey.max_rel, 10 * tol);
  EXPECT_LE(es.rel_l2, tol);
  EXPECT_EQ(guards, 0u);
}

// Batched single-token steps: B·H = 2048 heads of 64 take the step kernel's four-row lane groups
// (132 SMs), 600 heads of 32 and 40 heads the one-row form; each sequence's state in its own
// allocation, with guard words around it.
TEST_F(CudaTest, BatchedWkvWithScatteredStates) {
  check_wkv7(*this, device_, *stream_, 1024, 1, 2, 64, 1e-5, 21);
  check_wkv7(*this, device_, *stream_, 700, 1, 3, 128, 1e-5, 26);  // two-row groups (N = 128)
  check_wkv7(*this, device_, *stream_, 64, 3, 3, 64, 1e-5, 22);
  check_wkv7(*this, device_, *stream_, 300, 1, 2, 32, 1e-5, 23);
  check_wkv7(*this, device_, *stream_, 40, 37, 2, 64, 1e-5, 25);  // rows split over 2 blocks
  check_wkv5(*this, device_, *stream_, 256, 2, 2, 64, 1e-5, 24);
}

// The SM count of device 0, from the name the plugin describes it with ("… (sm_90, 132 SMs)").
uint64_t sm_count(const BackendEntry& e) {
  rwkvrt_bk_device_desc d{};
  d.struct_size = sizeof(d);
  if (e.api->device_describe(0, &d) != RWKVRT_BK_OK) return 0;
  const std::string name = d.name;
  const size_t end = name.rfind(" SMs)"), begin = name.rfind(", ", end);
  if (end == std::string::npos || begin == std::string::npos) return 0;
  return std::strtoull(name.substr(begin + 2, end - begin - 2).c_str(), nullptr, 10);
}

// The v7_wkv op for one token of many sequences (batched decode): key preparation and value
// residual kernels, then the step kernel's wide form (several value rows of a head per lane
// group: four; two for N = 128).  Every head size, with B chosen from the SM count so that the
// wide form runs on any GPU, states scattered, against the reference's key preparation, value
// residual and wkv7 in sequence.
TEST_F(CudaTest, V7WkvForManySequences) {
  const uint64_t sms = sm_count(entry_);
  ASSERT_GE(sms, 8u) << "could not read the SM count from the device's description";
  const uint64_t H = 2;
  for (uint64_t N : {16, 32, 64, 128}) {
    // The wide form runs from 4 blocks of 256 threads per SM, P = min(8, N/4) lanes per group of
    // R value rows.
    const uint64_t P = std::min<uint64_t>(8, N / 4), R = N >= 128 ? 2 : 4;
    const uint64_t B = (4 * sms * 256 * R + H * N * P - 1) / (H * N * P) + 3;
    SCOPED_TRACE("v7_wkv B=" + std::to_string(B) + " H=2 N=" + std::to_string(N));
    Rng rng(60 + N);
    const uint64_t C = H * N, M = B;
    Wkv7Data d = wkv7_data(rng, M, H, N);  // d.kappa unused: v7_wkv derives κ from k
    const Floats k_k = rng.normal(C, 1.0f, 0.3f), k_a = rng.normal(C, 1.0f, 0.3f),
                 v_first = rng.normal(M * C), gate = rng.uniform(M * C, 0.0f, 1.0f);
    Floats kappa(M * C), ktilde(M * C), v_used(M * C), want(M * C);
    reference::v7_key_prep(
        {M, H, N, d.k.data(), d.a.data(), k_k.data(), k_a.data(), kappa.data(), ktilde.data()});
    for (uint64_t i = 0; i < M * C; ++i)
      v_used[i] = std::fmaf(v_first[i] - d.v[i], gate[i], d.v[i]);
    std::vector<Floats> init;
    for (uint64_t b = 0; b < B; ++b) init.push_back(rng.uniform(H * N * N, -0.5f, 0.5f));
    ScatteredStates st(*this, device_, *stream_, init, 3, rng);
    reference::wkv7({B, 1, H, N, d.r.data(), d.ld.data(), ktilde.data(), v_used.data(),
                     kappa.data(), d.a.data(), want.data(), st.host_ref()});
    const Floats nan(M * C, std::nanf(""));
    const DeviceBuffer dr = upload(d.r), dl = upload(d.ld), dk = upload(d.k), dv = upload(d.v),
                       da = upload(d.a), dkk = upload(k_k), dka = upload(k_a),
                       dvf = upload(v_first), dg = upload(gate), dkt = upload(nan),
                       dvo = upload(nan), dy = upload(nan), dkap = upload(nan);
    stream_->v7_wkv(
        {B, 1, H, N, dr.f32(), dl.f32(), dk.f32(), dv.f32(), da.f32(), dkk.f32(), dka.f32(),
         dvf.f32(), dg.f32(), dkt.f32(), dvo.f32(), dy.f32(), st.device_ref()},
        dkap.f32());
    const Error2 ey = compare(download(dy.get(), M * C), want);
    const Error2 ek = compare(download(dkt.get(), M * C), ktilde);
    const Error2 ev = compare(download(dvo.get(), M * C), v_used);
    uint64_t guards = 0;
    const Error2 es = st.compare_states(&guards);
    std::printf("v7_wkv B=%llu H=2 N=%llu: y rel L2 %.3g, state %.3g, k~ %.3g, v' %.3g\n",
                (unsigned long long)B, (unsigned long long)N, ey.rel_l2, es.rel_l2, ek.max_rel,
                ev.max_rel);
    EXPECT_TRUE(ey.finite);
    EXPECT_LE(ey.rel_l2, 1e-5);
    EXPECT_LE(ey.max_rel, 1e-4);
    EXPECT_LE(es.rel_l2, 1e-5);
    EXPECT_LE(ek.max_rel, 1e-6);
    EXPECT_LE(ev.max_rel, 1e-6);
    EXPECT_EQ(guards, 0u) << "floats outside the state tensors were written";
  }
}

// Prompts of 64 tokens and more run the chunked kernels for head sizes 32 and 64, with a head's
// value rows over 4, 2 or 1 blocks depending on how many heads there are (N = 64: 4 while that
// keeps at most two blocks per SM, else 2; N = 32: 2 while that keeps at most two, else 1),
// the head counts on each side of a boundary taken from the device's SM count; partial last
// chunks, and chunks whose decays force the token-by-token path between chunked ones (the state
// passes between the two forms).
TEST_F(CudaTest, ChunkedWkvCoversEveryBlockSplit) {
  check_wkv7(*this, device_, *stream_, 1, 80, 4, 64, 1e-5, 41);
  check_wkv7(*this, device_, *stream_, 3, 70, 64, 64, 1e-5, 42);
  check_wkv7(*this, device_, *stream_, 1, 65, 2, 32, 1e-5, 43);
  check_wkv7(*this, device_, *stream_, 3, 72, 30, 32, 1e-5, 44);
  check_wkv7(*this, device_, *stream_, 5, 64, 40, 32, 1e-5, 45);
  check_wkv7(*this, device_, *stream_, 2, 90, 3, 64, 1e-5, 46, 16);
  check_wkv7(*this, device_, *stream_, 2, 70, 100, 32, 1e-5, 47, 20);  // straddles two chunks
  // Longer prompts: a steep chunk after 18 chunked ones (T = 600), a partial last chunk after 62
  // (T = 1000, N = 32).
  check_wkv7(*this, device_, *stream_, 2, 600, 3, 64, 1e-5, 48, 300);
  check_wkv7(*this, device_, *stream_, 1, 1000, 5, 32, 1e-5, 49);
  const uint64_t sms = sm_count(entry_);
  ASSERT_GE(sms, 8u) << "could not read the SM count from the device's description";
  check_wkv7(*this, device_, *stream_, 1, 70, sms / 2, 64, 1e-5, 141);      // 4 blocks per head
  check_wkv7(*this, device_, *stream_, 1, 70, sms / 2 + 1, 64, 1e-5, 142);  // 2
  check_wkv7(*this, device_, *stream_, 1, 70, sms + 1, 64, 1e-5, 144);      // 2 (N = 64 has no 1)
  check_wkv7(*this, device_, *stream_, 1, 70, sms, 32, 1e-5, 145);          // 2
  check_wkv7(*this, device_, *stream_, 1, 70, sms + 1, 32, 1e-5, 146);      // 1
}

// The WKV-5/6 kernel with a head's value columns over 4, 2 or 1 blocks (4 while the blocks stay
// within one per SM, for N = 64; 2 likewise for N = 32, 64 and 128), the head counts at each
// boundary taken from the device's SM count; heads of 16, single tokens, partial chunks of staged
// tokens, per-channel decays (v5), and decays of −1e4 and −∞ over 20 tokens.
TEST_F(CudaTest, Wkv5CoversEveryColumnSplit) {
  const uint64_t sms = sm_count(entry_);
  ASSERT_GE(sms, 8u) << "could not read the SM count from the device's description";
  uint64_t seed = 50;
  for (uint64_t N : {32, 64, 128}) {
    if (N == 64) check_wkv5(*this, device_, *stream_, 1, 70, sms / 4, N, 1e-5, ++seed);  // 4
    check_wkv5(*this, device_, *stream_, 1, 70, sms / 2, N, 1e-5, ++seed);               // 2
    check_wkv5(*this, device_, *stream_, 1, 1, sms / 2, N, 1e-5, ++seed);                // 2, T = 1
    check_wkv5(*this, device_, *stream_, 1, 40, sms / 2 + 1, N, 1e-5, ++seed);           // 1
  }
  check_wkv5(*this, device_, *stream_, 3, 70, 64, 64, 1e-5, ++seed);
  check_wkv5(*this, device_, *stream_, 1, 1, 4, 64, 1e-5, ++seed);
  check_wkv5(*this, device_, *stream_, 2, 30, 3, 16, 1e-5, ++seed);
  check_wkv5(*this, device_, *stream_, 2, 100, 3, 64, 1e-5, ++seed, {/*per_token=*/false});
  check_wkv5(*this, device_, *stream_, 1, 70, sms / 2, 64, 1e-5, ++seed, {false});
  check_wkv5(*this, device_, *stream_, 2, 90, 3, 64, 1e-5, ++seed, {true, /*steep_from=*/24});
  check_wkv5(*this, device_, *stream_, 1, 600, 5, 32, 1e-5, ++seed, {true, 300});
}

// The golden prompts (24 and 40 tokens) are shorter than the chunked WKV's default threshold, so
// the golden tests run the sequential kernel.  With the threshold lowered to 16
// (RWKVRT_CUDA_WKV7_CHUNK_TOKENS, read when a context is created) the trained v7 models go
// through the chunked kernels: every row of the prompt's logits within the golden bound (1e-4)
// of the reference's token-by-token logits.
TEST_F(CudaTest, GoldenV7PromptsThroughTheChunkedWkv) {
  struct EnvGuard {
    EnvGuard() { ::setenv("RWKVRT_CUDA_WKV7_CHUNK_TOKENS", "16", 1); }
    ~EnvGuard() { ::unsetenv("RWKVRT_CUDA_WKV7_CHUNK_TOKENS"); }
  };
  for (const std::string name : {"v7_L2_C128", "v7_L3_C256"}) {
    SCOPED_TRACE(name);
    const test::Golden g = test::load_golden(name);
    LoadOptions o;
    o.backend = "cuda";
    o.weight_dtype = RWKVRT_BK_F32;  // fp32 compute, as the goldens were made
    std::shared_ptr<Model> model;
    {
      const EnvGuard chunked_from_16_tokens;
      model = Model::load(test::testdata_path("golden/" + name + ".pth"), o);
    }
    const size_t V = model->config().n_vocab, T = g.tokens.size();
    Session s(model);
    std::vector<float> all(T * V);
    s.feed(g.tokens.data(), T, LogitsMode::All, all.data());
    double worst = 0.0;
    for (size_t t = 0; t < T; ++t)
      worst = std::max(worst, test::max_abs_diff(all.data() + t * V, g.logits_rnn[t].data(), V));
    std::printf("%s through the chunked WKV (T = %zu): max abs logit error %.3g\n", name.c_str(), T,
                worst);
    EXPECT_LE(worst, 1e-4);
  }
}

// T = 4096 in one call, as a prefill pass runs it.  Every decay is below 1 and the delta rule
// contracts, so rounding does not grow with T: the bound is the op test's kRecurrence (1e-5)
// relaxed to 3e-5 for the longer chain of roundings each element has passed through.
TEST_F(CudaTest, LongSequenceWkvMatchesTheReference) {
  check_wkv7(*this, device_, *stream_, 1, 4096, 2, 64, 3e-5, 31);
  check_wkv7(*this, device_, *stream_, 2, 1000, 1, 128, 3e-5, 32);
  check_wkv5(*this, device_, *stream_, 1, 4096, 2, 64, 3e-5, 33);
}

// ---- state between backends --------------------------------------------------------------------

// A state exported on CUDA and imported on the CPU continues with the same logits (and the
// reverse), for the same fp32 weights on both.
TEST_F(CudaTest, StateMovesBetweenCudaAndCpu) {
  BackendEntry cpu;
  bool have_cpu = false;
  for (size_t i = 0; i < BackendRegistry::instance().count(); ++i) {
    const BackendEntry e = BackendRegistry::instance().entry(i);
    if (e.name == "cpu" && e.usable()) {
      cpu = e;
      have_cpu = true;
    }
  }
  if (!have_cpu) GTEST_SKIP() << "no usable CPU backend to compare with";
  // Layers, width, vocabulary, head size, matrix type, seed.
  const SyntheticShape shape{3, 256, 1000, 64, DType::F32, 5};
  const TensorSet tensors = make_synthetic_v7(shape);
  LoadOptions on_cuda, on_cpu;
  on_cuda.backend = "cuda";
  on_cuda.weight_dtype = RWKVRT_BK_F32;
  on_cpu.backend = "cpu";
  on_cpu.weight_dtype = RWKVRT_BK_F32;
  const auto mc = Model::from_tensors(tensors, on_cuda);
  const auto mh = Model::from_tensors(tensors, on_cpu);
  ASSERT_EQ(mc->fingerprint(), mh->fingerprint());
  const uint64_t V = shape.n_vocab;
  std::vector<int32_t> prompt(40);
  for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = int32_t((i * 37 + 11) % V);
  const int32_t next = 123;

  Session sc(mc), sh(mh);
  sc.feed(prompt.data(), prompt.size(), LogitsMode::None, nullptr);
  sh.feed(prompt.data(), prompt.size(), LogitsMode::None, nullptr);
  const std::vector<uint8_t> from_cuda = sc.save_state(), from_cpu = sh.save_state();

  Session cpu_continues(mh), cuda_continues(mc);
  cpu_continues.load_state(from_cuda.data(), from_cuda.size());
  cuda_continues.load_state(from_cpu.data(), from_cpu.size());
  Floats a(V), b(V), c(V);
  cpu_continues.feed(&next, 1, LogitsMode::Last, a.data());
  cuda_continues.feed(&next, 1, LogitsMode::Last, b.data());
  sc.feed(&next, 1, LogitsMode::Last, c.data());
  double worst = 0.0;
  for (uint64_t i = 0; i < V; ++i) {
    worst = std::max(worst, double(std::fabs(a[i] - c[i])));
    worst = std::max(worst, double(std::fabs(b[i] - c[i])));
  }
  std::printf("state moved between CUDA and CPU: worst logit difference %.3g\n", worst);
  EXPECT_LE(worst, 1e-4);
}

}  // namespace
}  // namespace rwkvrt
