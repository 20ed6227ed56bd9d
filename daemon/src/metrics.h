// Metrics in the Prometheus text exposition format, served over plain HTTP (GET /metrics).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace rwkvrtd {

// One labelled value of a gauge, e.g. {{"model","kjv"}} -> 3.
struct GaugeSample {
  std::vector<std::pair<std::string, std::string>> labels;
  double value = 0;
};

// Thread-safe.  Counters and histograms are recorded as events happen; gauges are read from
// callbacks at render time, so they never go stale.
class Metrics {
 public:
  Metrics();

  void count_request(const std::string& method, const std::string& code);
  void add_prompt_tokens(const std::string& model, uint64_t tokens);
  void add_generated_tokens(const std::string& model, uint64_t tokens);
  void observe_decode_step(const std::string& model, size_t batch_size, double seconds);
  void count_generation(const std::string& model, const std::string& finish_reason);

  // Registers a gauge whose samples `read` returns at each render.
  void add_gauge(std::string name, std::string help,
                 std::function<std::vector<GaugeSample>()> read);

  // The whole exposition, "# HELP", "# TYPE" and samples for every family.
  std::string render();

 private:
  struct Histogram {
    std::vector<double> bounds;
    std::vector<uint64_t> counts;  // per bound, not cumulative; the last is +Inf
    double sum = 0;
    uint64_t count = 0;
    void observe(double value);
  };
  struct Gauge {
    std::string name, help;
    std::function<std::vector<GaugeSample>()> read;
  };
  // Generated tokens per model over the last kRateWindow, for the tokens/s gauge.
  struct RateWindow {
    std::deque<std::pair<std::chrono::steady_clock::time_point, uint64_t>> events;
    uint64_t in_window = 0;
  };
  static constexpr std::chrono::seconds kRateWindow{10};

  void prune(RateWindow& window, std::chrono::steady_clock::time_point now);

  std::mutex mutex_;
  std::chrono::steady_clock::time_point started_;
  std::map<std::pair<std::string, std::string>, uint64_t> requests_;     // (method, code)
  std::map<std::string, uint64_t> prompt_tokens_;
  std::map<std::string, uint64_t> generated_tokens_;
  std::map<std::pair<std::string, std::string>, uint64_t> generations_;  // (model, finish)
  std::map<std::string, uint64_t> decode_steps_;
  std::map<std::string, Histogram> batch_size_;
  std::map<std::string, Histogram> step_seconds_;
  std::map<std::string, RateWindow> rates_;
  std::vector<Gauge> gauges_;
};

// A minimal HTTP/1.0 server for GET /metrics on one listening socket and one thread; requests are
// served one at a time with short timeouts (scrapes are rare and small).
class MetricsHttpServer {
 public:
  explicit MetricsHttpServer(Metrics& metrics) : metrics_(metrics) {}
  ~MetricsHttpServer();

  // Binds "HOST:PORT" (port 0 picks a free one) and starts serving.  Throws std::runtime_error.
  void start(const std::string& listen);
  // The port bound (useful with port 0).
  int port() const { return port_; }
  void stop();

 private:
  void serve();

  Metrics& metrics_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace rwkvrtd
