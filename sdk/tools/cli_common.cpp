#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>

#include "cli.h"
#include "core/error.h"

namespace rwkvrt::cli {

void add_matmul_option(CLI::App* cmd, std::string& matmul) {
  cmd->add_option("--matmul", matmul,
                  "Matmul precision: exact (fp32 activations: prompts give the logits of token-"
                  "by-token decoding) or fast (GPU: large matmuls round activations to the "
                  "f16/bf16 weight type for one tensor-core pass; see docs/CUDA.md)")
      ->check(CLI::IsMember({"exact", "fast"}))
      ->capture_default_str();
}

rwkvrt_bk_matmul_precision matmul_precision(const std::string& matmul) {
  if (matmul == "exact") return RWKVRT_BK_MATMUL_EXACT;
  if (matmul == "fast") return RWKVRT_BK_MATMUL_ROUNDED_ACTIVATIONS;
  fail(RWKVRT_ERR_INVALID_ARGUMENT, "--matmul {} is not one of exact, fast", matmul);
}

void add_model_options(CLI::App* cmd, ModelOptions& o) {
  cmd->add_option("--backend", o.backend,
                  "Backend to run on: auto (the best available), cpu, cuda, ... "
                  "(see 'rwkvrt backends')")
      ->capture_default_str();
  cmd->add_option("--device", o.device, "Device index within the backend")->capture_default_str();
  cmd->add_option("--threads", o.threads, "CPU threads (0 = all cores)")->capture_default_str();
  cmd->add_option("--weights", o.weights,
                  "Precision to keep the matrices in: auto (as in the file), f32, bf16, f16")
      ->check(CLI::IsMember({"auto", "f32", "bf16", "f16"}))
      ->capture_default_str();
  add_matmul_option(cmd, o.matmul);
  cmd->add_option("--gn-eps", o.group_norm_eps,
                  "GroupNorm eps of v5-v7 models (0 = the file format's default: 64e-5 for "
                  "official checkpoints, 1e-5 for rwkv.cpp files)");
  cmd->add_flag("-q,--quiet", o.quiet, "No progress bar");
}

LoadOptions load_options(const ModelOptions& o) {
  LoadOptions l;
  l.backend = o.backend == "auto" ? "" : o.backend;
  l.device = o.device;
  l.n_threads = o.threads;
  if (o.weights == "f32") l.weight_dtype = RWKVRT_BK_F32;
  else if (o.weights == "bf16") l.weight_dtype = RWKVRT_BK_BF16;
  else if (o.weights == "f16") l.weight_dtype = RWKVRT_BK_F16;
  else if (o.weights == "auto") l.weight_dtype = RWKVRT_BK_SAME;
  else fail(RWKVRT_ERR_INVALID_ARGUMENT, "--weights {} is not one of auto, f32, bf16, f16", o.weights);
  l.matmul_precision = matmul_precision(o.matmul);
  l.group_norm_eps = o.group_norm_eps;
  return l;
}

std::function<bool(float, const char*)> progress_bar(bool quiet) {
  if (quiet || !::isatty(STDERR_FILENO)) return {};
  return [last = -1, last_stage = std::string()](float f, const char* stage) mutable {
    const int pct = int(f * 100.0f);
    if (pct == last && last_stage == stage) return true;
    last = pct;
    last_stage = stage;
    const int width = 30, filled = pct * width / 100;
    std::fprintf(stderr, "\r%-10s [%s%s] %3d%%", stage, std::string(size_t(filled), '#').c_str(),
                 std::string(size_t(width - filled), ' ').c_str(), pct);
    std::fflush(stderr);
    return true;
  };
}

void progress_done(bool quiet) {
  if (!quiet && ::isatty(STDERR_FILENO)) std::fprintf(stderr, "\r%60s\r", "");
}

std::shared_ptr<Model> load_model(const ModelOptions& o) {
  LoadOptions l = load_options(o);
  l.progress = progress_bar(o.quiet);
  auto model = Model::load(o.path, l);
  progress_done(o.quiet);
  return model;
}

std::vector<int32_t> parse_token_list(const std::string& text) {
  std::vector<int32_t> ids;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t end = std::min(text.find(',', start), text.size());
    std::string item = text.substr(start, end - start);
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    char* stop = nullptr;
    errno = 0;
    const long v = item.empty() ? -1 : std::strtol(item.c_str(), &stop, 10);
    if (item.empty() || *stop != '\0' || errno != 0 || v < 0 || v > INT32_MAX)
      fail(RWKVRT_ERR_INVALID_ARGUMENT,
           "--tokens: '{}' is not a token id (expected comma-separated non-negative integers)",
           item);
    ids.push_back(int32_t(v));
    start = end + 1;
  }
  return ids;
}

void write_file_atomic(const std::string& path, const void* bytes, size_t size) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail(RWKVRT_ERR_IO, "cannot create '{}': {}", tmp, std::strerror(errno));
  const auto* p = static_cast<const uint8_t*>(bytes);
  size_t done = 0;
  while (done < size) {
    const ssize_t w = ::write(fd, p + done, size - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      fail(RWKVRT_ERR_IO, "cannot write '{}': {}", tmp, std::strerror(err));
    }
    done += size_t(w);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    fail(RWKVRT_ERR_IO, "cannot flush '{}': {}", tmp, std::strerror(errno));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    fail(RWKVRT_ERR_IO, "cannot rename '{}' to '{}': {}", tmp, path, std::strerror(errno));
  }
}

std::vector<uint8_t> read_whole_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(RWKVRT_ERR_IO, "cannot open '{}': {}", path, std::strerror(errno));
  std::vector<uint8_t> data((std::istreambuf_iterator<char>(in)), {});
  if (in.bad()) fail(RWKVRT_ERR_IO, "cannot read '{}'", path);
  return data;
}

std::string format_float(float v) {
  if (std::isnan(v)) return "NaN";  // not JSON: a NaN logit is a bug worth seeing
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  char buf[32];
  for (int prec = 6; prec <= 9; ++prec) {
    std::snprintf(buf, sizeof(buf), "%.*g", prec, double(v));
    if (std::strtof(buf, nullptr) == v) break;
  }
  return buf;
}

}  // namespace rwkvrt::cli
