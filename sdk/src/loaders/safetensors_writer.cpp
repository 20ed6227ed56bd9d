#include "loaders/safetensors_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "core/error.h"

namespace rwkvrt {
namespace {

constexpr uint64_t kAlign = 8;
// Data is written (and progress reported) in pieces of this size, so cancelling a multi-GB write
// takes effect quickly.
constexpr size_t kChunkBytes = size_t(16) << 20;

uint64_t align_up(uint64_t n) {
  return (n + kAlign - 1) / kAlign * kAlign;
}

// Checks that a tensor's bytes match its shape and dtype, as the reader will.
void check_tensor(const Tensor& t) {
  if (t.name.empty() || t.name == "__metadata__")
    fail(RWKVRT_ERR_INVALID_ARGUMENT, "cannot write a tensor named '{}' to safetensors", t.name);
  uint64_t numel = 1;
  for (int64_t d : t.shape) {
    if (d < 0)
      fail(RWKVRT_ERR_INVALID_ARGUMENT, "tensor '{}' has a negative dimension in {}", t.name,
           t.shape_string());
    numel *= uint64_t(d);
  }
  const size_t block = dtype_block_values(t.dtype);
  if (block > 1 && (t.shape.empty() || t.shape.back() % int64_t(block) != 0))
    fail(RWKVRT_ERR_INVALID_ARGUMENT,
         "tensor '{}' is {} with shape {}; its last dimension must be a multiple of {}", t.name,
         dtype_name(t.dtype), t.shape_string(), block);
  if (t.nbytes != dtype_bytes_for(t.dtype, numel) || (t.nbytes > 0 && !t.data))
    fail(RWKVRT_ERR_INVALID_ARGUMENT, "tensor '{}' holds {} bytes, but shape {} of {} needs {}",
         t.name, t.nbytes, t.shape_string(), dtype_name(t.dtype), dtype_bytes_for(t.dtype, numel));
}

// The temporary file being written: closed, and removed unless committed, however the write ends.
class TempFile {
 public:
  explicit TempFile(std::string final_path)
      : final_path_(std::move(final_path)), path_(final_path_ + ".tmp") {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) io_error("cannot create");
  }
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(path_.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  void write(const void* data, size_t n) {
    const auto* p = static_cast<const uint8_t*>(data);
    while (n > 0) {
      const ssize_t w = ::write(fd_, p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) io_error("cannot write");
      p += w;
      n -= size_t(w);
    }
  }

  // Makes the data durable, then gives it the final name; the directory entry is flushed too,
  // so after a crash `path` is either the old file or the complete new one.
  void commit() {
    if (::fsync(fd_) != 0) io_error("cannot flush");
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) io_error("cannot close");
    if (::rename(path_.c_str(), final_path_.c_str()) != 0) io_error("cannot rename");
    committed_ = true;
    std::string dir = std::filesystem::path(final_path_).parent_path().string();
    if (dir.empty()) dir = ".";
    // Best effort: some file systems refuse fsync on a directory; the file itself is complete.
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      ::fsync(dfd);
      ::close(dfd);
    }
  }

 private:
  [[noreturn]] void io_error(const char* what) const {
    fail(RWKVRT_ERR_IO, "{} '{}' (writing '{}'): {}", what, path_, final_path_,
         std::strerror(errno));
  }

  std::string final_path_, path_;
  int fd_ = -1;
  bool committed_ = false;
};

}  // namespace

void write_safetensors(const std::string& path, const TensorSet& tensors,
                       const std::map<std::string, std::string>& metadata,
                       const std::function<bool(float)>& progress) {
  // The header lists the tensors in the set's order, each at the next 8-byte boundary.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<uint64_t> begins;
  uint64_t data_size = 0;
  for (const Tensor& t : tensors.tensors()) {
    check_tensor(t);
    const uint64_t begin = align_up(data_size);
    data_size = begin + t.nbytes;
    begins.push_back(begin);
    header[t.name] = {
        {"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {begin, data_size}}};
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {  // a name or value that is not valid UTF-8
    fail(RWKVRT_ERR_INVALID_ARGUMENT, "cannot write '{}': {}", path, e.what());
  }
  text.append(align_up(8 + text.size()) - 8 - text.size(), ' ');

  const uint64_t total = 8 + text.size() + data_size;
  uint64_t reported = ~uint64_t(0);
  auto report = [&](uint64_t position) {
    if (position == reported) return;
    reported = position;
    if (progress && !progress(float(double(position) / double(total))))
      fail(RWKVRT_ERR_CANCELLED, "writing '{}' was cancelled", path);
  };

  TempFile out(path);
  report(0);
  uint8_t length[8];
  for (int i = 0; i < 8; ++i) length[i] = uint8_t(uint64_t(text.size()) >> (8 * i));
  out.write(length, 8);
  out.write(text.data(), text.size());
  const uint64_t data_start = 8 + text.size();
  report(data_start);
  const uint8_t zeros[kAlign] = {};
  uint64_t written = 0;  // bytes of the data block
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors.tensors()[i];
    out.write(zeros, size_t(begins[i] - written));
    for (size_t at = 0; at < t.nbytes; at += kChunkBytes) {
      const size_t n = std::min(kChunkBytes, t.nbytes - at);
      out.write(t.data + at, n);
      report(data_start + begins[i] + at + n);
    }
    written = begins[i] + t.nbytes;
  }
  report(total);  // when the last tensor is empty, its predecessor's end was not the file's end
  out.commit();
}

}  // namespace rwkvrt
