// Micro-benchmark of the CPU backend's kernels, driven through the plugin ABI exactly as the
// runtime drives them.  Prints one JSON object on stdout:
//   gemv: decode matmul (M = 1) in GB/s of weight bytes streamed, per dtype, shape and thread
//         count; "cold" rotates over enough copies of the weight to defeat the caches, and
//         "read_GBps" is the plain read bandwidth measured just before (glibc's vectorised
//         memchr scanning 1 GiB on as many threads), which "cold_pct_of_read" compares against
//         (the machine's bandwidth drifts with its neighbours, so each figure gets its own).
//   gemm: prefill matmul (M = 512) in GFLOP/s.
//   wkv7: tokens/s of the v7 recurrence, prefill (T = 512) and decode (T = 1).
// Each figure is the best of several timed batches, which filters out other processes' bursts.
// Usage: rwkvrt_cpu_kernel_bench [--quick] [gemv|gemm|wkv7 ...]
//   --quick: fewer dtypes and shapes, shorter timings; names: run only those parts.
//   RWKVRT_CPU_KERNELS=avx2|portable benchmarks a lower instruction-set variant.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/backend_registry.h"
#include "core/device.h"
#include "dtype_convert.h"

namespace rwkvrt {
namespace {

using Clock = std::chrono::steady_clock;

// Seconds per call of fn: the best over batches of calls, each batch at least 20 ms long and
// `min_seconds` in all (after one warm-up call).
template <class Fn>
double time_per_call(Fn&& fn, double min_seconds) {
  fn();
  double best = 1e30, total = 0.0;
  while (total < min_seconds) {
    uint64_t calls = 0;
    const Clock::time_point start = Clock::now();
    double elapsed = 0.0;
    do {
      fn();
      ++calls;
      elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    } while (elapsed < 0.02);
    best = std::min(best, elapsed / double(calls));
    total += elapsed;
  }
  return best;
}

// Deterministic pseudo-random floats in [-1, 1) (fast enough for hundreds of MB).
std::vector<float> noise(uint64_t n, uint64_t seed) {
  std::vector<float> v(n);
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (float& x : v) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    x = float(int32_t(s >> 32)) * (1.0f / 2147483648.0f);
  }
  return v;
}

std::vector<uint8_t> encode(rwkvrt_bk_dtype t, const std::vector<float>& v) {
  std::vector<uint8_t> out;
  if (t == RWKVRT_BK_F32) {
    out.resize(v.size() * 4);
    std::memcpy(out.data(), v.data(), out.size());
  } else if (t == RWKVRT_BK_BF16 || t == RWKVRT_BK_F16) {
    out.resize(v.size() * 2);
    for (size_t i = 0; i < v.size(); ++i) {
      const uint16_t h = t == RWKVRT_BK_BF16 ? f32_to_bf16(v[i]) : f32_to_f16(v[i]);
      std::memcpy(out.data() + 2 * i, &h, 2);
    }
  } else {
    out.resize(v.size() / kQuantBlock * quant_block_bytes(t));
    quantize_from_f32(t, v.data(), out.data(), v.size());
  }
  return out;
}

const char* dtype_name(rwkvrt_bk_dtype t) {
  switch (t) {
    case RWKVRT_BK_F32:
      return "f32";
    case RWKVRT_BK_F16:
      return "f16";
    case RWKVRT_BK_BF16:
      return "bf16";
    case RWKVRT_BK_Q8_0:
      return "q8_0";
    case RWKVRT_BK_Q4_0:
      return "q4_0";
    default:
      return "other";
  }
}

PreparedWeight make_weight(const std::shared_ptr<Device>& dev, rwkvrt_bk_dtype t, uint64_t N,
                           uint64_t K, uint64_t seed) {
  const std::vector<uint8_t> src = encode(t, noise(N * K, seed));
  rwkvrt_bk_weight_desc d{};
  d.struct_size = sizeof(d);
  d.name = "bench";
  d.rows = N;
  d.cols = K;
  d.src_dtype = t;
  d.src = src.data();
  d.want_dtype = RWKVRT_BK_SAME;
  return PreparedWeight(dev, d);
}

// Read bandwidth of this machine right now: `threads` threads each scan their part of a zeroed
// 1 GiB buffer with memchr (glibc's AVX2/AVX-512 version), best of a few passes, in GB/s.  The
// buffer is fresh each time: one kept idle between measurements was sometimes found slow.
double read_bandwidth(int threads) {
  std::vector<char> buffer(size_t(1) << 30, 0);
  const size_t part = buffer.size() / size_t(threads);
  return double(buffer.size()) /
         time_per_call(
             [&] {
               std::vector<std::thread> pool;
               for (int t = 0; t < threads; ++t)
                 pool.emplace_back([&, t] {
                   if (std::memchr(buffer.data() + t * part, 1, part)) std::abort();
                 });
               for (std::thread& th : pool) th.join();
             },
             0.3) /
         1e9;
}

class Json {
 public:
  void item(const std::string& line) {
    out_ += (first_ ? "\n    " : ",\n    ") + line;
    first_ = false;
  }
  void section(const char* name) {
    out_ += std::string(sections_++ ? "\n  ],\n  \"" : "{\n  \"") + name + "\": [";
    first_ = true;
  }
  std::string finish() { return out_ + "\n  ]\n}\n"; }

 private:
  std::string out_;
  bool first_ = true;
  int sections_ = 0;
};

std::string fmt(const char* format, double a, double b = 0, double c = 0, double d = 0) {
  char buf[256];
  std::snprintf(buf, sizeof(buf), format, a, b, c, d);
  return buf;
}

// GEMV, M = 1: cold (rotating over copies totalling >= 512 MiB, beyond any cache) and, for
// matrices that fit the last-level cache, hot (one weight over and over).
void bench_gemv(const BackendEntry& be, Json& json, bool quick) {
  struct Shape {
    uint64_t N, K;
  };
  const std::vector<Shape> shapes = {{65536, 768}, {3072, 768}, {2048, 8192}};
  std::vector<rwkvrt_bk_dtype> dtypes = {RWKVRT_BK_F32, RWKVRT_BK_BF16};
  if (!quick) {
    dtypes.push_back(RWKVRT_BK_F16);
    dtypes.push_back(RWKVRT_BK_Q8_0);
    dtypes.push_back(RWKVRT_BK_Q4_0);
  }
  const double seconds = quick ? 0.3 : 1.0;
  for (int threads : {1, 2}) {
    auto dev = std::make_shared<Device>(be, 0, threads);
    Stream s(dev);
    for (rwkvrt_bk_dtype t : dtypes)
      for (const Shape& sh : shapes) {
        std::vector<PreparedWeight> ws;
        ws.push_back(make_weight(dev, t, sh.N, sh.K, 1));
        const uint64_t bytes = ws[0].info().bytes_read_per_matmul;
        const uint64_t copies = std::max<uint64_t>(1, ((uint64_t(512) << 20) + bytes - 1) / bytes);
        for (uint64_t c = 1; c < copies; ++c) ws.push_back(make_weight(dev, t, sh.N, sh.K, c + 1));
        DeviceBuffer x(dev, sh.K * 4), y(dev, sh.N * 4);
        const std::vector<float> xh = noise(sh.K, 99);
        s.upload(x.get(), xh.data(), sh.K * 4);
        size_t next = 0;
        const double cold = time_per_call(
            [&] {
              s.matmul(x.f32(), 1, ws[next], y.f32());
              next = (next + 1) % ws.size();
            },
            seconds);
        const double hot = time_per_call([&] { s.matmul(x.f32(), 1, ws[0], y.f32()); }, seconds);
        const double read = read_bandwidth(threads);
        json.item(
            "{\"dtype\": \"" + std::string(dtype_name(t)) + "\", \"N\": " + std::to_string(sh.N) +
            ", \"K\": " + std::to_string(sh.K) + ", \"threads\": " + std::to_string(threads) +
            fmt(", \"weight_MB\": %.1f, \"cold_GBps\": %.2f, \"hot_GBps\": %.2f, "
                "\"read_GBps\": %.2f",
                double(bytes) / 1e6, double(bytes) / cold / 1e9, double(bytes) / hot / 1e9, read) +
            fmt(", \"cold_pct_of_read\": %.0f, \"cold_us\": %.1f}",
                100.0 * double(bytes) / cold / 1e9 / read, cold * 1e6));
      }
  }
}

// GEMM, M = 512, square weights, plus the M sweep around the GEMV/GEMM crossover.
void bench_gemm(const BackendEntry& be, Json& json, bool quick) {
  const std::vector<uint64_t> sizes =
      quick ? std::vector<uint64_t>{1024} : std::vector<uint64_t>{768, 1024, 2048};
  for (int threads : {1, 2}) {
    auto dev = std::make_shared<Device>(be, 0, threads);
    Stream s(dev);
    for (rwkvrt_bk_dtype t : {RWKVRT_BK_F32, RWKVRT_BK_BF16, RWKVRT_BK_Q8_0})
      for (uint64_t KN : sizes) {
        const PreparedWeight w = make_weight(dev, t, KN, KN, 7);
        std::vector<uint64_t> Ms = {512};
        if (!quick && KN == 2048) Ms = {4, 8, 12, 16, 24, 32, 64, 128, 512};
        for (uint64_t M : Ms) {
          DeviceBuffer x(dev, M * KN * 4), y(dev, M * KN * 4);
          const std::vector<float> xh = noise(M * KN, 5);
          s.upload(x.get(), xh.data(), M * KN * 4);
          const double sec =
              time_per_call([&] { s.matmul(x.f32(), M, w, y.f32()); }, quick ? 0.3 : 1.0);
          json.item(
              "{\"dtype\": \"" + std::string(dtype_name(t)) + "\", \"M\": " + std::to_string(M) +
              ", \"K\": " + std::to_string(KN) + ", \"N\": " + std::to_string(KN) +
              ", \"threads\": " + std::to_string(threads) +
              fmt(", \"GFLOPs\": %.1f, \"ms\": %.3f}", 2.0 * M * KN * KN / sec / 1e9, sec * 1e3));
        }
      }
  }
}

// WKV7 with H = 32 heads of 64 (C = 2048, a 1.5B model's layer), one sequence.
void bench_wkv7(const BackendEntry& be, Json& json, bool quick) {
  const uint64_t H = 32, N = 64, C = H * N;
  for (int threads : {1, 2}) {
    auto dev = std::make_shared<Device>(be, 0, threads);
    Stream s(dev);
    for (uint64_t T : {uint64_t(1), uint64_t(512)}) {
      const uint64_t n = T * C;
      std::vector<DeviceBuffer> in;
      for (int i = 0; i < 6; ++i) {
        std::vector<float> v = noise(n, 11 + i);
        if (i == 1)  // log decay in (−0.61, 0)
          for (float& l : v) l = -0.3f * (l + 1.0f);
        if (i == 4)  // κ, roughly unit norm per head
          for (float& k : v) k *= 0.2f;
        if (i == 5)  // a in (0, 1)
          for (float& a : v) a = 0.5f * (a + 1.0f);
        in.emplace_back(dev, n * 4);
        s.upload(in.back().get(), v.data(), n * 4);
      }
      DeviceBuffer y(dev, n * 4), state(dev, H * N * N * 4), bases(dev, sizeof(void*));
      s.fill_zero(state.get(), H * N * N * 4);
      void* base = state.get();
      s.upload(bases.get(), &base, sizeof(base));
      const rwkvrt_bk_wkv7_args a{
          1,           T,           H,           N,
          in[0].f32(), in[1].f32(), in[2].f32(), in[3].f32(),
          in[4].f32(), in[5].f32(), y.f32(),     {static_cast<void* const*>(bases.get()), 0}};
      const double sec = time_per_call([&] { s.wkv7(a); }, quick ? 0.3 : 1.0);
      json.item(
          "{\"H\": " + std::to_string(H) + ", \"N\": " + std::to_string(N) +
          ", \"T\": " + std::to_string(T) + ", \"threads\": " + std::to_string(threads) +
          fmt(", \"tokens_per_s\": %.0f, \"us_per_call\": %.1f}", double(T) / sec, sec * 1e6));
    }
  }
}

}  // namespace
}  // namespace rwkvrt

int main(int argc, char** argv) {
  bool quick = false;
  std::vector<std::string> parts;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      quick = true;
    } else {
      parts.emplace_back(argv[i]);
    }
  }
  auto wanted = [&](const char* part) {
    return parts.empty() || std::find(parts.begin(), parts.end(), part) != parts.end();
  };
  try {
    const rwkvrt::BackendEntry be = rwkvrt::BackendRegistry::instance().select("cpu");
    rwkvrt::Json json;
    json.section("backend");
    json.item("{\"name\": \"" + be.name + "\", \"description\": \"" + be.description + "\"}");
    if (wanted("gemv")) {
      json.section("gemv");
      rwkvrt::bench_gemv(be, json, quick);
    }
    if (wanted("gemm")) {
      json.section("gemm");
      rwkvrt::bench_gemm(be, json, quick);
    }
    if (wanted("wkv7")) {
      json.section("wkv7");
      rwkvrt::bench_wkv7(be, json, quick);
    }
    std::fputs(json.finish().c_str(), stdout);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rwkvrt_cpu_kernel_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
