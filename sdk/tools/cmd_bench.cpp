// rwkvrt bench: decode and prefill speed on random-weight RWKV-7 models of real shapes, built in
// memory (no download), printed as JSON.  Each configuration runs in its own child process so its
// peak RSS is its own.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cli.h"
#include "core/error.h"
#include "model/synthetic_model.h"
#include "session/batch_decoder.h"
#include "session/session.h"

namespace rwkvrt::cli {
namespace {

struct BenchOptions {
  std::vector<std::string> shapes = {"0.1B", "0.4B", "1.5B"};
  std::vector<std::string> weights = {"f32", "bf16"};
  std::string backend = "auto";
  std::string matmul = "exact";
  int threads = 0;
  int decode_steps = 64;
  int warmup = 8;
  int prefill_tokens = 512;
  int prefill_runs = 3;
  bool bandwidth = true;
  bool isolate = true;
  std::vector<int> batches;  // batched decode sizes to measure (BatchDecoder); none by default
  int batch_steps = 16;
  uint32_t layers = 0;  // overrides every shape's layer count when non-zero (profiling)
};

struct ShapeSpec {
  const char* name;
  uint32_t layers, width;
};
constexpr ShapeSpec kShapes[] = {
    {"0.1B", 12, 768}, {"0.4B", 24, 1024}, {"1.5B", 24, 2048}, {"2.9B", 32, 2560}, {"7.2B", 32, 4096}};

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, size_t(q * double(v.size() - 1) + 0.5))];
}

uint64_t current_rss_bytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  unsigned long long pages_total = 0, pages_rss = 0;
  const int got = std::fscanf(f, "%llu %llu", &pages_total, &pages_rss);
  std::fclose(f);
  return got == 2 ? pages_rss * uint64_t(::sysconf(_SC_PAGESIZE)) : 0;
}

uint64_t peak_rss_bytes() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return uint64_t(u.ru_maxrss) * 1024;
}

// Read and copy bandwidth of host memory over 1 GiB arrays with `threads` threads (best of 3).
// Copy counts bytes read plus bytes written, as STREAM does.
std::string measure_bandwidth(int threads) {
  const size_t n = (size_t(1) << 30) / sizeof(float);
  std::vector<float> a(n, 1.0f), b(n, 0.0f);
  const int t = threads > 0 ? threads : int(std::max(1u, std::thread::hardware_concurrency()));
  auto parallel = [&](auto&& body) {
    std::vector<std::thread> pool;
    for (int i = 0; i < t; ++i) pool.emplace_back(body, n * size_t(i) / size_t(t), n * size_t(i + 1) / size_t(t));
    for (auto& th : pool) th.join();
  };
  double best_read = 0, best_copy = 0;
  volatile float sink = 0;
  for (int rep = 0; rep < 3; ++rep) {
    double t0 = now_seconds();
    std::vector<float> partial(size_t(t), 0.0f);
    parallel([&](size_t lo, size_t hi) {
      float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      size_t i = lo;
      for (; i + 4 <= hi; i += 4) {
        s0 += a[i];
        s1 += a[i + 1];
        s2 += a[i + 2];
        s3 += a[i + 3];
      }
      for (; i < hi; ++i) s0 += a[i];
      partial[lo * size_t(t) / n] = s0 + s1 + s2 + s3;
    });
    best_read = std::max(best_read, double(n * sizeof(float)) / (now_seconds() - t0) / 1e9);
    for (float p : partial) sink = sink + p;
    t0 = now_seconds();
    parallel([&](size_t lo, size_t hi) {
      std::memcpy(b.data() + lo, a.data() + lo, (hi - lo) * sizeof(float));
    });
    best_copy = std::max(best_copy, 2.0 * double(n * sizeof(float)) / (now_seconds() - t0) / 1e9);
  }
  (void)sink;
  char buf[160];
  std::snprintf(buf, sizeof(buf), "{\"threads\": %d, \"read_gbps\": %.1f, \"copy_gbps\": %.1f}", t,
                best_read, best_copy);
  return buf;
}

// Runs one configuration and returns its JSON object.
std::string run_config(const BenchOptions& o, const ShapeSpec& shape, const std::string& weights) {
  SyntheticShape s;
  s.n_layer = o.layers ? o.layers : shape.layers;
  s.n_embd = shape.width;
  s.n_vocab = 65536;
  s.matrix_dtype = weights == "f32" ? DType::F32 : weights == "bf16" ? DType::BF16 : DType::F16;
  std::fprintf(stderr, "bench: %s %s: building random weights...\n", shape.name, weights.c_str());
  double t0 = now_seconds();
  std::shared_ptr<Model> model;
  {
    const TensorSet tensors = make_synthetic_v7(s);
    LoadOptions l;
    l.backend = o.backend == "auto" ? "" : o.backend;
    l.n_threads = o.threads;
    l.matmul_precision = matmul_precision(o.matmul);
    model = Model::from_tensors(tensors, l);
  }
  const double load_s = now_seconds() - t0;
  const uint64_t rss_after_load = current_rss_bytes();
  const uint32_t V = model->config().n_vocab;
  std::mt19937 rng(7);
  std::uniform_int_distribution<int32_t> tok(0, int32_t(V) - 1);

  Session session(model);
  std::vector<float> logits(V);
  std::fprintf(stderr, "bench: %s %s: decode...\n", shape.name, weights.c_str());
  for (int i = 0; i < o.warmup; ++i) {
    const int32_t t = tok(rng);
    session.feed(&t, 1, LogitsMode::Last, logits.data());
  }
  std::vector<double> step_s;
  for (int i = 0; i < o.decode_steps; ++i) {
    const int32_t t = tok(rng);
    const double a = now_seconds();
    session.feed(&t, 1, LogitsMode::Last, logits.data());
    step_s.push_back(now_seconds() - a);
  }
  const double decode_median = median(step_s);

  std::fprintf(stderr, "bench: %s %s: prefill...\n", shape.name, weights.c_str());
  std::vector<int32_t> prompt(size_t(o.prefill_tokens));
  for (int32_t& t : prompt) t = tok(rng);
  std::vector<double> prefill_s;
  for (int r = 0; r < o.prefill_runs; ++r) {
    session.reset();
    const double a = now_seconds();
    session.feed(prompt.data(), prompt.size(), LogitsMode::Last, logits.data());
    prefill_s.push_back(now_seconds() - a);
  }
  const double prefill_median = median(prefill_s);

  // FLOPs of one prefill: 2 per weight of every layer matrix per token, plus the head once.
  // Batched decode: B sessions advanced together by one token per step, logits of every row
  // downloaded (what a server does).
  std::string batched = "[";
  for (int B : o.batches) {
    std::fprintf(stderr, "bench: %s %s: batched decode B=%d...\n", shape.name, weights.c_str(), B);
    std::vector<std::unique_ptr<Session>> sessions;
    std::vector<Session*> raw;
    for (int i = 0; i < B; ++i) {
      sessions.push_back(std::make_unique<Session>(model));
      raw.push_back(sessions.back().get());
    }
    BatchDecoder decoder(model, size_t(B));
    std::vector<int32_t> ids(static_cast<size_t>(B));
    std::vector<double> batch_s;
    for (int i = 0; i < 2 + o.batch_steps; ++i) {
      for (int32_t& t : ids) t = tok(rng);
      const double a = now_seconds();
      // The logits land in the decoder's host buffer, as for rwkvrt_batch_generate_next.
      (void)decoder.step_logits(raw.data(), ids.data(), ids.size());
      if (i >= 2) batch_s.push_back(now_seconds() - a);
    }
    const double m = median(batch_s);
    char item[200];
    std::snprintf(item, sizeof(item), "%s{\"batch\": %d, \"tokens_per_s\": %.1f, \"step_ms\": %.3f}",
                  batched.size() > 1 ? ", " : "", B, B / m, m * 1e3);
    batched += item;
  }
  batched += "]";

  const ModelConfig& c = model->config();
  const double head_params = double(c.n_vocab) * c.n_embd;
  const double layer_params =
      double(c.n_params) - 2.0 * head_params;  // minus emb and head
  const double prefill_flops = 2.0 * layer_params * o.prefill_tokens + 2.0 * head_params;
  const double bytes = double(model->bytes_per_token());
  const double decode_tps = 1.0 / decode_median;

  char buf[4096];
  std::snprintf(
      buf, sizeof(buf),
      "{\"shape\": \"%s\", \"layers\": %u, \"width\": %u, \"vocab\": %u, \"weights\": \"%s\", "
      "\"matmul\": \"%s\", "
      "\"backend\": \"%s\", \"threads\": %d, \"parameters\": %llu, \"load_s\": %.2f, "
      "\"decode_tokens_per_s\": %.2f, \"decode_ms_median\": %.3f, \"decode_ms_p10\": %.3f, "
      "\"decode_ms_p90\": %.3f, \"decode_steps\": %d, \"bytes_per_token\": %.0f, "
      "\"decode_gbps\": %.2f, \"prefill_tokens\": %d, \"prefill_tokens_per_s\": %.1f, "
      "\"prefill_gflops\": %.1f, \"rss_after_load_bytes\": %llu, \"peak_rss_bytes\": %llu, "
      "\"batched_decode\": %s}",
      shape.name, c.n_layer, c.n_embd, c.n_vocab, weights.c_str(), o.matmul.c_str(),
      model->device()->backend_name().c_str(), o.threads, (unsigned long long)c.n_params, load_s,
      decode_tps, decode_median * 1e3, percentile(step_s, 0.1) * 1e3,
      percentile(step_s, 0.9) * 1e3, o.decode_steps, bytes, bytes * decode_tps / 1e9,
      o.prefill_tokens, o.prefill_tokens / prefill_median, prefill_flops / prefill_median / 1e9,
      (unsigned long long)rss_after_load, (unsigned long long)peak_rss_bytes(), batched.c_str());
  return buf;
}

// Runs `fn` in a child process and returns what it printed, so each configuration's peak RSS and
// allocations are its own.
std::string in_child(const std::function<std::string()>& fn) {
  int fds[2];
  if (::pipe(fds) != 0) fail(RWKVRT_ERR_IO, "pipe failed: {}", std::strerror(errno));
  const pid_t pid = ::fork();
  if (pid < 0) fail(RWKVRT_ERR_IO, "fork failed: {}", std::strerror(errno));
  if (pid == 0) {
    ::close(fds[0]);
    std::string out;
    int code = 0;
    try {
      out = fn();
    } catch (const std::exception& e) {
      out = std::string("error: ") + e.what();
      code = 1;
    }
    size_t done = 0;
    while (done < out.size()) {
      const ssize_t w = ::write(fds[1], out.data() + done, out.size() - done);
      if (w <= 0) break;
      done += size_t(w);
    }
    ::_exit(code);
  }
  ::close(fds[1]);
  std::string out;
  char buf[4096];
  ssize_t r;
  while ((r = ::read(fds[0], buf, sizeof(buf))) > 0) out.append(buf, size_t(r));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    fail(RWKVRT_ERR_INTERNAL, "benchmark child failed: {}", out.empty() ? "crashed" : out);
  return out;
}

}  // namespace

void register_bench_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "bench",
      "Measure decode and prefill speed on random-weight RWKV-7 models of real shapes (vocab "
      "65536, head size 64), built in memory; prints JSON");
  static BenchOptions o;
  cmd->add_option("--shapes", o.shapes,
                  "Model shapes: 0.1B (L12 C768), 0.4B (L24 C1024), 1.5B (L24 C2048), 2.9B, 7.2B")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--weights", o.weights, "Weight precisions to run: f32, bf16, f16")
      ->delimiter(',')
      ->check(CLI::IsMember({"f32", "bf16", "f16"}))
      ->capture_default_str();
  cmd->add_option("--backend", o.backend, "Backend (auto = best available)")->capture_default_str();
  cmd->add_option("--threads", o.threads, "CPU threads (0 = all cores)")->capture_default_str();
  add_matmul_option(cmd, o.matmul);
  cmd->add_option("--decode-steps", o.decode_steps, "Timed single-token steps (median reported)")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--warmup", o.warmup, "Untimed steps first")->capture_default_str();
  cmd->add_option("--prefill-tokens", o.prefill_tokens, "Prompt length for prefill")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  cmd->add_option("--prefill-runs", o.prefill_runs, "Prefill repetitions (median reported)")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  cmd->add_option("--batch", o.batches,
                  "Also measure batched decode with these batch sizes (e.g. --batch 64,256,1024): "
                  "that many sessions advanced one token per step in one pass")
      ->delimiter(',');
  cmd->add_option("--batch-steps", o.batch_steps, "Timed batched steps per batch size (median)")
      ->capture_default_str();
  cmd->add_option("--layers", o.layers,
                  "Override every shape's layer count (0 = the shape's own), e.g. to profile a few "
                  "layers at a real width; the JSON reports the layers used")
      ->check(CLI::Range(0, 256))
      ->capture_default_str();
  cmd->add_flag("!--no-bandwidth", o.bandwidth, "Skip measuring host memory bandwidth");
  cmd->add_flag("!--no-isolate", o.isolate, "Run every configuration in this process");
  cmd->callback([] {
    std::vector<const ShapeSpec*> shapes;
    for (const std::string& name : o.shapes) {
      const ShapeSpec* found = nullptr;
      for (const ShapeSpec& s : kShapes)
        if (name == s.name) found = &s;
      if (!found) fail(RWKVRT_ERR_INVALID_ARGUMENT, "unknown shape '{}' (use 0.1B, 0.4B, 1.5B, 2.9B, 7.2B)", name);
      shapes.push_back(found);
    }
    std::string out = "{\"benchmark\": \"rwkvrt bench\", \"model\": \"RWKV-7 random weights\"";
    if (o.bandwidth) {
      std::fprintf(stderr, "bench: measuring memory bandwidth...\n");
      out += ", \"memory\": " + (o.isolate ? in_child([] { return measure_bandwidth(o.threads); })
                                           : measure_bandwidth(o.threads));
    }
    out += ", \"results\": [";
    bool first = true;
    for (const ShapeSpec* s : shapes)
      for (const std::string& w : o.weights) {
        const auto job = [s, w] { return run_config(o, *s, w); };
        const std::string r = o.isolate ? in_child(job) : job();
        std::fprintf(stderr, "%s\n", r.c_str());
        out += (first ? "" : ", ") + r;
        first = false;
      }
    out += "]}\n";
    std::fwrite(out.data(), 1, out.size(), stdout);
  });
}

}  // namespace rwkvrt::cli
