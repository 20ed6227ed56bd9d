// Cross-backend op test (in the spirit of ggml's test-backend-ops): every op of every usable
// backend plugin, run through the plugin ABI on fresh random data of awkward sizes, against the
// reference ops of backends/reference, which are the specification.
//
// Every output buffer is poisoned with NaN first, so an element the backend forgets to write
// shows up as NaN; padding between strided rows and the bytes around each state tensor must come
// back unchanged.  Errors are measured as the max absolute error (relative to the largest
// reference magnitude) and the relative L2 error; the bounds sit next to each op with their
// reasoning.
//
// Inputs are random with a seed printed in every failure message; RWKVRT_TEST_SEED replays one.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/backend_registry.h"
#include "core/device.h"
#include "core/error.h"
#include "dtype_convert.h"
#include "reference_ops.h"
#include "rwkvrt/backend.h"

namespace rwkvrt {
namespace {

using Floats = std::vector<float>;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// ---- error bounds ------------------------------------------------------------------------------
//
// u = 2^-24 ≈ 6e-8 is the fp32 unit roundoff.  A dot product of K random-signed terms summed in
// fp32 has a rounding error that grows like u·√K relative to its value (about 2e-6 at K = 1000;
// the reference sums in double, so that is the whole difference).  Element-wise ops differ by a
// few ulp at most (vectorised exp/sigmoid/tanh within 2–4 ulp of libm).
struct Tolerance {
  double rel_l2;   // ‖got − want‖₂ / ‖want‖₂
  double max_abs;  // max |got − want| / max |want|
};

// Pure copies and exact arithmetic (gather, token shift, add/sub/mul): bit-exact.
constexpr Tolerance kExact{0.0, 0.0};
// One rounding per element, possibly fused differently (mix, v7 key/bonus element parts).
constexpr Tolerance kFewUlp{1e-6, 1e-6};
// Transcendentals: 2 ulp for exp, a division and an add on top: well under 16 ulp.
constexpr Tolerance kTranscendental{2e-6, 2e-6};
// fp32-accumulated reductions over up to ~1000 terms (matmul with any weight dtype fed to the
// reference as the same dequantised values, norms): u·√K ≈ 2e-6, five times that for margin.
constexpr Tolerance kReduction{1e-5, 1e-5};
// Recurrences: a reduction per step whose rounding the state carries into the next step, but
// damped by the decays (all < 1), so over T ≤ 20 tokens it stays at the level of kReduction.
constexpr Tolerance kRecurrence{1e-5, 1e-5};

// ---- helpers -----------------------------------------------------------------------------------

uint64_t test_seed() {
  if (const char* s = std::getenv("RWKVRT_TEST_SEED")) return std::strtoull(s, nullptr, 10);
  return std::random_device{}();
}

class Random {
 public:
  explicit Random(uint64_t seed) : rng_(seed) {}
  Floats normal(uint64_t n, float mean = 0.0f, float stddev = 1.0f) {
    std::normal_distribution<float> d(mean, stddev);
    Floats v(n);
    for (float& x : v) x = d(rng_);
    return v;
  }
  Floats uniform(uint64_t n, float lo, float hi) {
    std::uniform_real_distribution<float> d(lo, hi);
    Floats v(n);
    for (float& x : v) x = d(rng_);
    return v;
  }
  int32_t integer(int32_t lo, int32_t hi) {
    return std::uniform_int_distribution<int32_t>(lo, hi)(rng_);
  }

 private:
  std::mt19937_64 rng_;
};

std::vector<BackendEntry> usable_backends() {
  BackendRegistry& registry = BackendRegistry::instance();
  std::vector<BackendEntry> out;
  for (size_t i = 0; i < registry.count(); ++i) {
    BackendEntry e = registry.entry(i);
    if (e.usable()) out.push_back(std::move(e));
  }
  return out;
}

// Compares element by element; NaN where the reference is a number means "not written".
void expect_close(const Floats& got, const Floats& want, Tolerance tol, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double diff2 = 0.0, want2 = 0.0, max_diff = 0.0, max_want = 0.0;
  size_t worst = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double g = got[i], w = want[i];
    if (!std::isfinite(w)) {
      ASSERT_TRUE(g == w || (std::isnan(g) && std::isnan(w)))
          << what << ": element " << i << " is " << g << ", reference " << w;
      continue;
    }
    ASSERT_TRUE(std::isfinite(g)) << what << ": element " << i << " is " << g
                                  << " (not written?), reference " << w;
    const double d = std::fabs(g - w);
    diff2 += d * d;
    want2 += w * w;
    max_want = std::max(max_want, std::fabs(w));
    if (d > max_diff) {
      max_diff = d;
      worst = i;
    }
  }
  const double rel_l2 = want2 > 0.0 ? std::sqrt(diff2 / want2) : std::sqrt(diff2);
  const double max_rel = max_want > 0.0 ? max_diff / max_want : max_diff;
  EXPECT_LE(rel_l2, tol.rel_l2) << what << ": relative L2 error";
  EXPECT_LE(max_rel, tol.max_abs) << what << ": max abs error " << max_diff << " at element "
                                  << worst << " (got " << got[worst] << ", reference "
                                  << want[worst] << ", largest reference magnitude " << max_want
                                  << ")";
}

// One backend's device and stream, with upload/download helpers.
class Runner {
 public:
  explicit Runner(const BackendEntry& backend, int32_t n_threads = 0)
      : device_(std::make_shared<Device>(backend, 0, n_threads)), stream_(device_) {}

  Stream& stream() { return stream_; }
  const std::shared_ptr<Device>& device() const { return device_; }

  DeviceBuffer upload_bytes(const void* src, uint64_t bytes) {
    DeviceBuffer b(device_, bytes);
    if (bytes > 0) stream_.upload(b.get(), src, bytes);
    return b;
  }
  DeviceBuffer upload(const Floats& v) { return upload_bytes(v.data(), v.size() * sizeof(float)); }
  DeviceBuffer poisoned(uint64_t n) { return upload(Floats(n, kNaN)); }
  Floats download(const DeviceBuffer& b, uint64_t n, uint64_t offset_floats = 0) {
    Floats v(n);
    stream_.download(v.data(), b.f32(offset_floats), n * sizeof(float));
    stream_.synchronize();
    return v;
  }

 private:
  std::shared_ptr<Device> device_;
  Stream stream_;
};

// Per-sequence state blocks, each its own allocation (not contiguous), with the tensor under test
// `offset` floats into each block and guard floats after it.  Host mirrors feed the reference.
class States {
 public:
  static constexpr uint64_t kOffset = 5, kGuard = 3;

  States(Runner& r, const std::vector<Floats>& tensors) : runner_(r), size_(tensors[0].size()) {
    for (const Floats& t : tensors) {
      Floats block(kOffset + size_ + kGuard, -7.5f);
      std::copy(t.begin(), t.end(), block.begin() + kOffset);
      host_.push_back(block);
      device_.push_back(r.upload(block));
    }
    for (size_t b = 0; b < host_.size(); ++b) {
      host_bases_.push_back(host_[b].data());
      device_bases_.push_back(device_[b].get());
    }
    bases_ = r.upload_bytes(device_bases_.data(), device_bases_.size() * sizeof(void*));
  }

  rwkvrt_bk_state_ref device_ref() const {
    return {static_cast<void* const*>(bases_.get()), kOffset * sizeof(float)};
  }
  rwkvrt_bk_state_ref host_ref() const { return {host_bases_.data(), kOffset * sizeof(float)}; }

  // Compares every block with its host mirror, guards included (they must be untouched).
  void expect_matches_reference(Tolerance tol, const std::string& what) {
    for (size_t b = 0; b < host_.size(); ++b) {
      const Floats got = runner_.download(device_[b], host_[b].size());
      const std::string where = what + " state of sequence " + std::to_string(b);
      for (uint64_t i = 0; i < kOffset; ++i) EXPECT_EQ(got[i], -7.5f) << where << " (prefix)";
      for (uint64_t i = kOffset + size_; i < got.size(); ++i)
        EXPECT_EQ(got[i], -7.5f) << where << " (guard)";
      expect_close(Floats(got.begin() + kOffset, got.begin() + kOffset + size_),
                   Floats(host_[b].begin() + kOffset, host_[b].begin() + kOffset + size_), tol,
                   where);
    }
  }

 private:
  Runner& runner_;
  uint64_t size_;
  std::vector<Floats> host_;
  std::vector<DeviceBuffer> device_;
  std::vector<void*> host_bases_, device_bases_;
  DeviceBuffer bases_;
};

std::vector<Floats> per_sequence(Random& rnd, uint64_t B, uint64_t n, float lo, float hi) {
  std::vector<Floats> v;
  for (uint64_t b = 0; b < B; ++b) v.push_back(rnd.uniform(n, lo, hi));
  return v;
}

// The tests run every backend in turn; each failure message names the backend and the seed.
class BackendOps : public ::testing::Test {
 protected:
  void SetUp() override {
    backends_ = usable_backends();
    ASSERT_FALSE(backends_.empty())
        << "no usable backend plugin found (set RWKVRT_BACKEND_PATH to the build's lib directory)";
    seed_ = test_seed();
  }

  template <class Fn>
  void for_each_backend(Fn&& fn) {
    for (const BackendEntry& b : backends_) {
      SCOPED_TRACE("backend " + b.name + " (" + b.description +
                   "), RWKVRT_TEST_SEED=" + std::to_string(seed_));
      Random rnd(seed_);
      Runner runner(b);
      fn(runner, rnd);
    }
  }

  std::vector<BackendEntry> backends_;
  uint64_t seed_ = 0;
};

// ---- matmul ------------------------------------------------------------------------------------

const char* dtype_name(rwkvrt_bk_dtype t) {
  switch (t) {
    case RWKVRT_BK_F32:
      return "f32";
    case RWKVRT_BK_F16:
      return "f16";
    case RWKVRT_BK_BF16:
      return "bf16";
    case RWKVRT_BK_Q4_0:
      return "q4_0";
    case RWKVRT_BK_Q4_1:
      return "q4_1";
    case RWKVRT_BK_Q5_0:
      return "q5_0";
    case RWKVRT_BK_Q5_1:
      return "q5_1";
    case RWKVRT_BK_Q8_0:
      return "q8_0";
    case RWKVRT_BK_SAME:
      break;
  }
  return "same";
}

// fp32 values encoded as type t (the bytes a model file would hold).
std::vector<uint8_t> encode(rwkvrt_bk_dtype t, const Floats& v) {
  if (t == RWKVRT_BK_F32) {
    std::vector<uint8_t> out(v.size() * 4);
    std::memcpy(out.data(), v.data(), out.size());
    return out;
  }
  if (t == RWKVRT_BK_F16 || t == RWKVRT_BK_BF16) {
    std::vector<uint8_t> out(v.size() * 2);
    for (size_t i = 0; i < v.size(); ++i) {
      const uint16_t h = t == RWKVRT_BK_F16 ? f32_to_f16(v[i]) : f32_to_bf16(v[i]);
      std::memcpy(out.data() + 2 * i, &h, 2);
    }
    return out;
  }
  std::vector<uint8_t> out(v.size() / kQuantBlock * quant_block_bytes(t));
  quantize_from_f32(t, v.data(), out.data(), v.size());
  return out;
}

Floats decode(rwkvrt_bk_dtype t, const std::vector<uint8_t>& bytes, uint64_t n) {
  Floats out(n);
  convert_to_f32(t, bytes.data(), out.data(), n);
  return out;
}

// A [N][K] matrix of `src` bytes (type `t`) prepared by the backend as `want`.
PreparedWeight prepare(Runner& r, const char* name, rwkvrt_bk_dtype t,
                       const std::vector<uint8_t>& src, uint64_t N, uint64_t K,
                       rwkvrt_bk_dtype want = RWKVRT_BK_SAME) {
  rwkvrt_bk_weight_desc desc{};
  desc.struct_size = sizeof(desc);
  desc.name = name;
  desc.rows = N;
  desc.cols = K;
  desc.src_dtype = t;
  desc.src = src.data();
  desc.want_dtype = want;
  return PreparedWeight(r.device(), desc);
}

struct MatmulCase {
  rwkvrt_bk_dtype src;
  rwkvrt_bk_dtype want;
  uint64_t K, N;
};

// Runs y (+)= x·Wᵀ for each M on one prepared weight, with strided x and y, against the reference
// applied to the values the backend says it stores (the source bytes dequantised, re-encoded
// through fp32 when it converted them).
void check_matmul(Runner& r, Random& rnd, const MatmulCase& c, const std::vector<uint64_t>& Ms) {
  const uint64_t K = c.K, N = c.N;
  const std::string name = std::string(dtype_name(c.src)) + "→" + dtype_name(c.want) +
                           " K=" + std::to_string(K) + " N=" + std::to_string(N);
  const std::vector<uint8_t> src = encode(c.src, rnd.normal(N * K, 0.0f, 0.5f));
  const PreparedWeight w = prepare(r, name.c_str(), c.src, src, N, K, c.want);
  const rwkvrt_bk_weight_info info = w.info();
  EXPECT_EQ(info.dtype, c.want == RWKVRT_BK_SAME ? c.src : c.want) << name;
  EXPECT_GT(info.bytes, 0u) << name;
  Floats wf = decode(c.src, src, N * K);
  if (info.dtype != c.src) wf = decode(info.dtype, encode(info.dtype, wf), N * K);
  const reference::DenseWeight ref_w{wf.data(), N, K};

  for (uint64_t M : Ms)
    for (bool accumulate : {false, true})
      for (bool strided : {false, true}) {
        const std::string what = name + " M=" + std::to_string(M) +
                                 (accumulate ? " accumulate" : "") + (strided ? " strided" : "");
        const uint64_t ldx = strided ? K + 5 : K, ldy = strided ? N + 3 : N;
        const Floats x = rnd.normal(M * ldx);
        // Accumulating outputs start from random values; others from NaN; the stride padding of
        // y is a sentinel that must survive.
        Floats y0 = accumulate ? rnd.normal(M * ldy) : Floats(M * ldy, kNaN);
        for (uint64_t m = 0; m < M; ++m)
          for (uint64_t n = N; n < ldy; ++n) y0[m * ldy + n] = 42.0f;
        Floats want = y0;
        reference::matmul(x.data(), M, ldx, ref_w, want.data(), ldy, accumulate);
        const DeviceBuffer dx = r.upload(x), dy = r.upload(y0);
        r.stream().matmul(dx.f32(), M, w, dy.f32(), accumulate, strided ? ldx : 0,
                          strided ? ldy : 0);
        const Floats got = r.download(dy, M * ldy);
        for (uint64_t m = 0; m < M; ++m)
          for (uint64_t n = N; n < ldy; ++n)
            ASSERT_EQ(got[m * ldy + n], 42.0f) << what << ": wrote into the stride padding";
        expect_close(got, want, kReduction, what);
      }
}

const std::vector<uint64_t> kMs = {1, 2, 3, 7, 33, 130};

TEST_F(BackendOps, MatmulDenseWeights) {
  for_each_backend([](Runner& r, Random& rnd) {
    for (rwkvrt_bk_dtype t : {RWKVRT_BK_F32, RWKVRT_BK_F16, RWKVRT_BK_BF16})
      for (auto [K, N] : {std::pair<uint64_t, uint64_t>{77, 45}, {300, 131}, {1, 5}})
        check_matmul(r, rnd, {t, RWKVRT_BK_SAME, K, N}, kMs);
  });
}

// y = act(x·Wᵀ + bias): one op where the backend offers matmul_bias_act (CUDA: inside the GEMV,
// or one kernel after the GEMM), else the host's matmul, binary ADD and unary (CPU).  Against the
// reference composition, on both sides of the GEMV/GEMM boundary (M = 8, 9).
TEST_F(BackendOps, MatmulWithEpilogue) {
  for_each_backend([](Runner& r, Random& rnd) {
    // N = 45: scalar epilogue rows; N = 1100: 16-byte rows over two column tiles, the second
    // partial (CUDA's epilogue kernel for M > 8).
    for (rwkvrt_bk_dtype t : {RWKVRT_BK_F32, RWKVRT_BK_F16})
      for (uint64_t N : {45, 1100}) {
        const uint64_t K = 77;
        // Small weights keep the sums O(1), where every activation is far from flat.
        const std::vector<uint8_t> src = encode(t, rnd.normal(N * K, 0.0f, 0.1f));
        const PreparedWeight w = prepare(r, "epilogue", t, src, N, K);
        const Floats wf = decode(t, src, N * K);
        const reference::DenseWeight ref_w{wf.data(), N, K};
        const Floats bias = rnd.normal(N);
        const DeviceBuffer dbias = r.upload(bias);
        for (uint64_t M : {1, 3, 8, 9, 33})
          for (int32_t act : {int32_t(RWKVRT_BK_NO_ACTIVATION), int32_t(RWKVRT_BK_TANH),
                              int32_t(RWKVRT_BK_SIGMOID), int32_t(RWKVRT_BK_RELU_SQUARE),
                              int32_t(RWKVRT_BK_V7_LOG_DECAY)})
            for (bool with_bias : {false, true}) {
              const std::string what = std::string(dtype_name(t)) + " N=" + std::to_string(N) +
                                       " M=" + std::to_string(M) + " act=" + std::to_string(act) +
                                       (with_bias ? " bias" : "");
              const Floats x = rnd.normal(M * K);
              Floats want(M * N);
              reference::matmul(x.data(), M, K, ref_w, want.data(), N, false);
              for (uint64_t m = 0; m < M; ++m)
                for (uint64_t n = 0; n < N; ++n) {
                  float& v = want[m * N + n];
                  if (with_bias) v += bias[n];
                  if (act != RWKVRT_BK_NO_ACTIVATION)
                    v = reference::apply_unary(static_cast<rwkvrt_bk_unary>(act), v);
                }
              const DeviceBuffer dx = r.upload(x), dy = r.poisoned(M * N);
              r.stream().matmul_act(dx.f32(), M, w, dy.f32(), with_bias ? dbias.f32() : nullptr,
                                    act);
              expect_close(r.download(dy, M * N), want, kReduction, what);
            }
        // A backend that offers the fused op refuses what it does not define.
        const rwkvrt_backend_v1& api = r.device()->api();
        if (RWKVRT_BACKEND_V1_HAS(&api, matmul_bias_act) && api.matmul_bias_act) {
          const DeviceBuffer dx = r.upload(rnd.normal(K)), dy = r.poisoned(N);
          rwkvrt_bk_matmul_args a{dx.f32(), 1, 0, w.get(), dy.f32(), 0, 1u};
          EXPECT_NE(api.matmul_bias_act(r.stream().raw(), &a, nullptr, RWKVRT_BK_TANH),
                    RWKVRT_BK_OK)
              << "accumulate with an epilogue";
          a.accumulate = 0;
          EXPECT_NE(api.matmul_bias_act(r.stream().raw(), &a, nullptr, 99), RWKVRT_BK_OK)
              << "activation 99";
        }
      }
  });
}

// `call` must be refused by the core with RWKVRT_ERR_INVALID_ARGUMENT and a message naming
// `needle`; `what` names the bad input for the failure message.
template <class Call>
void expect_invalid_argument(Call&& call, const char* needle, const std::string& what) {
  try {
    call();
    ADD_FAILURE() << what << " was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), RWKVRT_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

// A plugin entry's refusal: RWKVRT_BK_INVALID, and a last_error naming `needle`.
void expect_entry_refused(const rwkvrt_backend_v1& api, int rc, const char* needle) {
  EXPECT_EQ(rc, RWKVRT_BK_INVALID);
  EXPECT_NE(std::string(api.last_error()).find(needle), std::string::npos) << api.last_error();
}

// The channel mix's matmuls as one op, y (+)= W_value · relu(W_key · x)² (CUDA: GEMVs for
// M ≤ 8; from 256 rows the ReLU² inside the split of the value GEMM's input; the CPU through the
// core's fallback), against the reference matmuls; F = 100 pads the value matrix's rows.  A value
// matrix whose columns are not the key's rows is refused, by the core and by a plugin's entry.
TEST_F(BackendOps, ChannelMix) {
  for_each_backend([](Runner& r, Random& rnd) {
    const uint64_t C = 48, F = 100;
    for (rwkvrt_bk_dtype t : {RWKVRT_BK_F32, RWKVRT_BK_F16}) {
      const std::vector<uint8_t> ksrc = encode(t, rnd.normal(F * C, 0.0f, 0.2f)),
                                 vsrc = encode(t, rnd.normal(C * F, 0.0f, 0.2f));
      const PreparedWeight wk = prepare(r, "ffn.key", t, ksrc, F, C),
                           wv = prepare(r, "ffn.value", t, vsrc, C, F);
      const Floats kf = decode(t, ksrc, F * C), vf = decode(t, vsrc, C * F);
      for (uint64_t M : {1, 9, 300})
        for (bool accumulate : {false, true}) {
          const std::string what = std::string("channel_mix ") + dtype_name(t) +
                                   " M=" + std::to_string(M) + (accumulate ? " accumulate" : "");
          const Floats x = rnd.normal(M * C), y0 = rnd.normal(M * C);
          Floats hidden(M * F), want = y0;
          reference::matmul(x.data(), M, C, reference::DenseWeight{kf.data(), F, C}, hidden.data(),
                            F, false);
          for (float& h : hidden) h = reference::apply_unary(RWKVRT_BK_RELU_SQUARE, h);
          reference::matmul(hidden.data(), M, F, reference::DenseWeight{vf.data(), C, F},
                            want.data(), C, accumulate);
          const DeviceBuffer dx = r.upload(x), dy = r.upload(y0), dh = r.poisoned(M * F);
          r.stream().channel_mix(dx.f32(), M, wk, wv, dh.f32(), dy.f32(), accumulate);
          expect_close(r.download(dy, M * C), want, kReduction, what);
        }
      // Key and value swapped would be fine; the key twice is not (C ≠ F).
      const DeviceBuffer dx = r.upload(rnd.normal(C)), dy = r.poisoned(F), dh = r.poisoned(F);
      expect_invalid_argument(
          [&] { r.stream().channel_mix(dx.f32(), 1, wk, wk, dh.f32(), dy.f32(), false); },
          "columns", "a value matrix of the wrong width");
      const rwkvrt_backend_v1& api = r.stream().device().api();
      if (RWKVRT_BACKEND_V1_HAS(&api, channel_mix) && api.channel_mix) {
        const rwkvrt_bk_channel_mix_args bad{dx.f32(), 1,        0, wk.get(), wk.get(),
                                             dh.f32(), dy.f32(), 0, 0u};
        expect_entry_refused(api, api.channel_mix(r.stream().raw(), &bad), "columns");
        rwkvrt_bk_channel_mix_args null_out = bad;
        null_out.value = wv.get();
        null_out.y = nullptr;
        expect_entry_refused(api, api.channel_mix(r.stream().raw(), &null_out), "null");
        rwkvrt_bk_channel_mix_args short_rows = bad;
        short_rows.value = wv.get();
        short_rows.ldx = C - 1;
        expect_entry_refused(api, api.channel_mix(r.stream().raw(), &short_rows),
                             "leading dimension");
        rwkvrt_bk_channel_mix_args bad_flag = bad;
        bad_flag.value = wv.get();
        bad_flag.accumulate = 2;
        expect_entry_refused(api, api.channel_mix(r.stream().raw(), &bad_flag), "accumulate");
      }
    }
  });
}

// Independent matmuls as one op (CUDA: GEMVs of one storage and kernel shape share a launch):
// items of two storages, different shapes and epilogues, each against the reference.
TEST_F(BackendOps, MatmulGroup) {
  for_each_backend([](Runner& r, Random& rnd) {
    struct Spec {
      rwkvrt_bk_dtype t;
      uint64_t K, N;
      bool bias;
      int32_t act;
    };
    const Spec specs[] = {{RWKVRT_BK_F16, 96, 40, false, RWKVRT_BK_NO_ACTIVATION},
                          {RWKVRT_BK_F16, 96, 3000, true, RWKVRT_BK_SIGMOID},
                          {RWKVRT_BK_F32, 64, 17, false, RWKVRT_BK_TANH},
                          {RWKVRT_BK_F32, 64, 33, true, RWKVRT_BK_V7_LOG_DECAY},
                          {RWKVRT_BK_F16, 96, 40, false, RWKVRT_BK_RELU_SQUARE}};
    std::vector<std::vector<uint8_t>> srcs;
    std::vector<Floats> wfs, biases;
    std::vector<PreparedWeight> ws;
    std::vector<DeviceBuffer> dbias;
    for (const Spec& sp : specs) {
      srcs.push_back(encode(sp.t, rnd.normal(sp.N * sp.K, 0.0f, 0.1f)));
      ws.push_back(prepare(r, "group item", sp.t, srcs.back(), sp.N, sp.K));
      wfs.push_back(decode(sp.t, srcs.back(), sp.N * sp.K));
      biases.push_back(rnd.normal(sp.N));
      dbias.push_back(r.upload(biases.back()));
    }
    for (uint64_t M : {1, 3, 8, 9}) {
      std::vector<DeviceBuffer> dx, dy;
      std::vector<Floats> want;
      for (size_t i = 0; i < std::size(specs); ++i) {
        const Spec& sp = specs[i];
        const Floats x = rnd.normal(M * sp.K);
        Floats y(M * sp.N);
        reference::matmul(x.data(), M, sp.K, reference::DenseWeight{wfs[i].data(), sp.N, sp.K},
                          y.data(), sp.N, false);
        for (uint64_t m = 0; m < M; ++m)
          for (uint64_t n = 0; n < sp.N; ++n) {
            float& v = y[m * sp.N + n];
            if (sp.bias) v += biases[i][n];
            if (sp.act != RWKVRT_BK_NO_ACTIVATION)
              v = reference::apply_unary(static_cast<rwkvrt_bk_unary>(sp.act), v);
          }
        want.push_back(y);
        dx.push_back(r.upload(x));
        dy.push_back(r.poisoned(M * sp.N));
      }
      using Item = Stream::MatmulItem;
      auto item = [&](size_t i) {
        return Item{dx[i].f32(), M, &ws[i], dy[i].f32(), specs[i].bias ? dbias[i].f32() : nullptr,
                    specs[i].act};
      };
      r.stream().matmul_group({item(0), item(1), item(2), item(3), item(4)});
      for (size_t i = 0; i < std::size(specs); ++i)
        expect_close(r.download(dy[i], M * specs[i].N), want[i], kReduction,
                     "M=" + std::to_string(M) + " item " + std::to_string(i));
    }
    const rwkvrt_backend_v1& api = r.device()->api();
    if (RWKVRT_BACKEND_V1_HAS(&api, matmul_group) && api.matmul_group) {
      rwkvrt_bk_matmul_item items[RWKVRT_BK_MAX_GROUP + 1] = {};
      EXPECT_NE(api.matmul_group(r.stream().raw(), items, 0), RWKVRT_BK_OK) << "empty group";
      EXPECT_NE(api.matmul_group(r.stream().raw(), items, RWKVRT_BK_MAX_GROUP + 1), RWKVRT_BK_OK)
          << "oversized group";
      EXPECT_NE(api.matmul_group(r.stream().raw(), items, 1), RWKVRT_BK_OK) << "null weight";
    }
  });
}

TEST_F(BackendOps, MatmulBlockWeights) {
  for_each_backend([](Runner& r, Random& rnd) {
    for (rwkvrt_bk_dtype t :
         {RWKVRT_BK_Q4_0, RWKVRT_BK_Q4_1, RWKVRT_BK_Q5_0, RWKVRT_BK_Q5_1, RWKVRT_BK_Q8_0})
      for (auto [K, N] : {std::pair<uint64_t, uint64_t>{96, 45}, {320, 131}})
        check_matmul(r, rnd, {t, RWKVRT_BK_SAME, K, N}, kMs);
  });
}

// want_dtype other than SAME: the backend converts at load and reports what it kept.
TEST_F(BackendOps, MatmulConvertedWeights) {
  for_each_backend([](Runner& r, Random& rnd) {
    const std::vector<uint64_t> Ms = {1, 33};
    check_matmul(r, rnd, {RWKVRT_BK_F32, RWKVRT_BK_BF16, 100, 37}, Ms);
    check_matmul(r, rnd, {RWKVRT_BK_F32, RWKVRT_BK_F16, 100, 37}, Ms);
    check_matmul(r, rnd, {RWKVRT_BK_BF16, RWKVRT_BK_F32, 100, 37}, Ms);
    check_matmul(r, rnd, {RWKVRT_BK_F32, RWKVRT_BK_Q8_0, 128, 37}, Ms);
    check_matmul(r, rnd, {RWKVRT_BK_Q4_1, RWKVRT_BK_F32, 128, 37}, Ms);
  });
}

// A bf16 weight over 64 MiB as fp32 (the CPU backend's largest decoded panel) with a few rows
// past a whole panel, run with enough rows of x for the prefill path.
TEST_F(BackendOps, MatmulLargeWeight) {
  for_each_backend([](Runner& r, Random& rnd) {
    check_matmul(r, rnd, {RWKVRT_BK_BF16, RWKVRT_BK_SAME, 4096, 4100}, {9});
  });
}

// Thread counts that do not divide the rows evenly, on both matmul paths.
TEST_F(BackendOps, MatmulThreadCounts) {
  for (const BackendEntry& b : backends_) {
    for (int32_t threads : {1, 3}) {
      SCOPED_TRACE("backend " + b.name + ", threads " + std::to_string(threads) +
                   ", RWKVRT_TEST_SEED=" + std::to_string(seed_));
      Random rnd(seed_);
      Runner r(b, threads);
      check_matmul(r, rnd, {RWKVRT_BK_F32, RWKVRT_BK_SAME, 200, 301}, {1, 130});
      check_matmul(r, rnd, {RWKVRT_BK_BF16, RWKVRT_BK_SAME, 200, 301}, {2, 130});
    }
  }
}

// ---- element-wise ops --------------------------------------------------------------------------

const char* unary_name(rwkvrt_bk_unary op) {
  switch (op) {
    case RWKVRT_BK_SIGMOID:
      return "sigmoid";
    case RWKVRT_BK_TANH:
      return "tanh";
    case RWKVRT_BK_SILU:
      return "silu";
    case RWKVRT_BK_RELU_SQUARE:
      return "relu_square";
    case RWKVRT_BK_NEG_EXP:
      return "neg_exp";
    case RWKVRT_BK_V7_LOG_DECAY:
      return "v7_log_decay";
  }
  return "?";
}

TEST_F(BackendOps, Unary) {
  for_each_backend([](Runner& r, Random& rnd) {
    for (rwkvrt_bk_unary op : {RWKVRT_BK_SIGMOID, RWKVRT_BK_TANH, RWKVRT_BK_SILU,
                               RWKVRT_BK_RELU_SQUARE, RWKVRT_BK_NEG_EXP, RWKVRT_BK_V7_LOG_DECAY})
      for (uint64_t n : {1, 15, 16, 17, 1001, 100003})
        for (bool in_place : {false, true}) {
          const std::string what = std::string(unary_name(op)) + " n=" + std::to_string(n) +
                                   (in_place ? " in place" : "");
          Floats x = rnd.normal(n, 0.0f, 4.0f);
          // The edges of each function's range: zero, tiny, saturating and overflowing inputs.
          const float edges[] = {0.0f,  -0.0f,  1e-4f, -1e-4f, 0.6f,    -0.65f,
                                 20.0f, -20.0f, 90.0f, -90.0f, -120.0f, 1e-30f};
          for (size_t i = 0; i < std::size(edges) && i < n; ++i) x[(i * 7919) % n] = edges[i];
          Floats want(n);
          reference::unary(op, x.data(), want.data(), n);
          const DeviceBuffer dx = r.upload(x);
          const DeviceBuffer dy = in_place ? DeviceBuffer() : r.poisoned(n);
          float* y = in_place ? dx.f32() : dy.f32();
          r.stream().unary(op, dx.f32(), y, n);
          expect_close(r.download(in_place ? dx : dy, n), want, kTranscendental, what);
        }
  });
}

TEST_F(BackendOps, Binary) {
  for_each_backend([](Runner& r, Random& rnd) {
    for (rwkvrt_bk_binary op : {RWKVRT_BK_ADD, RWKVRT_BK_SUB, RWKVRT_BK_MUL})
      for (auto [M, C] : {std::pair<uint64_t, uint64_t>{1, 1}, {3, 17}, {130, 77}, {200, 701}})
        for (bool b_is_row : {false, true})
          for (int alias : {0, 1, 2}) {  // y separate, y = a, y = b (not with a row b)
            if (alias == 2 && b_is_row) continue;
            const std::string what = "binary op " + std::to_string(op) + " " + std::to_string(M) +
                                     "x" + std::to_string(C) + (b_is_row ? " row" : "") +
                                     " alias " + std::to_string(alias);
            const Floats a = rnd.normal(M * C), b = rnd.normal(b_is_row ? C : M * C);
            Floats want(M * C);
            reference::binary(op, a.data(), b.data(), want.data(), M, C, b_is_row);
            const DeviceBuffer da = r.upload(a), db = r.upload(b), dy = r.poisoned(M * C);
            const DeviceBuffer& out = alias == 1 ? da : alias == 2 ? db : dy;
            r.stream().binary(op, da.f32(), db.f32(), out.f32(), M, C, b_is_row);
            expect_close(r.download(out, M * C), want, kExact, what);
          }
  });
}

TEST_F(BackendOps, GatherRows) {
  for_each_backend([](Runner& r, Random& rnd) {
    for (auto [M, C] : {std::pair<uint64_t, uint64_t>{1, 37}, {33, 37}, {130, 1023}}) {
      const uint64_t rows = 50;
      const Floats table = rnd.normal(rows * C);
      std::vector<int32_t> ids(M);
      for (int32_t& id : ids) id = rnd.integer(0, int32_t(rows) - 1);
      Floats want(M * C);
      reference::gather_rows(table.data(), C, ids.data(), M, want.data());
      const DeviceBuffer dt = r.upload(table), dy = r.poisoned(M * C);
      const DeviceBuffer di = r.upload_bytes(ids.data(), ids.size() * sizeof(int32_t));
      r.stream().gather_rows(dt.f32(), C, static_cast<const int32_t*>(di.get()), M, dy.f32());
      expect_close(r.download(dy, M * C), want, kExact, "gather M=" + std::to_string(M));
    }
  });
}

// ---- norms -------------------------------------------------------------------------------------

TEST_F(BackendOps, LayerNorm) {
  for_each_backend([](Runner& r, Random& rnd) {
    for (uint64_t M : {1, 7, 130})
      for (uint64_t C : {17, 768})
        for (bool in_place : {false, true}) {
          const std::string what = "layer_norm M=" + std::to_string(M) + " C=" + std::to_string(C) +
                                   (in_place ? " in place" : "");
          // A mean far from zero against the spread, as residual streams have.
          const Floats x = rnd.normal(M * C, 3.0f, 0.5f);
          const Floats gamma = rnd.normal(C, 1.0f, 0.2f), beta = rnd.normal(C, 0.0f, 0.2f);
          Floats want(M * C);
          const rwkvrt_bk_norm_args ra{x.data(), want.data(),  M,           C,
                                       1,        gamma.data(), beta.data(), 1e-5f};
          reference::layer_norm(ra);
          const DeviceBuffer dx = r.upload(x), dg = r.upload(gamma), db = r.upload(beta);
          const DeviceBuffer dy = in_place ? DeviceBuffer() : r.poisoned(M * C);
          const DeviceBuffer& out = in_place ? dx : dy;
          r.stream().layer_norm(dx.f32(), out.f32(), M, C, dg.f32(), db.f32(), 1e-5f);
          expect_close(r.download(out, M * C), want, kReduction, what);
        }
  });
}

struct HeadShape {
  uint64_t H, N;
};
// Head sizes: a single head, the official 64, a small 16, and 20, which no vector width divides.
const std::vector<HeadShape> kHeads = {{1, 32}, {3, 64}, {2, 16}, {2, 20}};

std::string heads_name(const HeadShape& s) {
  return " H=" + std::to_string(s.H) + " N=" + std::to_string(s.N);
}

TEST_F(BackendOps, GroupNorm) {
  for_each_backend([](Runner& r, Random& rnd) {
    for (const HeadShape& hs : kHeads)
      for (uint64_t M : {1, 7, 130}) {
        const uint64_t C = hs.H * hs.N;
        const std::string what = "group_norm M=" + std::to_string(M) + heads_name(hs);
        const Floats x = rnd.normal(M * C, 0.5f, 2.0f);
        const Floats gamma = rnd.normal(C, 1.0f, 0.2f), beta = rnd.normal(C, 0.0f, 0.2f);
        Floats want(M * C);
        const rwkvrt_bk_norm_args ra{x.data(), want.data(),  M,           C,
                                     hs.H,     gamma.data(), beta.data(), 64e-5f};
        reference::group_norm(ra);
        const DeviceBuffer dx = r.upload(x), dg = r.upload(gamma), db = r.upload(beta);
        const DeviceBuffer dy = r.poisoned(M * C);
        r.stream().group_norm(dx.f32(), dy.f32(), M, C, hs.H, dg.f32(), db.f32(), 64e-5f);
        expect_close(r.download(dy, M * C), want, kReduction, what);
      }
  });
}

// ---- token shift and mix -----------------------------------------------------------------------

TEST_F(BackendOps, TokenShift) {
  for_each_backend([](Runner& r, Random& rnd) {
    for (uint64_t B : {1, 3})
      for (uint64_t T : {1, 5})
        for (uint64_t C : {37, 1000}) {
          const std::string what = "token_shift B=" + std::to_string(B) +
                                   " T=" + std::to_string(T) + " C=" + std::to_string(C);
          const Floats x = rnd.normal(B * T * C);
          States states(r, per_sequence(rnd, B, C, -1.0f, 1.0f));
          Floats want(B * T * C);
          reference::token_shift({x.data(), want.data(), B, T, C, states.host_ref()});
          const DeviceBuffer dx = r.upload(x), dp = r.poisoned(B * T * C);
          r.stream().token_shift({dx.f32(), dp.f32(), B, T, C, states.device_ref()});
          expect_close(r.download(dp, B * T * C), want, kExact, what);
          states.expect_matches_reference(kExact, what);
        }
  });
}

// LayerNorm + token shift + mix as one op (CUDA: one kernel; the three ops for C not a multiple
// of 4), against the reference ops in sequence; states unaligned.
TEST_F(BackendOps, NormShiftMix) {
  for_each_backend([](Runner& r, Random& rnd) {
    // CUDA: T = 1 one row-wide block per sequence for fewer sequences than SMs (B = 140 is
    // more), else tiles of 8 rows (T = 20: three tiles, the first writing a row of the last
    // into the state) with 1, 4 or a partial 4 float4 per thread (C = 64, 2048, 1028); C = 66
    // the separate ops.
    for (uint64_t B : {1, 3, 140})
      for (uint64_t T : {1, 4, 20})
        for (uint64_t C : {64, 2048, 66, 1028})
          for (uint32_t n_out : {1u, 6u}) {
            if (B > 3 && T > 1) continue;
            const std::string what = "norm_shift_mix B=" + std::to_string(B) +
                                     " T=" + std::to_string(T) + " C=" + std::to_string(C) +
                                     " n_out=" + std::to_string(n_out);
            const uint64_t M = B * T;
            const float eps = 1e-5f;
            const Floats x = rnd.normal(M * C, 3.0f, 2.0f), gamma = rnd.normal(C),
                         beta = rnd.normal(C), mix = rnd.uniform(n_out * C, 0.0f, 1.0f);
            States states(r, per_sequence(rnd, B, C, -1.0f, 1.0f));
            Floats xhat(M * C), prev(M * C), want(n_out * M * C);
            reference::layer_norm({x.data(), xhat.data(), M, C, 0, gamma.data(), beta.data(), eps});
            reference::token_shift({xhat.data(), prev.data(), B, T, C, states.host_ref()});
            reference::mix(
                {xhat.data(), prev.data(), M, C, n_out, mix.data(), nullptr, want.data()});
            const DeviceBuffer dx = r.upload(x), dg = r.upload(gamma), db = r.upload(beta),
                               dm = r.upload(mix), dout = r.poisoned(n_out * M * C),
                               dxhat = r.poisoned(M * C), dprev = r.poisoned(M * C);
            r.stream().norm_shift_mix({dx.f32(), B, T, C, dg.f32(), db.f32(), eps,
                                       states.device_ref(), n_out, dm.f32(), dout.f32()},
                                      dxhat.f32(), dprev.f32());
            expect_close(r.download(dout, n_out * M * C), want, kReduction, what);
            states.expect_matches_reference(kReduction, what);
          }
  });
}

TEST_F(BackendOps, Mix) {
  for_each_backend([](Runner& r, Random& rnd) {
    for (uint32_t n_out : {1u, 5u})
      for (bool extra : {false, true})
        for (auto [M, C] : {std::pair<uint64_t, uint64_t>{1, 37}, {7, 37}, {130, 768}}) {
          const std::string what = "mix n_out=" + std::to_string(n_out) + (extra ? " extra" : "") +
                                   " M=" + std::to_string(M) + " C=" + std::to_string(C);
          const Floats x = rnd.normal(M * C), prev = rnd.normal(M * C);
          const Floats mix = rnd.uniform(n_out * C, 0.0f, 1.0f);
          const Floats ex = extra ? rnd.normal(n_out * M * C, 0.0f, 0.3f) : Floats();
          Floats want(n_out * M * C);
          reference::mix({x.data(), prev.data(), M, C, n_out, mix.data(),
                          extra ? ex.data() : nullptr, want.data()});
          const DeviceBuffer dx = r.upload(x), dp = r.upload(prev), dm = r.upload(mix);
          const DeviceBuffer de = extra ? r.upload(ex) : DeviceBuffer();
          const DeviceBuffer dy = r.poisoned(n_out * M * C);
          r.stream().mix(
              {dx.f32(), dp.f32(), M, C, n_out, dm.f32(), extra ? de.f32() : nullptr, dy.f32()});
          expect_close(r.download(dy, n_out * M * C), want, kFewUlp, what);
        }
  });
}

// ---- WKV ---------------------------------------------------------------------------------------

// The inputs of one WKV call over B sequences of T tokens ([B][T][C] each).
struct Wkv4Inputs {
  Floats k, v, w, u;
};

Wkv4Inputs wkv4_inputs(Random& rnd, uint64_t B, uint64_t T, uint64_t C) {
  Wkv4Inputs in{rnd.normal(B * T * C), rnd.normal(B * T * C), rnd.normal(C, -1.0f, 1.0f),
                rnd.normal(C, 0.0f, 0.5f)};
  for (float& w : in.w) w = -std::exp(w);  // w = −exp(time_decay)
  return in;
}

// aa, bb, pp per sequence: a state some tokens in (pp finite) or fresh (pp = −1e30, aa = bb = 0).
std::vector<Floats> wkv4_states(Random& rnd, uint64_t B, uint64_t C) {
  std::vector<Floats> s;
  for (uint64_t b = 0; b < B; ++b) {
    Floats block(3 * C, 0.0f);
    if (b % 2 == 1) {
      for (uint64_t c = 0; c < C; ++c) block[2 * C + c] = -1e30f;
    } else {
      const Floats aa = rnd.normal(C), bb = rnd.uniform(C, 0.5f, 2.0f), pp = rnd.normal(C);
      std::copy(aa.begin(), aa.end(), block.begin());
      std::copy(bb.begin(), bb.end(), block.begin() + C);
      std::copy(pp.begin(), pp.end(), block.begin() + 2 * C);
    }
    s.push_back(block);
  }
  return s;
}

TEST_F(BackendOps, Wkv4) {
  for_each_backend([](Runner& r, Random& rnd) {
    for (uint64_t B : {1, 3})
      for (uint64_t T : {1, 5})
        for (uint64_t C : {37, 200}) {
          const std::string what =
              "wkv4 B=" + std::to_string(B) + " T=" + std::to_string(T) + " C=" + std::to_string(C);
          const Wkv4Inputs in = wkv4_inputs(rnd, B, T, C);
          States states(r, wkv4_states(rnd, B, C));
          Floats want(B * T * C);
          reference::wkv4({B, T, C, in.k.data(), in.v.data(), in.w.data(), in.u.data(), want.data(),
                           states.host_ref()});
          const DeviceBuffer dk = r.upload(in.k), dv = r.upload(in.v), dw = r.upload(in.w),
                             du = r.upload(in.u), dy = r.poisoned(B * T * C);
          r.stream().wkv4(
              {B, T, C, dk.f32(), dv.f32(), dw.f32(), du.f32(), dy.f32(), states.device_ref()});
          expect_close(r.download(dy, B * T * C), want, kRecurrence, what);
          states.expect_matches_reference(kRecurrence, what);
        }
  });
}

struct Wkv5Inputs {
  Floats r, k, v, log_decay, u;
};

Wkv5Inputs wkv5_inputs(Random& rnd, uint64_t B, uint64_t T, uint64_t C, bool per_token) {
  Wkv5Inputs in{rnd.normal(B * T * C, 0.0f, 0.5f), rnd.normal(B * T * C, 0.0f, 0.5f),
                rnd.normal(B * T * C), rnd.normal(per_token ? B * T * C : C, -1.0f, 1.0f),
                rnd.normal(C, 0.0f, 0.5f)};
  for (float& l : in.log_decay) l = -std::exp(l);  // λ = −exp(time_decay)
  return in;
}

TEST_F(BackendOps, Wkv5AndWkv6) {
  for_each_backend([](Runner& r, Random& rnd) {
    for (bool per_token : {false, true})
      for (const HeadShape& hs : kHeads)
        for (uint64_t B : {1, 3})
          for (uint64_t T : {1, 5, 70}) {  // 70: staged chunks of 16 tokens, a partial last one
            const uint64_t H = hs.H, N = hs.N, C = H * N;
            const std::string what = std::string(per_token ? "wkv6" : "wkv5") + heads_name(hs) +
                                     " B=" + std::to_string(B) + " T=" + std::to_string(T);
            const Wkv5Inputs in = wkv5_inputs(rnd, B, T, C, per_token);
            States states(r, per_sequence(rnd, B, H * N * N, -1.0f, 1.0f));
            Floats want(B * T * C);
            reference::wkv5({B, T, H, N, in.r.data(), in.k.data(), in.v.data(), in.log_decay.data(),
                             per_token, in.u.data(), want.data(), states.host_ref()});
            const DeviceBuffer dr = r.upload(in.r), dk = r.upload(in.k), dv = r.upload(in.v),
                               dl = r.upload(in.log_decay), du = r.upload(in.u),
                               dy = r.poisoned(B * T * C);
            r.stream().wkv5({B, T, H, N, dr.f32(), dk.f32(), dv.f32(), dl.f32(), per_token,
                             du.f32(), dy.f32(), states.device_ref()});
            expect_close(r.download(dy, B * T * C), want, kRecurrence, what);
            states.expect_matches_reference(kRecurrence, what);
          }
  });
}

struct Wkv7Inputs {
  Floats r, log_decay, k, v, kappa, a;
};

// κ is L2-normalised per head, a ∈ (0, 1), λ = −0.606531·σ(z) ∈ (−0.61, 0), as in a v7 model.
Wkv7Inputs wkv7_inputs(Random& rnd, uint64_t M, uint64_t H, uint64_t N) {
  const uint64_t C = H * N;
  Wkv7Inputs in{rnd.normal(M * C, 0.0f, 0.5f),
                rnd.normal(M * C),
                rnd.normal(M * C, 0.0f, 0.5f),
                rnd.normal(M * C),
                rnd.normal(M * C),
                rnd.uniform(M * C, 0.0f, 1.0f)};
  for (float& l : in.log_decay) l = -0.606531f / (1.0f + std::exp(-l));
  for (uint64_t m = 0; m < M * H; ++m) {
    double norm2 = 0.0;
    for (uint64_t i = 0; i < N; ++i) norm2 += double(in.kappa[m * N + i]) * in.kappa[m * N + i];
    for (uint64_t i = 0; i < N; ++i)
      in.kappa[m * N + i] = float(in.kappa[m * N + i] / std::sqrt(norm2));
  }
  return in;
}

// Runs the backend's wkv7 over [t0, t0 + T) of inputs laid out [B][T_all][C].
void run_wkv7(Runner& r, const Wkv7Inputs& in, uint64_t B, uint64_t T_all, uint64_t t0, uint64_t T,
              uint64_t H, uint64_t N, const rwkvrt_bk_state_ref& state, Floats& y_all) {
  const uint64_t C = H * N;
  auto slice = [&](const Floats& v) {
    Floats s(B * T * C);
    for (uint64_t b = 0; b < B; ++b)
      std::copy_n(v.begin() + (b * T_all + t0) * C, T * C, s.begin() + b * T * C);
    return s;
  };
  const DeviceBuffer dr = r.upload(slice(in.r)), dl = r.upload(slice(in.log_decay)),
                     dk = r.upload(slice(in.k)), dv = r.upload(slice(in.v)),
                     dkap = r.upload(slice(in.kappa)), da = r.upload(slice(in.a)),
                     dy = r.poisoned(B * T * C);
  r.stream().wkv7(
      {B, T, H, N, dr.f32(), dl.f32(), dk.f32(), dv.f32(), dkap.f32(), da.f32(), dy.f32(), state});
  const Floats y = r.download(dy, B * T * C);
  for (uint64_t b = 0; b < B; ++b)
    std::copy_n(y.begin() + b * T * C, T * C, y_all.begin() + (b * T_all + t0) * C);
}

TEST_F(BackendOps, Wkv7) {
  for_each_backend([](Runner& r, Random& rnd) {
    for (const HeadShape& hs : kHeads)
      for (uint64_t B : {1, 3})
        for (uint64_t T : {1, 5, 20, 70}) {  // 20: several staged chunks; 70: CUDA's chunked form
          const uint64_t H = hs.H, N = hs.N, C = H * N;
          const std::string what =
              "wkv7" + heads_name(hs) + " B=" + std::to_string(B) + " T=" + std::to_string(T);
          const Wkv7Inputs in = wkv7_inputs(rnd, B * T, H, N);
          States states(r, per_sequence(rnd, B, H * N * N, -0.5f, 0.5f));
          Floats want(B * T * C);
          reference::wkv7({B, T, H, N, in.r.data(), in.log_decay.data(), in.k.data(), in.v.data(),
                           in.kappa.data(), in.a.data(), want.data(), states.host_ref()});
          Floats got(B * T * C, kNaN);
          run_wkv7(r, in, B, T, 0, T, H, N, states.device_ref(), got);
          expect_close(got, want, kRecurrence, what);
          states.expect_matches_reference(kRecurrence, what);
        }
  });
}

// Running T = 5 and then T = 3 from the state left behind equals running T = 8 at once.
TEST_F(BackendOps, StateContinuation) {
  for_each_backend([](Runner& r, Random& rnd) {
    const uint64_t B = 2, H = 3, N = 64, C = H * N, T = 8;
    {
      const Wkv7Inputs in = wkv7_inputs(rnd, B * T, H, N);
      const std::vector<Floats> s0 = per_sequence(rnd, B, H * N * N, -0.5f, 0.5f);
      States whole(r, s0), split(r, s0);
      Floats want(B * T * C);
      reference::wkv7({B, T, H, N, in.r.data(), in.log_decay.data(), in.k.data(), in.v.data(),
                       in.kappa.data(), in.a.data(), want.data(), split.host_ref()});
      Floats y_whole(B * T * C, kNaN), y_split(B * T * C, kNaN);
      run_wkv7(r, in, B, T, 0, T, H, N, whole.device_ref(), y_whole);
      run_wkv7(r, in, B, T, 0, 5, H, N, split.device_ref(), y_split);
      run_wkv7(r, in, B, T, 5, 3, H, N, split.device_ref(), y_split);
      // The same per-token arithmetic either way: equal up to a differently ordered rounding.
      expect_close(y_split, y_whole, kFewUlp, "wkv7 5+3 tokens against 8");
      expect_close(y_split, want, kRecurrence, "wkv7 5+3 tokens");
      split.expect_matches_reference(kRecurrence, "wkv7 5+3 tokens");
    }
    {
      const Wkv5Inputs in = wkv5_inputs(rnd, B, T, C, true);
      States states(r, per_sequence(rnd, B, H * N * N, -1.0f, 1.0f));
      Floats want(B * T * C);
      reference::wkv5({B, T, H, N, in.r.data(), in.k.data(), in.v.data(), in.log_decay.data(), 1,
                       in.u.data(), want.data(), states.host_ref()});
      Floats got(B * T * C, kNaN);
      for (auto [t0, len] : {std::pair<uint64_t, uint64_t>{0, 5}, {5, 3}}) {
        // Structured bindings are copied explicitly: lambdas may not capture them before C++20.
        auto slice = [&, t0 = t0, len = len](const Floats& v) {
          Floats s(B * len * C);
          for (uint64_t b = 0; b < B; ++b)
            std::copy_n(v.begin() + (b * T + t0) * C, len * C, s.begin() + b * len * C);
          return s;
        };
        const DeviceBuffer dr = r.upload(slice(in.r)), dk = r.upload(slice(in.k)),
                           dv = r.upload(slice(in.v)), dl = r.upload(slice(in.log_decay)),
                           du = r.upload(in.u), dy = r.poisoned(B * len * C);
        r.stream().wkv5({B, len, H, N, dr.f32(), dk.f32(), dv.f32(), dl.f32(), 1, du.f32(),
                         dy.f32(), states.device_ref()});
        const Floats y = r.download(dy, B * len * C);
        for (uint64_t b = 0; b < B; ++b)
          std::copy_n(y.begin() + b * len * C, len * C, got.begin() + (b * T + t0) * C);
      }
      expect_close(got, want, kRecurrence, "wkv6 5+3 tokens");
      states.expect_matches_reference(kRecurrence, "wkv6 5+3 tokens");
    }
    {
      const uint64_t Cv4 = 37;
      const Wkv4Inputs in = wkv4_inputs(rnd, B, T, Cv4);
      States states(r, wkv4_states(rnd, B, Cv4));
      Floats want(B * T * Cv4);
      reference::wkv4({B, T, Cv4, in.k.data(), in.v.data(), in.w.data(), in.u.data(), want.data(),
                       states.host_ref()});
      Floats got(B * T * Cv4, kNaN);
      for (auto [t0, len] : {std::pair<uint64_t, uint64_t>{0, 5}, {5, 3}}) {
        // Structured bindings are copied explicitly: lambdas may not capture them before C++20.
        auto slice = [&, t0 = t0, len = len](const Floats& v) {
          Floats s(B * len * Cv4);
          for (uint64_t b = 0; b < B; ++b)
            std::copy_n(v.begin() + (b * T + t0) * Cv4, len * Cv4, s.begin() + b * len * Cv4);
          return s;
        };
        const DeviceBuffer dk = r.upload(slice(in.k)), dv = r.upload(slice(in.v)),
                           dw = r.upload(in.w), du = r.upload(in.u), dy = r.poisoned(B * len * Cv4);
        r.stream().wkv4(
            {B, len, Cv4, dk.f32(), dv.f32(), dw.f32(), du.f32(), dy.f32(), states.device_ref()});
        const Floats y = r.download(dy, B * len * Cv4);
        for (uint64_t b = 0; b < B; ++b)
          std::copy_n(y.begin() + b * len * Cv4, len * Cv4, got.begin() + (b * T + t0) * Cv4);
      }
      expect_close(got, want, kRecurrence, "wkv4 5+3 tokens");
      states.expect_matches_reference(kRecurrence, "wkv4 5+3 tokens");
    }
  });
}

// ---- v7 key preparation and bonus --------------------------------------------------------------

TEST_F(BackendOps, V7KeyPrep) {
  for_each_backend([](Runner& r, Random& rnd) {
    for (const HeadShape& hs : kHeads)
      for (uint64_t M : {1, 7, 130}) {
        const uint64_t C = hs.H * hs.N;
        const std::string what = "v7_key_prep M=" + std::to_string(M) + heads_name(hs);
        const Floats k = rnd.normal(M * C), a = rnd.uniform(M * C, 0.0f, 1.0f);
        const Floats k_k = rnd.normal(C, 1.0f, 0.3f), k_a = rnd.normal(C, 1.0f, 0.3f);
        Floats kappa(M * C), ktilde(M * C);
        reference::v7_key_prep({M, hs.H, hs.N, k.data(), a.data(), k_k.data(), k_a.data(),
                                kappa.data(), ktilde.data()});
        const DeviceBuffer dk = r.upload(k), da = r.upload(a), dkk = r.upload(k_k),
                           dka = r.upload(k_a), dkap = r.poisoned(M * C), dkt = r.poisoned(M * C);
        r.stream().v7_key_prep(
            {M, hs.H, hs.N, dk.f32(), da.f32(), dkk.f32(), dka.f32(), dkap.f32(), dkt.f32()});
        // κ divides by a norm summed over N terms: a reduction.  k̃ is two roundings per element.
        expect_close(r.download(dkap, M * C), kappa, kReduction, what + " kappa");
        expect_close(r.download(dkt, M * C), ktilde, kFewUlp, what + " ktilde");
      }
  });
}

// Key preparation, value residual and WKV-7 as one op (CUDA: one kernel for T = 1 and head
// sizes 16/32/64/128 unless there are many heads, the separate kernels otherwise, the chunked WKV
// from 64 tokens with its scratch carved next to κ's; the CPU through the core's fallback), against
// the reference's v7_key_prep, v + (v_first − v)·gate and wkv7 in sequence.
TEST_F(BackendOps, V7Wkv) {
  for_each_backend([](Runner& r, Random& rnd) {
    for (const HeadShape& hs : kHeads)
      for (uint64_t B : {1, 3, 400})
        for (uint64_t T : {1, 5, 70})
          for (bool residual : {false, true}) {
            // B = 400: a batched decode step with enough heads (H = 3) for CUDA's separate key
            // preparation and four value rows per lane group of the step kernel.
            if (B > 3 && T > 1) continue;
            const uint64_t H = hs.H, N = hs.N, C = H * N, M = B * T;
            const std::string what = "v7_wkv" + heads_name(hs) + " B=" + std::to_string(B) +
                                     " T=" + std::to_string(T) +
                                     (residual ? " with value residual" : "");
            const Wkv7Inputs in = wkv7_inputs(rnd, M, H, N);  // .kappa unused: k is raw here
            const Floats k_k = rnd.normal(C, 1.0f, 0.3f), k_a = rnd.normal(C, 1.0f, 0.3f),
                         v_first = rnd.normal(M * C), gate = rnd.uniform(M * C, 0.0f, 1.0f);
            States states(r, per_sequence(rnd, B, H * N * N, -0.5f, 0.5f));
            Floats kappa(M * C), ktilde(M * C), v_used = in.v, want(M * C);
            reference::v7_key_prep({M, H, N, in.k.data(), in.a.data(), k_k.data(), k_a.data(),
                                    kappa.data(), ktilde.data()});
            if (residual)
              for (uint64_t i = 0; i < M * C; ++i)
                v_used[i] = std::fmaf(v_first[i] - in.v[i], gate[i], in.v[i]);
            reference::wkv7({B, T, H, N, in.r.data(), in.log_decay.data(), ktilde.data(),
                             v_used.data(), kappa.data(), in.a.data(), want.data(),
                             states.host_ref()});
            const DeviceBuffer dr = r.upload(in.r), dl = r.upload(in.log_decay),
                               dk = r.upload(in.k), dv = r.upload(in.v), da = r.upload(in.a),
                               dkk = r.upload(k_k), dka = r.upload(k_a), dvf = r.upload(v_first),
                               dg = r.upload(gate), dkt = r.poisoned(M * C),
                               dvo = r.poisoned(M * C), dy = r.poisoned(M * C),
                               dkap = r.poisoned(M * C);
            r.stream().v7_wkv(
                {B, T, H, N, dr.f32(), dl.f32(), dk.f32(), dv.f32(), da.f32(), dkk.f32(), dka.f32(),
                 residual ? dvf.f32() : nullptr, residual ? dg.f32() : nullptr, dkt.f32(),
                 residual ? dvo.f32() : nullptr, dy.f32(), states.device_ref()},
                dkap.f32());
            // κ carries a norm (a reduction) into the recurrence.
            expect_close(r.download(dy, M * C), want, kRecurrence, what + " y");
            states.expect_matches_reference(kRecurrence, what);
            expect_close(r.download(dkt, M * C), ktilde, kFewUlp, what + " ktilde");
            if (residual) expect_close(r.download(dvo, M * C), v_used, kFewUlp, what + " v'");
          }
  });
}

// An inconsistent value residual (a gate without v_first, or no v_out for v') is refused with a
// message, by the core before any backend work and by a plugin's own v7_wkv entry.
TEST_F(BackendOps, V7WkvRefusesAnInconsistentValueResidual) {
  for_each_backend([](Runner& r, Random& rnd) {
    const uint64_t B = 1, T = 1, H = 1, N = 16, C = H * N;
    const DeviceBuffer dv = r.upload(rnd.normal(B * T * C)), out = r.poisoned(B * T * C);
    States states(r, per_sequence(rnd, B, H * N * N, -0.5f, 0.5f));
    const float* v = dv.f32();
    float* o = out.f32();
    const rwkvrt_bk_v7_wkv_args gate_only{
        B, T, H, N, v, v, v, v, v, v, v, nullptr, v, o, o, o, states.device_ref()};
    const rwkvrt_bk_v7_wkv_args no_out{
        B, T, H, N, v, v, v, v, v, v, v, v, v, o, nullptr, o, states.device_ref()};
    for (const rwkvrt_bk_v7_wkv_args* bad : {&gate_only, &no_out}) {
      expect_invalid_argument([&] { r.stream().v7_wkv(*bad, o); }, "v_first",
                              "an inconsistent value residual");
      const rwkvrt_backend_v1& api = r.stream().device().api();
      if (RWKVRT_BACKEND_V1_HAS(&api, v7_wkv) && api.v7_wkv) {
        expect_entry_refused(api, api.v7_wkv(r.stream().raw(), bad), "v_first");
      }
    }
    states.expect_matches_reference(kExact, "state after refused v7_wkv calls");
  });
}

TEST_F(BackendOps, V7Bonus) {
  for_each_backend([](Runner& r, Random& rnd) {
    for (const HeadShape& hs : kHeads)
      for (uint64_t M : {1, 7, 130}) {
        const uint64_t C = hs.H * hs.N;
        const std::string what = "v7_bonus M=" + std::to_string(M) + heads_name(hs);
        const Floats y0 = rnd.normal(M * C), rr = rnd.normal(M * C), kt = rnd.normal(M * C),
                     v = rnd.normal(M * C), r_k = rnd.normal(C, 0.0f, 0.3f);
        Floats want = y0;
        reference::v7_bonus(
            {M, hs.H, hs.N, want.data(), rr.data(), kt.data(), v.data(), r_k.data()});
        const DeviceBuffer dy = r.upload(y0), dr = r.upload(rr), dkt = r.upload(kt),
                           dv = r.upload(v), drk = r.upload(r_k);
        r.stream().v7_bonus({M, hs.H, hs.N, dy.f32(), dr.f32(), dkt.f32(), dv.f32(), drk.f32()});
        // y + s·v with s a sum over N terms: a reduction.
        expect_close(r.download(dy, M * C), want, kReduction, what);
      }
  });
}

// GroupNorm + bonus + gate as one op (CUDA: one warp per (row, head)), against the reference's
// group_norm, v7_bonus and binary MUL in sequence.
TEST_F(BackendOps, V7Output) {
  for_each_backend([](Runner& r, Random& rnd) {
    for (const HeadShape& hs : kHeads)
      for (uint64_t M : {1, 7, 130}) {
        const uint64_t C = hs.H * hs.N;
        const float eps = 64e-5f;
        const std::string what = "v7_output M=" + std::to_string(M) + heads_name(hs);
        const Floats y0 = rnd.normal(M * C, 1.0f, 3.0f), rr = rnd.normal(M * C),
                     kt = rnd.normal(M * C), v = rnd.normal(M * C), r_k = rnd.normal(C, 0.0f, 0.3f),
                     g = rnd.normal(M * C), gamma = rnd.normal(C), beta = rnd.normal(C);
        Floats want = y0;
        reference::group_norm(
            {want.data(), want.data(), M, C, hs.H, gamma.data(), beta.data(), eps});
        reference::v7_bonus(
            {M, hs.H, hs.N, want.data(), rr.data(), kt.data(), v.data(), r_k.data()});
        reference::binary(RWKVRT_BK_MUL, want.data(), g.data(), want.data(), M, C, false);
        const DeviceBuffer dy = r.upload(y0), dr = r.upload(rr), dkt = r.upload(kt),
                           dv = r.upload(v), drk = r.upload(r_k), dg = r.upload(g),
                           dgm = r.upload(gamma), dbt = r.upload(beta);
        r.stream().v7_output({M, hs.H, hs.N, dy.f32(), dgm.f32(), dbt.f32(), eps, dr.f32(),
                              dkt.f32(), dv.f32(), drk.f32(), dg.f32()});
        expect_close(r.download(dy, M * C), want, kReduction, what);
      }
  });
}

}  // namespace
}  // namespace rwkvrt
