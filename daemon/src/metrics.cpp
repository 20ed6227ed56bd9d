#include "metrics.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sstream>
#include <stdexcept>

namespace rwkvrtd {
namespace {

const std::vector<double> kBatchBounds = {1, 2, 4, 8, 16, 32, 64, 128};
const std::vector<double> kStepBounds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1};

std::string escape_label(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string labels_text(const std::vector<std::pair<std::string, std::string>>& labels) {
  if (labels.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i) out += ",";
    out += labels[i].first + "=\"" + escape_label(labels[i].second) + "\"";
  }
  return out + "}";
}

std::string number(double value) {
  std::ostringstream s;
  s.precision(10);
  s << value;
  return s.str();
}

void header(std::string& out, const std::string& name, const std::string& help, const char* type) {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

}  // namespace

void Metrics::Histogram::observe(double value) {
  if (counts.empty()) counts.assign(bounds.size() + 1, 0);
  size_t i = 0;
  while (i < bounds.size() && value > bounds[i]) ++i;
  ++counts[i];
  sum += value;
  ++count;
}

Metrics::Metrics() : started_(std::chrono::steady_clock::now()) {}

void Metrics::count_request(const std::string& method, const std::string& code) {
  std::lock_guard lock(mutex_);
  ++requests_[{method, code}];
}

void Metrics::add_prompt_tokens(const std::string& model, uint64_t tokens) {
  std::lock_guard lock(mutex_);
  prompt_tokens_[model] += tokens;
}

void Metrics::add_generated_tokens(const std::string& model, uint64_t tokens) {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mutex_);
  generated_tokens_[model] += tokens;
  RateWindow& window = rates_[model];
  window.events.emplace_back(now, tokens);
  window.in_window += tokens;
  prune(window, now);
}

void Metrics::prune(RateWindow& window, std::chrono::steady_clock::time_point now) {
  while (!window.events.empty() && now - window.events.front().first > kRateWindow) {
    window.in_window -= window.events.front().second;
    window.events.pop_front();
  }
}

void Metrics::observe_decode_step(const std::string& model, size_t batch_size, double seconds) {
  std::lock_guard lock(mutex_);
  ++decode_steps_[model];
  Histogram& batch = batch_size_[model];
  if (batch.bounds.empty()) batch.bounds = kBatchBounds;
  batch.observe(static_cast<double>(batch_size));
  Histogram& step = step_seconds_[model];
  if (step.bounds.empty()) step.bounds = kStepBounds;
  step.observe(seconds);
}

void Metrics::count_generation(const std::string& model, const std::string& finish_reason) {
  std::lock_guard lock(mutex_);
  ++generations_[{model, finish_reason}];
}

void Metrics::add_gauge(std::string name, std::string help,
                        std::function<std::vector<GaugeSample>()> read) {
  std::lock_guard lock(mutex_);
  gauges_.push_back({std::move(name), std::move(help), std::move(read)});
}

std::string Metrics::render() {
  std::vector<Gauge> gauges;
  std::string out;
  {
    std::lock_guard lock(mutex_);
    gauges = gauges_;
    const auto now = std::chrono::steady_clock::now();

    header(out, "rwkvrtd_requests_total", "API calls answered, by method and status code.", "counter");
    for (const auto& [key, value] : requests_) {
      out += "rwkvrtd_requests_total" + labels_text({{"method", key.first}, {"code", key.second}}) +
             " " + std::to_string(value) + "\n";
    }
    header(out, "rwkvrtd_generations_total", "Generations finished, by model and finish reason.",
           "counter");
    for (const auto& [key, value] : generations_) {
      out += "rwkvrtd_generations_total" +
             labels_text({{"model", key.first}, {"finish_reason", key.second}}) + " " +
             std::to_string(value) + "\n";
    }
    header(out, "rwkvrtd_prompt_tokens_total", "Prompt tokens fed.", "counter");
    for (const auto& [model, value] : prompt_tokens_) {
      out += "rwkvrtd_prompt_tokens_total" + labels_text({{"model", model}}) + " " +
             std::to_string(value) + "\n";
    }
    header(out, "rwkvrtd_generated_tokens_total", "Tokens generated.", "counter");
    for (const auto& [model, value] : generated_tokens_) {
      out += "rwkvrtd_generated_tokens_total" + labels_text({{"model", model}}) + " " +
             std::to_string(value) + "\n";
    }
    header(out, "rwkvrtd_tokens_per_second",
           "Tokens generated per second over the last 10 seconds.", "gauge");
    const double window_s = std::min(
        std::chrono::duration<double>(kRateWindow).count(),
        std::max(1e-3, std::chrono::duration<double>(now - started_).count()));
    for (auto& [model, window] : rates_) {
      prune(window, now);
      out += "rwkvrtd_tokens_per_second" + labels_text({{"model", model}}) + " " +
             number(static_cast<double>(window.in_window) / window_s) + "\n";
    }
    header(out, "rwkvrtd_decode_steps_total", "Batched decode steps run.", "counter");
    for (const auto& [model, value] : decode_steps_) {
      out += "rwkvrtd_decode_steps_total" + labels_text({{"model", model}}) + " " +
             std::to_string(value) + "\n";
    }
    const auto histogram = [&](const std::string& name, const std::string& help,
                               const std::map<std::string, Histogram>& by_model) {
      header(out, name, help, "histogram");
      for (const auto& [model, h] : by_model) {
        uint64_t cumulative = 0;
        for (size_t i = 0; i <= h.bounds.size(); ++i) {
          cumulative += i < h.counts.size() ? h.counts[i] : 0;
          const std::string le = i < h.bounds.size() ? number(h.bounds[i]) : "+Inf";
          out += name + "_bucket" + labels_text({{"model", model}, {"le", le}}) + " " +
                 std::to_string(cumulative) + "\n";
        }
        out += name + "_sum" + labels_text({{"model", model}}) + " " + number(h.sum) + "\n";
        out += name + "_count" + labels_text({{"model", model}}) + " " + std::to_string(h.count) + "\n";
      }
    };
    histogram("rwkvrtd_batch_size", "Streams advanced per decode step.", batch_size_);
    histogram("rwkvrtd_decode_step_seconds", "Duration of one batched decode step.", step_seconds_);
  }
  // Gauge callbacks take their own locks; they run outside ours.
  for (const auto& gauge : gauges) {
    header(out, gauge.name, gauge.help, "gauge");
    for (const auto& sample : gauge.read()) {
      out += gauge.name + labels_text(sample.labels) + " " + number(sample.value) + "\n";
    }
  }
  return out;
}

// ---- HTTP ----------------------------------------------------------------------------------------

MetricsHttpServer::~MetricsHttpServer() { stop(); }

void MetricsHttpServer::start(const std::string& listen) {
  const auto colon = listen.find_last_of(':');
  if (colon == std::string::npos) throw std::runtime_error("metrics address needs HOST:PORT: " + listen);
  std::string host = listen.substr(0, colon);
  const std::string port = listen.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  if (int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    throw std::runtime_error("metrics address " + listen + ": " + gai_strerror(rc));
  }
  int fd = -1;
  std::string last_error = "no address";
  for (addrinfo* a = found; a; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && ::listen(fd, 16) == 0) break;
    last_error = std::strerror(errno);
    close(fd);
    fd = -1;
  }
  freeaddrinfo(found);
  if (fd < 0) throw std::runtime_error("cannot listen for metrics on " + listen + ": " + last_error);
  sockaddr_storage bound{};
  socklen_t bound_len = sizeof bound;
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_len);
  port_ = bound.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                                      : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  listen_fd_ = fd;
  thread_ = std::thread([this] { serve(); });
}

void MetricsHttpServer::stop() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
  if (listen_fd_ >= 0) close(listen_fd_);
  listen_fd_ = -1;
}

void MetricsHttpServer::serve() {
  while (!stopping_) {
    pollfd pfd{listen_fd_, POLLIN, 0};
    if (poll(&pfd, 1, 200) <= 0) continue;
    const int client = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    timeval timeout{2, 0};
    setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    // Read the request head (up to 8 KiB); only its first line matters.
    std::string request;
    char buffer[2048];
    while (request.find("\r\n\r\n") == std::string::npos && request.size() < 8192) {
      const ssize_t n = recv(client, buffer, sizeof buffer, 0);
      if (n <= 0) break;
      request.append(buffer, static_cast<size_t>(n));
    }
    std::string status = "404 Not Found";
    std::string type = "text/plain; charset=utf-8";
    std::string body = "not found; try GET /metrics\n";
    if (request.rfind("GET /metrics ", 0) == 0 || request.rfind("GET /metrics?", 0) == 0) {
      status = "200 OK";
      type = "text/plain; version=0.0.4; charset=utf-8";
      body = metrics_.render();
    }
    const std::string response = "HTTP/1.0 " + status + "\r\nContent-Type: " + type +
                                 "\r\nContent-Length: " + std::to_string(body.size()) +
                                 "\r\nConnection: close\r\n\r\n" + body;
    size_t sent = 0;
    while (sent < response.size()) {
      const ssize_t n = send(client, response.data() + sent, response.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) break;
      sent += static_cast<size_t>(n);
    }
    close(client);
  }
}

}  // namespace rwkvrtd
