// The process-wide registry of backend plugins: discovery, loading, ABI negotiation, selection.
// Thread-safe.  Plugins are never unloaded, so the tables and strings they hand out stay valid.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "rwkvrt/backend.h"

namespace rwkvrt {

struct BackendEntry {
  std::string name;
  std::string description;
  std::string path;
  uint32_t abi_version = 0;      // 0: not usable through this runtime (see unavailable_reason)
  float score = 0.0f;
  int32_t device_count = 0;
  std::string unavailable_reason;  // empty when usable
  const rwkvrt_backend_v1* api = nullptr;  // null when the plugin could not be loaded/negotiated
  std::vector<std::string> device_names;

  bool usable() const { return api != nullptr && score > 0.0f && device_count > 0; }
};

class BackendRegistry {
 public:
  static BackendRegistry& instance();

  size_t count();
  // A copy of entry i; throws Error(INVALID_ARGUMENT) when out of range.
  BackendEntry entry(size_t index);
  // Loads the plugin at `path` (idempotent per file); throws Error(IO/FORMAT/ABI_MISMATCH).
  size_t load(const std::string& path);
  // The usable backend named `name`, or the best usable one when `name` is empty or "auto".
  // Throws Error(NO_BACKEND) listing what was found and why each is unusable.
  BackendEntry select(const std::string& name);

  // The plugin ABI versions this runtime speaks.
  static constexpr uint32_t kMinAbi = 1;
  static constexpr uint32_t kMaxAbi = RWKVRT_BACKEND_ABI_VERSION;

 private:
  BackendRegistry() = default;
  void discover_locked();
  // Loads one plugin file; returns its index.  With `strict`, failures throw; otherwise they are
  // recorded as an unusable entry (discovery must report, not abort).
  size_t load_locked(const std::string& path, bool strict);
  std::vector<std::string> search_directories() const;

  std::mutex mutex_;
  bool discovered_ = false;
  std::vector<BackendEntry> entries_;
  std::vector<std::string> loaded_files_;  // canonical paths, parallel to entries_
};

}  // namespace rwkvrt
