// CUDA backend micro-benchmark: the roofline (device-to-device copy bandwidth), GEMV bandwidth at
// decode shapes, GEMM rate at prefill shapes, WKV-7 and WKV-5/6 time per token for decode, batched
// decode and long prefill, and end-to-end decode/prefill/batched throughput of synthetic RWKV-7
// models through the core.  Everything runs through the plugin ABI (and the core) as the runtime
// does.
//
// Timing: the measured ops are captured into a graph and the graph replayed; each figure is the
// median of several replays timed by the host around a stream synchronisation, divided by the
// ops per replay.  Inputs that fit in L2 (60 MB on an H200) are rotated among enough copies to
// stream from memory.  Prints one JSON object per measurement, then a summary table.
//
// Usage: rwkvrt_cuda_bench [--models 1.5B,7.2B | --models none] [--quick] [--wkv7-only]
// [--wkv5-only]   (either --wkv*-only runs just those WKV cases; both run both)
// Without --quick each model is also loaded a second time with the opt-in rounded-activation
// GEMMs (RWKVRT_CUDA_FAST_GEMM_ROWS=256) for its prefill and large-batch figures.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/backend_registry.h"
#include "core/device.h"
#include "dtype_convert.h"
#include "model/model.h"
#include "model/synthetic_model.h"
#include "session/batch_decoder.h"
#include "session/session.h"

namespace rwkvrt {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

struct Row {
  std::string group, name;
  double value;
  std::string unit, note;
};
std::vector<Row> g_rows;

void report(const std::string& group, const std::string& name, double value,
            const std::string& unit, const std::string& note = "") {
  g_rows.push_back({group, name, value, unit, note});
  std::printf("{\"group\": \"%s\", \"name\": \"%s\", \"value\": %.6g, \"unit\": \"%s\"%s%s%s}\n",
              group.c_str(), name.c_str(), value, unit.c_str(),
              note.empty() ? "" : ", \"note\": \"", note.c_str(), note.empty() ? "" : "\"");
  std::fflush(stdout);
}

// Seconds per op: `enqueue` is captured once (it enqueues `ops` ops), then replayed.
double time_graph(Stream& s, const std::function<void()>& enqueue, int ops, int reps) {
  s.capture_begin();
  enqueue();
  const CapturedGraph g = s.capture_end();
  s.launch(g);
  s.synchronize();
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Clock::now();
    s.launch(g);
    s.synchronize();
    t.push_back(seconds_since(t0));
  }
  return median(t) / ops;
}

// Cheap random f16 weights in ±[0.5, 1) (no subnormals, no specials).
std::vector<uint16_t> random_half(uint64_t n, uint64_t seed) {
  std::vector<uint16_t> v(n);
  uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
  for (auto& h : v) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    h = uint16_t(((x >> 63) << 15) | 0x3800u | ((x >> 40) & 0x3ffu));
  }
  return v;
}

DeviceBuffer upload_floats(const std::shared_ptr<Device>& dev, Stream& s,
                           const std::vector<float>& v) {
  DeviceBuffer b(dev, v.size() * sizeof(float));
  s.upload(b.get(), v.data(), v.size() * sizeof(float));
  return b;
}

std::vector<float> normal(uint64_t n, uint64_t seed, float sd = 1.0f) {
  std::mt19937_64 g(seed);
  std::normal_distribution<float> d(0.0f, sd);
  std::vector<float> v(n);
  for (float& x : v) x = d(g);
  return v;
}

PreparedWeight make_weight(const std::shared_ptr<Device>& dev, uint64_t N, uint64_t K,
                           rwkvrt_bk_dtype dt, uint64_t seed) {
  std::vector<uint16_t> h = random_half(N * K, seed);
  rwkvrt_bk_weight_desc d{};
  d.struct_size = sizeof(d);
  d.name = "bench";
  d.rows = N;
  d.cols = K;
  d.src_dtype = RWKVRT_BK_F16;
  d.src = h.data();
  d.want_dtype = dt;
  return PreparedWeight(dev, d);
}

// The roofline: the better of a 1 GiB device-to-device memcpy and a streaming kernel that reads
// and writes 2 GiB (unary ReLU², pure bandwidth), counting bytes read plus bytes written.
double bench_copy(const std::shared_ptr<Device>& dev, Stream& s) {
  const uint64_t bytes = 1ull << 30;
  DeviceBuffer a(dev, 2 * bytes), b(dev, 2 * bytes);
  s.fill_zero(a.get(), 2 * bytes);
  s.fill_zero(b.get(), 2 * bytes);
  const double t_copy = time_graph(
      s,
      [&] {
        for (int i = 0; i < 4; ++i) s.copy(b.get(), a.get(), bytes);
      },
      4, 7);
  const double copy_gbs = 2.0 * double(bytes) / t_copy / 1e9;
  report("roofline", "memcpy d2d 1 GiB (read+write)", copy_gbs, "GB/s");
  const uint64_t n = 2 * bytes / sizeof(float);
  const double t_kernel = time_graph(
      s,
      [&] {
        for (int i = 0; i < 4; ++i) s.unary(RWKVRT_BK_RELU_SQUARE, a.f32(), b.f32(), n);
      },
      4, 7);
  const double kernel_gbs = 2.0 * double(n * sizeof(float)) / t_kernel / 1e9;
  report("roofline", "copy kernel 2 GiB (read+write)", kernel_gbs, "GB/s");
  return std::max(copy_gbs, kernel_gbs);
}

void bench_gemv(const std::shared_ptr<Device>& dev, Stream& s, double copy_gbs, bool quick) {
  struct Shape {
    uint64_t N, K;
  };
  const std::vector<Shape> shapes = {{2048, 2048}, {8192, 2048},  {2048, 8192},  {65536, 2048},
                                     {4096, 4096}, {14336, 4096}, {4096, 14336}, {65536, 4096}};
  for (rwkvrt_bk_dtype dt : {RWKVRT_BK_F16, RWKVRT_BK_BF16, RWKVRT_BK_F32}) {
    for (const Shape& sh : shapes) {
      if (dt != RWKVRT_BK_F16 && (sh.N != 4096 || sh.K != 4096)) continue;
      if (quick && sh.N == 65536 && sh.K == 4096) continue;
      const uint64_t elem = dt == RWKVRT_BK_F32 ? 4 : 2;
      const uint64_t bytes = sh.N * sh.K * elem;
      const uint64_t copies = std::max<uint64_t>(1, (512ull << 20) / bytes);
      std::vector<PreparedWeight> ws;
      for (uint64_t c = 0; c < copies; ++c) ws.push_back(make_weight(dev, sh.N, sh.K, dt, c + 1));
      const DeviceBuffer x = upload_floats(dev, s, normal(sh.K * 8, 3));
      DeviceBuffer y(dev, sh.N * 8 * sizeof(float));
      for (uint64_t M : {1, 8}) {
        if (M == 8 && dt != RWKVRT_BK_F16) continue;
        const int per = int(std::max<uint64_t>(1, 64 / copies));
        const double t = time_graph(
            s,
            [&] {
              for (int r = 0; r < per; ++r)
                for (auto& w : ws) s.matmul(x.f32(), M, w, y.f32());
            },
            int(copies) * per, 7);
        const double gbs = double(bytes) / t / 1e9;
        const char* tn = dt == RWKVRT_BK_F16 ? "f16" : dt == RWKVRT_BK_BF16 ? "bf16" : "f32";
        char name[96];
        std::snprintf(name, sizeof(name), "%s M=%llu N=%llu K=%llu", tn, (unsigned long long)M,
                      (unsigned long long)sh.N, (unsigned long long)sh.K);
        char note[64];
        std::snprintf(note, sizeof(note), "%.1f us, %.0f%% of copy", t * 1e6,
                      100.0 * gbs / copy_gbs);
        report("gemv", name, gbs, "GB/s", note);
      }
    }
  }
}

void bench_gemm(const std::shared_ptr<Device>& dev, Stream& s, bool quick) {
  struct Case {
    rwkvrt_bk_dtype dt;
    uint64_t M, N, K;
  };
  std::vector<Case> cases = {{RWKVRT_BK_F16, 4096, 2048, 2048},  {RWKVRT_BK_F16, 4096, 8192, 2048},
                             {RWKVRT_BK_F16, 4096, 2048, 8192},  {RWKVRT_BK_F16, 4096, 4096, 4096},
                             {RWKVRT_BK_F16, 4096, 14336, 4096}, {RWKVRT_BK_F16, 4096, 4096, 14336},
                             {RWKVRT_BK_F16, 4096, 65536, 2048}, {RWKVRT_BK_BF16, 4096, 4096, 4096},
                             {RWKVRT_BK_F32, 4096, 4096, 4096},  {RWKVRT_BK_F16, 128, 4096, 4096},
                             {RWKVRT_BK_F16, 256, 4096, 4096},   {RWKVRT_BK_F16, 1024, 4096, 4096}};
  if (quick) cases.resize(4);
  for (const Case& c : cases) {
    const PreparedWeight w = make_weight(dev, c.N, c.K, c.dt, 9);
    const DeviceBuffer x = upload_floats(dev, s, normal(c.M * c.K, 4));
    DeviceBuffer y(dev, c.M * c.N * sizeof(float));
    const double t = time_graph(
        s,
        [&] {
          for (int i = 0; i < 3; ++i) s.matmul(x.f32(), c.M, w, y.f32());
        },
        3, 5);
    const double tflops = 2.0 * double(c.M) * double(c.N) * double(c.K) / t / 1e12;
    const char* tn = c.dt == RWKVRT_BK_F16 ? "f16" : c.dt == RWKVRT_BK_BF16 ? "bf16" : "f32";
    char name[96];
    std::snprintf(name, sizeof(name), "%s M=%llu N=%llu K=%llu", tn, (unsigned long long)c.M,
                  (unsigned long long)c.N, (unsigned long long)c.K);
    char note[64];
    std::snprintf(note, sizeof(note), "%.1f us", t * 1e6);
    report("gemm", name, tflops, "TFLOP/s", note);
  }
}

// B zeroed states of `bytes_each` bytes in one allocation, and the device array of their bases
// that a state reference points at.
struct BenchStates {
  BenchStates(const std::shared_ptr<Device>& dev, Stream& s, uint64_t B, uint64_t bytes_each)
      : bytes(B * bytes_each), states(dev, bytes), bases(dev, B * sizeof(void*)) {
    s.fill_zero(states.get(), bytes);
    std::vector<void*> host(B);
    for (uint64_t b = 0; b < B; ++b) host[b] = static_cast<char*>(states.get()) + b * bytes_each;
    s.upload(bases.get(), host.data(), B * sizeof(void*));
  }
  rwkvrt_bk_state_ref ref() const { return {static_cast<void* const*>(bases.get()), 0}; }
  uint64_t bytes;
  DeviceBuffer states, bases;
};

// A WKV row: time per token of a call over `tokens` tokens taking `seconds`, and the state
// traffic (every state read and written once per call).
// One WKV row, named "<op> H=… N=64 B=… T=…", per token of the B·T.
void report_wkv(const char* group, const char* op, uint64_t H, uint64_t B, uint64_t T,
                double seconds, uint64_t state_bytes) {
  char name[96];
  std::snprintf(name, sizeof(name), "%s H=%llu N=64 B=%llu T=%llu", op, (unsigned long long)H,
                (unsigned long long)B, (unsigned long long)T);
  const uint64_t tokens = B * T;
  char note[96];
  std::snprintf(note, sizeof(note), "%.1f us per call, state traffic %.0f GB/s", seconds * 1e6,
                2.0 * double(state_bytes) / seconds / 1e9);
  report(group, name, seconds / double(tokens) * 1e6, "us/token", note);
}

// WKV7 on H heads of 64 for B sequences of T tokens, states contiguous.  fused: the v7_wkv op
// of a decode step from layer 1 on (key preparation and value residual included), as the model
// calls it.
void bench_wkv7_case(const std::shared_ptr<Device>& dev, Stream& s, uint64_t B, uint64_t T,
                     uint64_t H, bool fused = false) {
  const uint64_t N = 64, C = H * N, M = B * T;
  std::vector<float> r = normal(M * C, 1, 0.5f), ld = normal(M * C, 2), k = normal(M * C, 3, 0.5f),
                     v = normal(M * C, 4), kap = normal(M * C, 5), a = normal(M * C, 6);
  for (float& l : ld) l = -0.606531f / (1.0f + std::exp(-l));
  for (float& x : a) x = 1.0f / (1.0f + std::exp(-x));
  for (uint64_t m = 0; m < M * H; ++m) {
    double n2 = 0.0;
    for (uint64_t i = 0; i < N; ++i) n2 += double(kap[m * N + i]) * kap[m * N + i];
    for (uint64_t i = 0; i < N; ++i) kap[m * N + i] = float(kap[m * N + i] / std::sqrt(n2));
  }
  const DeviceBuffer dr = upload_floats(dev, s, r), dl = upload_floats(dev, s, ld),
                     dk = upload_floats(dev, s, k), dv = upload_floats(dev, s, v),
                     dc = upload_floats(dev, s, kap), da = upload_floats(dev, s, a);
  DeviceBuffer dy(dev, M * C * sizeof(float));
  const BenchStates states(dev, s, B, H * N * N * sizeof(float));
  const rwkvrt_bk_state_ref ref = states.ref();
  const int per = T >= 1024 ? 1 : T > 1 ? 10 : B >= 256 ? 5 : 50;
  // The fused op's extra inputs (k_k, k_a per channel; v_first, gate per row) and outputs.
  const std::vector<float> kk = normal(C, 7, 0.3f), ka = normal(C, 8, 0.3f),
                           vfirst = normal(M * C, 9), gate = normal(M * C, 10, 0.3f);
  const DeviceBuffer dkk = upload_floats(dev, s, kk), dka = upload_floats(dev, s, ka),
                     dvf = upload_floats(dev, s, vfirst), dg = upload_floats(dev, s, gate);
  DeviceBuffer dkt(dev, M * C * sizeof(float)), dvo(dev, M * C * sizeof(float)),
      dkap(dev, M * C * sizeof(float));
  const double t = time_graph(
      s,
      [&] {
        for (int i = 0; i < per; ++i)
          if (fused)
            s.v7_wkv({B, T, H, N, dr.f32(), dl.f32(), dk.f32(), dv.f32(), da.f32(), dkk.f32(),
                      dka.f32(), dvf.f32(), dg.f32(), dkt.f32(), dvo.f32(), dy.f32(), ref},
                     dkap.f32());
          else
            s.wkv7({B, T, H, N, dr.f32(), dl.f32(), dk.f32(), dv.f32(), dc.f32(), da.f32(),
                    dy.f32(), ref});
      },
      per, 5);
  report_wkv("wkv7", fused ? "v7_wkv" : "wkv7", H, B, T, t, states.bytes);
}

void bench_wkv7(const std::shared_ptr<Device>& dev, Stream& s, bool quick) {
  for (uint64_t H : {32, 64}) {
    bench_wkv7_case(dev, s, 1, 1, H);
    for (uint64_t T : {16, 64, 256}) bench_wkv7_case(dev, s, 1, T, H);  // short prompts
    bench_wkv7_case(dev, s, 1, 4096, H);
    bench_wkv7_case(dev, s, 4, 1024, H);  // a batch of prompts: more heads, fewer blocks per head
    for (uint64_t B : {64, 256, 1024}) {
      if (quick && B == 1024) continue;
      bench_wkv7_case(dev, s, B, 1, H);
      bench_wkv7_case(dev, s, B, 1, H, /*fused=*/true);
    }
  }
}

// WKV-5/6 on H heads of 64 for B sequences of T tokens: per-token decays as v6 runs it, or
// per-channel ones (v5).
void bench_wkv5_case(const std::shared_ptr<Device>& dev, Stream& s, uint64_t B, uint64_t T,
                     uint64_t H, bool per_token = true) {
  const uint64_t N = 64, C = H * N, M = B * T;
  const std::vector<float> r = normal(M * C, 11, 0.5f), k = normal(M * C, 12, 0.5f),
                           v = normal(M * C, 13), u = normal(C, 14, 0.5f);
  std::vector<float> ld = normal(per_token ? M * C : C, 15);
  for (float& l : ld) l = -std::exp(l - 1.0f);  // λ = −e^{d}, d around −1 as in a trained model
  const DeviceBuffer dr = upload_floats(dev, s, r), dk = upload_floats(dev, s, k),
                     dv = upload_floats(dev, s, v), du = upload_floats(dev, s, u),
                     dl = upload_floats(dev, s, ld);
  DeviceBuffer dy(dev, M * C * sizeof(float));
  const BenchStates states(dev, s, B, H * N * N * sizeof(float));
  const rwkvrt_bk_state_ref ref = states.ref();
  const int per = T >= 1024 ? 1 : T > 1 ? 10 : 50;
  const double t = time_graph(
      s,
      [&] {
        for (int i = 0; i < per; ++i)
          s.wkv5({B, T, H, N, dr.f32(), dk.f32(), dv.f32(), dl.f32(), per_token ? 1u : 0u, du.f32(),
                  dy.f32(), ref});
      },
      per, 5);
  report_wkv("wkv5", per_token ? "wkv6" : "wkv5", H, B, T, t, states.bytes);
}

void bench_wkv5(const std::shared_ptr<Device>& dev, Stream& s, bool quick) {
  for (uint64_t H : {32, 64}) {
    bench_wkv5_case(dev, s, 1, 1, H);
    for (uint64_t T : {64, 256, 4096}) {
      if (quick && T == 4096) continue;
      bench_wkv5_case(dev, s, 1, T, H);
    }
    bench_wkv5_case(dev, s, 4, 1024, H);
    bench_wkv5_case(dev, s, 256, 1, H);
    if (!quick) bench_wkv5_case(dev, s, 1, 4096, H, /*per_token=*/false);
  }
}

struct ModelSpec {
  const char* name;
  uint32_t layers, width;
};

// Decode step time of a small model (launch-bound) with and without programmatic dependent
// launch: the difference is the launch gap it hides, times the kernels per step.
void bench_pdl() {
  SyntheticShape shape;
  shape.n_layer = 12;
  shape.n_embd = 768;
  shape.n_vocab = 65536;
  shape.head_size = 64;
  shape.matrix_dtype = DType::F16;
  const TensorSet tensors = make_synthetic_v7(shape);
  for (const char* pdl : {"1", "0"}) {
    ::setenv("RWKVRT_CUDA_PDL", pdl, 1);
    LoadOptions o;
    o.backend = "cuda";
    const auto model = Model::from_tensors(tensors, o);
    Session sess(model);
    std::vector<float> logits(shape.n_vocab);
    int32_t tok = 1;
    for (int i = 0; i < 8; ++i) sess.feed(&tok, 1, LogitsMode::Last, logits.data());
    std::vector<double> t;
    for (int i = 0; i < 64; ++i) {
      const auto s0 = Clock::now();
      sess.feed(&tok, 1, LogitsMode::Last, logits.data());
      t.push_back(seconds_since(s0));
    }
    report("launch", std::string("0.1B decode step, PDL ") + (pdl[0] == '1' ? "on" : "off"),
           median(t) * 1e3, "ms");
  }
  ::unsetenv("RWKVRT_CUDA_PDL");
}

// `fast_gemm`: load the model with RWKVRT_CUDA_FAST_GEMM_ROWS=256 (the opt-in rounded-activation
// GEMMs) and time only the passes with at least 256 rows: prefill and batches of 256 and 1024.
void bench_model(const ModelSpec& spec, double copy_gbs, bool quick, bool fast_gemm) {
  if (fast_gemm) ::setenv("RWKVRT_CUDA_FAST_GEMM_ROWS", "256", 1);
  SyntheticShape shape;
  shape.n_layer = spec.layers;
  shape.n_embd = spec.width;
  shape.n_vocab = 65536;
  shape.head_size = 64;
  shape.matrix_dtype = DType::F16;
  LoadOptions o;
  o.backend = "cuda";
  auto t0 = Clock::now();
  std::shared_ptr<Model> model;
  {
    const TensorSet tensors = make_synthetic_v7(shape);
    model = Model::from_tensors(tensors, o);
  }
  ::unsetenv("RWKVRT_CUDA_FAST_GEMM_ROWS");  // read once, when the model's context was made
  const std::string g = std::string("model ") + spec.name + (fast_gemm ? " f16 fast" : " f16");
  report(g, "load (synthetic weights)", seconds_since(t0), "s");
  const uint64_t V = model->config().n_vocab;
  std::vector<float> logits(V);

  // Batch-1 decode through the session (captured graph per step after the first).
  if (!fast_gemm) {
    Session sess(model);
    int32_t tok = 1;
    for (int i = 0; i < 8; ++i) sess.feed(&tok, 1, LogitsMode::Last, logits.data());
    std::vector<double> t;
    for (int i = 0; i < (quick ? 32 : 100); ++i) {
      tok = int32_t((tok * 7 + 3) % V);
      const auto s0 = Clock::now();
      sess.feed(&tok, 1, LogitsMode::Last, logits.data());
      t.push_back(seconds_since(s0));
    }
    const double step = median(t);
    const double roof = double(model->bytes_per_token()) / (copy_gbs * 1e9);
    char note[128];
    std::snprintf(note, sizeof(note), "%.3f ms/token, roofline %.3f ms (%.2f GB/token): %.0f%%",
                  step * 1e3, roof * 1e3, double(model->bytes_per_token()) / 1e9,
                  100.0 * roof / step);
    report(g, "decode B=1", 1.0 / step, "tok/s", note);
  }
  // Prefill of a 4096-token prompt (passes of preferred_pass_rows).
  {
    Session sess(model);
    std::vector<int32_t> prompt(4096);
    for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = int32_t((i * 131 + 7) % V);
    sess.feed(prompt.data(), 512, LogitsMode::Last, logits.data());  // warm-up
    std::vector<double> t;
    for (int r = 0; r < (quick ? 1 : 3); ++r) {
      sess.reset();
      const auto s0 = Clock::now();
      sess.feed(prompt.data(), prompt.size(), LogitsMode::Last, logits.data());
      t.push_back(seconds_since(s0));
    }
    report(g, "prefill T=4096", 4096.0 / median(t), "tok/s");
  }
  // Batched decode (one BatchDecoder step advances B sessions by one token).
  for (size_t B : {64, 256, 1024}) {
    if (quick && B > 64) continue;
    if (fast_gemm && B < 256) continue;
    std::vector<std::unique_ptr<Session>> sessions;
    for (size_t i = 0; i < B; ++i) sessions.push_back(std::make_unique<Session>(model));
    std::vector<Session*> ptrs;
    for (auto& p : sessions) ptrs.push_back(p.get());
    std::vector<int32_t> toks(B);
    for (size_t i = 0; i < B; ++i) toks[i] = int32_t(i % V);
    std::vector<float> out(B * V);
    BatchDecoder bd(model, B);
    for (bool with_logits : {true, false}) {
      float* lp = with_logits ? out.data() : nullptr;
      for (int i = 0; i < 3; ++i) bd.step(ptrs.data(), toks.data(), B, lp);
      std::vector<double> t;
      for (int i = 0; i < (quick ? 3 : 8); ++i) {
        const auto s0 = Clock::now();
        bd.step(ptrs.data(), toks.data(), B, lp);
        t.push_back(seconds_since(s0));
      }
      char name[64], note[64];
      std::snprintf(name, sizeof(name), "decode B=%zu%s", B, with_logits ? "" : " (no head)");
      std::snprintf(note, sizeof(note), "%.2f ms/step", median(t) * 1e3);
      report(g, name, double(B) / median(t), "tok/s", note);
    }
  }
}

void print_rows() {
  std::printf("\n%-22s %-38s %12s  %-9s %s\n", "group", "measurement", "value", "unit", "note");
  for (const Row& r : g_rows)
    std::printf("%-22s %-38s %12.4g  %-9s %s\n", r.group.c_str(), r.name.c_str(), r.value,
                r.unit.c_str(), r.note.c_str());
}

int run(int argc, char** argv) {
  std::vector<std::string> models = {"1.5B", "7.2B"};
  bool quick = false, wkv_only = false, wkv5_only = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") {
      quick = true;
    } else if (a == "--wkv7-only") {
      wkv_only = true;
    } else if (a == "--wkv5-only") {
      wkv5_only = true;
    } else if (a == "--models" && i + 1 < argc) {
      models.clear();
      std::string list = argv[++i];
      size_t pos = 0;
      while (pos <= list.size()) {
        const size_t comma = std::min(list.find(',', pos), list.size());
        const std::string m = list.substr(pos, comma - pos);
        if (!m.empty() && m != "none") models.push_back(m);
        pos = comma + 1;
      }
    } else {
      std::fprintf(stderr,
                   "usage: %s [--quick] [--wkv7-only] [--wkv5-only] [--models 1.5B,7.2B|none]\n",
                   argv[0]);
      return 2;
    }
  }
  BackendRegistry& reg = BackendRegistry::instance();
  BackendEntry cuda;
  for (size_t i = 0; i < reg.count(); ++i)
    if (reg.entry(i).name == "cuda") cuda = reg.entry(i);
  if (!cuda.usable()) {
    std::fprintf(stderr, "CUDA backend not usable: %s\n",
                 cuda.name.empty() ? "plugin not found" : cuda.unavailable_reason.c_str());
    return 1;
  }
  std::printf("# %s on %s\n", cuda.description.c_str(),
              cuda.device_names.empty() ? "?" : cuda.device_names[0].c_str());
  double copy_gbs = 0.0;
  {
    auto dev = std::make_shared<Device>(cuda, 0, 0);
    Stream s(dev);
    if (wkv_only || wkv5_only) {
      if (wkv_only) bench_wkv7(dev, s, quick);
      if (wkv5_only) bench_wkv5(dev, s, quick);
      print_rows();
      return 0;
    }
    copy_gbs = bench_copy(dev, s);
    bench_gemv(dev, s, copy_gbs, quick);
    bench_gemm(dev, s, quick);
    bench_wkv7(dev, s, quick);
    bench_wkv5(dev, s, quick);
  }
  bench_pdl();
  for (const std::string& m : models)
    for (bool fast : {false, true}) {
      if (fast && quick) continue;
      if (m == "1.5B") bench_model({"1.5B", 24, 2048}, copy_gbs, quick, fast);
      if (m == "7.2B") bench_model({"7.2B", 32, 4096}, copy_gbs, quick, fast);
    }
  print_rows();
  return 0;
}

}  // namespace
}  // namespace rwkvrt

int main(int argc, char** argv) {
  try {
    return rwkvrt::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
