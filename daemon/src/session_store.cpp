#include "session_store.h"

#include "log.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <random>
#include <stdexcept>

namespace rwkvrtd {
namespace {

constexpr char kMagic[8] = {'R', 'W', 'K', 'V', 'R', 'T', 'D', 'S'};
constexpr uint32_t kFormatVersion = 1;
constexpr const char* kSuffix = ".session";
constexpr const char* kTempPrefix = ".tmp-";
// Bounds a header read from disk, so a damaged length cannot make us allocate gigabytes.
constexpr uint32_t kMaxMetaBytes = 1 << 20;

std::string errno_text() { return std::strerror(errno); }

void put_u32(std::vector<uint8_t>& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void put_u64(std::vector<uint8_t>& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
uint32_t get_u32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}
uint64_t get_u64(const uint8_t* p) { return uint64_t(get_u32(p)) | uint64_t(get_u32(p + 4)) << 32; }

uint32_t crc_of(const uint8_t* data, size_t size) {
  uLong crc = crc32(0L, Z_NULL, 0);
  // zlib takes uInt lengths; feed large buffers in pieces.
  while (size > 0) {
    const uInt piece = static_cast<uInt>(std::min<size_t>(size, 1u << 30));
    crc = crc32(crc, data, piece);
    data += piece;
    size -= piece;
  }
  return static_cast<uint32_t>(crc);
}

nlohmann::json meta_to_json(const SessionMeta& m) {
  return {{"id", m.id}, {"model", m.model}, {"created_ms", m.created_ms},
          {"last_used_ms", m.last_used_ms}, {"turns", m.turns}, {"tokens", m.tokens}};
}

SessionMeta meta_from_json(const nlohmann::json& j) {
  SessionMeta m;
  m.id = j.at("id").get<std::string>();
  m.model = j.at("model").get<std::string>();
  m.created_ms = j.at("created_ms").get<int64_t>();
  m.last_used_ms = j.at("last_used_ms").get<int64_t>();
  m.turns = j.at("turns").get<uint32_t>();
  m.tokens = j.at("tokens").get<uint64_t>();
  return m;
}

// Reads exactly `size` bytes at `offset`; false on a short read or error.
bool read_at(int fd, uint64_t offset, uint8_t* out, size_t size) {
  while (size > 0) {
    const ssize_t n = pread(fd, out, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    out += n;
    offset += static_cast<uint64_t>(n);
    size -= static_cast<size_t>(n);
  }
  return true;
}

bool write_all(int fd, const uint8_t* data, size_t size) {
  while (size > 0) {
    const ssize_t n = write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

bool fsync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = fsync(fd) == 0;
  close(fd);
  return ok;
}

// Reads and checks the header of a session file, and its size against the lengths it declares.
// The blob and CRC are checked by a full load, not at start-up (start-up stays fast).
bool read_header(const std::string& path, SessionMeta* meta, uint64_t* file_bytes, std::string* why) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *why = errno_text();
    return false;
  }
  struct stat st {};
  fstat(fd, &st);
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  uint8_t head[16];
  bool ok = size >= 16 + 8 + 4 && read_at(fd, 0, head, 16) && std::memcmp(head, kMagic, 8) == 0;
  if (!ok) *why = "not a session file (bad magic or too short)";
  uint32_t meta_len = 0;
  if (ok && get_u32(head + 8) != kFormatVersion) {
    ok = false;
    *why = "unknown format version " + std::to_string(get_u32(head + 8));
  }
  if (ok) {
    meta_len = get_u32(head + 12);
    if (meta_len > kMaxMetaBytes || 16ull + meta_len + 12 > size) {
      ok = false;
      *why = "metadata length out of range";
    }
  }
  std::string meta_text(meta_len, '\0');
  uint8_t blob_len_bytes[8];
  if (ok && !(read_at(fd, 16, reinterpret_cast<uint8_t*>(meta_text.data()), meta_len) &&
              read_at(fd, 16 + meta_len, blob_len_bytes, 8))) {
    ok = false;
    *why = "short read";
  }
  if (ok && 16ull + meta_len + 8 + get_u64(blob_len_bytes) + 4 != size) {
    ok = false;
    *why = "file size does not match its declared lengths";
  }
  close(fd);
  if (!ok) return false;
  try {
    *meta = meta_from_json(nlohmann::json::parse(meta_text));
  } catch (const std::exception& e) {
    *why = std::string("bad metadata: ") + e.what();
    return false;
  }
  *file_bytes = size;
  return true;
}

}  // namespace

int64_t unix_millis_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string new_session_id() {
  static std::mutex mutex;
  static std::random_device device;
  std::lock_guard lock(mutex);
  static const char* hex = "0123456789abcdef";
  std::string id = "s-";
  for (int i = 0; i < 4; ++i) {
    uint32_t word = device();
    for (int j = 0; j < 8; ++j, word >>= 4) id += hex[word & 15];
  }
  return id;
}

bool is_valid_session_id(const std::string& id) {
  if (id.size() < 3 || id.size() > 64 || id.rfind("s-", 0) != 0) return false;
  for (char c : id.substr(2)) {
    const bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

SessionStore::SessionStore(std::string dir, uint32_t max_sessions, uint64_t max_bytes)
    : dir_(std::move(dir)), max_sessions_(max_sessions), max_bytes_(max_bytes) {}

std::string SessionStore::path_of(const std::string& id) const { return dir_ + "/" + id + kSuffix; }

void SessionStore::open() {
  std::error_code error;
  if (!std::filesystem::is_directory(dir_, error)) {
    std::filesystem::create_directories(dir_, error);
    if (error) throw std::runtime_error("cannot create the state directory " + dir_ + ": " + error.message());
    // Session states are private: only the daemon's user may read them.
    std::filesystem::permissions(dir_, std::filesystem::perms::owner_all, error);
  }
  DIR* d = opendir(dir_.c_str());
  if (!d) throw std::runtime_error("cannot open the state directory " + dir_ + ": " + errno_text());
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) names.emplace_back(e->d_name);
  closedir(d);

  std::lock_guard lock(mutex_);
  size_t removed_temps = 0;
  for (const auto& name : names) {
    const std::string path = dir_ + "/" + name;
    if (name.rfind(kTempPrefix, 0) == 0) {
      // A write that a crash interrupted before its rename: the previous file is intact.
      if (unlink(path.c_str()) == 0) ++removed_temps;
      continue;
    }
    const std::string suffix = kSuffix;
    if (name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) {
      continue;
    }
    const std::string id = name.substr(0, name.size() - suffix.size());
    SessionMeta meta;
    uint64_t file_bytes = 0;
    std::string why;
    if (!is_valid_session_id(id) || !read_header(path, &meta, &file_bytes, &why) || meta.id != id) {
      if (why.empty()) why = "the file name and the id inside disagree";
      const std::string aside = path + ".damaged";
      rename(path.c_str(), aside.c_str());
      log::error("damaged session file set aside", {{"file", aside}, {"reason", why}});
      continue;
    }
    Entry entry;
    entry.meta = meta;
    entry.file_bytes = file_bytes;
    entry.persisted = true;
    total_bytes_ += file_bytes;
    entries_.emplace(id, std::move(entry));
  }
  if (removed_temps) fsync_dir(dir_);
  log::info("state directory indexed", {{"dir", dir_}, {"sessions", entries_.size()},
                                        {"bytes", total_bytes_}, {"temp_files_removed", removed_temps}});
}

grpc::Status SessionStore::reserve(const std::string& model, uint64_t expected_bytes,
                                   SessionMeta* out_meta) {
  std::lock_guard lock(mutex_);
  if (entries_.size() >= max_sessions_) {
    return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                        "session limit reached (" + std::to_string(max_sessions_) +
                            " sessions); close sessions you no longer need");
  }
  if (total_bytes_ + expected_bytes > max_bytes_) {
    return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                        "state directory limit reached (" + std::to_string(max_bytes_) +
                            " bytes); close sessions you no longer need");
  }
  std::string id;
  do id = new_session_id();
  while (entries_.count(id));
  Entry entry;
  entry.meta.id = id;
  entry.meta.model = model;
  entry.meta.created_ms = entry.meta.last_used_ms = unix_millis_now();
  entry.reserved_bytes = expected_bytes;
  entry.holder = "create";
  total_bytes_ += expected_bytes;
  *out_meta = entry.meta;
  entries_.emplace(id, std::move(entry));
  return grpc::Status::OK;
}

void SessionStore::abandon(const std::string& id) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(id);
  if (it == entries_.end() || it->second.persisted) return;
  total_bytes_ -= it->second.reserved_bytes;
  entries_.erase(it);
}

grpc::Status SessionStore::acquire(const std::string& id, const std::string& holder,
                                   SessionMeta* out_meta) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(id);
  if (it == entries_.end() || !it->second.persisted) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "no session " + id);
  }
  if (!it->second.holder.empty()) {
    const std::string& other = it->second.holder;
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "session " + id + " is busy (" +
                            (other.rfind("r-", 0) == 0 ? "generation " + other + " is running"
                                                       : other + " in progress") +
                            "); one operation at a time per session");
  }
  it->second.holder = holder;
  if (out_meta) *out_meta = it->second.meta;
  return grpc::Status::OK;
}

void SessionStore::release(const std::string& id) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(id);
  if (it != entries_.end()) it->second.holder.clear();
}

std::optional<std::string> SessionStore::holder(const std::string& id) const {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(id);
  if (it == entries_.end() || it->second.holder.empty()) return std::nullopt;
  return it->second.holder;
}

grpc::Status SessionStore::persist(const SessionMeta& meta, const std::vector<uint8_t>& blob) {
  {
    std::lock_guard lock(mutex_);
    if (!entries_.count(meta.id)) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "no session " + meta.id);
    }
  }
  const std::string meta_text = meta_to_json(meta).dump();
  std::vector<uint8_t> bytes;
  bytes.reserve(16 + meta_text.size() + 8 + blob.size() + 4);
  bytes.insert(bytes.end(), kMagic, kMagic + 8);
  put_u32(bytes, kFormatVersion);
  put_u32(bytes, static_cast<uint32_t>(meta_text.size()));
  bytes.insert(bytes.end(), meta_text.begin(), meta_text.end());
  put_u64(bytes, blob.size());
  bytes.insert(bytes.end(), blob.begin(), blob.end());
  put_u32(bytes, crc_of(bytes.data(), bytes.size()));

  static std::atomic<uint64_t> temp_counter{0};
  const std::string final_path = path_of(meta.id);
  const std::string temp_path = dir_ + "/" + kTempPrefix + meta.id + "-" +
                                std::to_string(getpid()) + "-" + std::to_string(temp_counter++);
  const int fd = ::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    return grpc::Status(grpc::StatusCode::INTERNAL,
                        "cannot write session " + meta.id + ": " + temp_path + ": " + errno_text());
  }
  const bool written = write_all(fd, bytes.data(), bytes.size()) && fsync(fd) == 0;
  const std::string write_error = errno_text();
  close(fd);
  if (!written || rename(temp_path.c_str(), final_path.c_str()) != 0) {
    const std::string why = written ? errno_text() : write_error;
    unlink(temp_path.c_str());
    return grpc::Status(grpc::StatusCode::INTERNAL,
                        "cannot write session " + meta.id + ": " + final_path + ": " + why);
  }
  // The rename is durable only once the directory is on disk too.
  if (!fsync_dir(dir_)) {
    return grpc::Status(grpc::StatusCode::INTERNAL,
                        "cannot sync the state directory " + dir_ + ": " + errno_text());
  }
  std::lock_guard lock(mutex_);
  auto it = entries_.find(meta.id);
  if (it == entries_.end()) return grpc::Status::OK;  // removed meanwhile (cannot happen for a holder)
  Entry& entry = it->second;
  total_bytes_ -= entry.persisted ? entry.file_bytes : entry.reserved_bytes;
  entry.meta = meta;
  entry.file_bytes = bytes.size();
  entry.reserved_bytes = 0;
  entry.persisted = true;
  total_bytes_ += entry.file_bytes;
  return grpc::Status::OK;
}

grpc::Status SessionStore::load(const std::string& id, SessionMeta* out_meta,
                                std::vector<uint8_t>* out_blob) const {
  const std::string path = path_of(id);
  const auto damaged = [&](const std::string& why) {
    log::error("damaged session file", {{"session", id}, {"file", path}, {"reason", why}});
    return grpc::Status(grpc::StatusCode::DATA_LOSS, "the stored state of session " + id +
                                                         " is damaged (" + why + ")");
  };
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return damaged("cannot open: " + errno_text());
  struct stat st {};
  fstat(fd, &st);
  std::vector<uint8_t> bytes(static_cast<size_t>(st.st_size));
  const bool read_ok = read_at(fd, 0, bytes.data(), bytes.size());
  close(fd);
  if (!read_ok) return damaged("short read");
  if (bytes.size() < 16 + 8 + 4 || std::memcmp(bytes.data(), kMagic, 8) != 0) return damaged("bad magic");
  const size_t body = bytes.size() - 4;
  if (crc_of(bytes.data(), body) != get_u32(bytes.data() + body)) return damaged("checksum mismatch");
  const uint32_t meta_len = get_u32(bytes.data() + 12);
  if (16ull + meta_len + 8 > body) return damaged("metadata length out of range");
  const uint64_t blob_len = get_u64(bytes.data() + 16 + meta_len);
  if (16ull + meta_len + 8 + blob_len != body) return damaged("blob length out of range");
  try {
    *out_meta = meta_from_json(nlohmann::json::parse(bytes.begin() + 16, bytes.begin() + 16 + meta_len));
  } catch (const std::exception& e) {
    return damaged(std::string("bad metadata: ") + e.what());
  }
  const auto blob_start = bytes.begin() + 16 + meta_len + 8;
  out_blob->assign(blob_start, blob_start + static_cast<std::ptrdiff_t>(blob_len));
  return grpc::Status::OK;
}

grpc::Status SessionStore::remove(const std::string& id) {
  const std::string path = path_of(id);
  if (unlink(path.c_str()) != 0 && errno != ENOENT) {
    return grpc::Status(grpc::StatusCode::INTERNAL, "cannot delete " + path + ": " + errno_text());
  }
  fsync_dir(dir_);
  std::lock_guard lock(mutex_);
  auto it = entries_.find(id);
  if (it != entries_.end()) {
    total_bytes_ -= it->second.persisted ? it->second.file_bytes : it->second.reserved_bytes;
    entries_.erase(it);
  }
  return grpc::Status::OK;
}

void SessionStore::set_resident(const std::string& id, bool resident) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(id);
  if (it != entries_.end()) it->second.resident = resident;
}

std::optional<SessionStatus> SessionStore::status(const std::string& id) const {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(id);
  if (it == entries_.end() || !it->second.persisted) return std::nullopt;
  return SessionStatus{it->second.meta, it->second.file_bytes, it->second.resident,
                       it->second.holder.rfind("r-", 0) == 0};
}

std::vector<SessionStatus> SessionStore::list(const std::string& model) const {
  std::lock_guard lock(mutex_);
  std::vector<SessionStatus> out;
  for (const auto& [id, e] : entries_) {
    if (!e.persisted || (!model.empty() && e.meta.model != model)) continue;
    out.push_back({e.meta, e.file_bytes, e.resident, e.holder.rfind("r-", 0) == 0});
  }
  return out;
}

size_t SessionStore::count() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

size_t SessionStore::resident_count() const {
  std::lock_guard lock(mutex_);
  size_t n = 0;
  for (const auto& [id, e] : entries_) n += e.resident ? 1 : 0;
  return n;
}

uint64_t SessionStore::bytes() const {
  std::lock_guard lock(mutex_);
  return total_bytes_;
}

}  // namespace rwkvrtd
