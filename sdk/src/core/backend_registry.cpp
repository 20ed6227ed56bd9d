#include "core/backend_registry.h"

#include <dirent.h>
#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "core/log.h"

#ifndef RWKVRT_PLUGIN_DIR
#define RWKVRT_PLUGIN_DIR ""
#endif

namespace rwkvrt {
namespace {

constexpr const char* kPluginPrefix = "librwkvrt-backend-";
constexpr const char* kPluginSuffix = ".so";

void host_log(int level, const char* message) {
  const auto lvl = static_cast<rwkvrt_log_level>(std::clamp(level, 0, 3));
  log_line(lvl, message ? message : "");
}

const rwkvrt_bk_host kHost = {sizeof(rwkvrt_bk_host), &host_log};

std::string canonical(const std::string& path) {
  char buf[PATH_MAX];
  return ::realpath(path.c_str(), buf) ? std::string(buf) : path;
}

// "librwkvrt-backend-cuda.so" -> "cuda"; empty when the file name does not follow the pattern.
std::string name_from_filename(const std::string& path) {
  const std::string file = path.substr(path.find_last_of('/') + 1);
  const size_t pre = std::strlen(kPluginPrefix), suf = std::strlen(kPluginSuffix);
  if (file.size() <= pre + suf || file.compare(0, pre, kPluginPrefix) != 0 ||
      file.compare(file.size() - suf, suf, kPluginSuffix) != 0)
    return "";
  return file.substr(pre, file.size() - pre - suf);
}

std::string directory_of_this_library() {
  Dl_info info{};
  if (::dladdr(reinterpret_cast<void*>(&host_log), &info) && info.dli_fname) {
    // For code in the main program (a tool that links the core statically) the loader reports
    // argv[0], which lacks a directory when the program was found through PATH.
    const std::string reported = info.dli_fname;
    const std::string path =
        canonical(reported.find('/') == std::string::npos ? "/proc/self/exe" : reported);
    const size_t slash = path.find_last_of('/');
    if (slash != std::string::npos) return path.substr(0, slash);
  }
  return "";
}

}  // namespace

BackendRegistry& BackendRegistry::instance() {
  static BackendRegistry registry;
  return registry;
}

std::vector<std::string> BackendRegistry::search_directories() const {
  std::vector<std::string> dirs;
  if (const char* env = std::getenv("RWKVRT_BACKEND_PATH")) {
    std::string s(env);
    size_t start = 0;
    while (start <= s.size()) {
      const size_t end = std::min(s.find(':', start), s.size());
      if (end > start) dirs.push_back(s.substr(start, end - start));
      start = end + 1;
    }
  }
  if (*RWKVRT_PLUGIN_DIR) dirs.emplace_back(RWKVRT_PLUGIN_DIR);
  // The directory of the code running this (librwkvrt.so, or a program that links the core
  // statically), and for a program in a bin/ directory its sibling lib/ (build trees and
  // relocatable installs both use that layout).
  const std::string own = directory_of_this_library();
  if (!own.empty()) {
    dirs.push_back(own);
    if (own.size() >= 4 && own.compare(own.size() - 4, 4, "/bin") == 0) {
      const std::string prefix = own.substr(0, own.size() - 4);
      dirs.push_back(prefix + "/lib");
      dirs.push_back(prefix + "/lib/rwkvrt");
    }
  }
  return dirs;
}

void BackendRegistry::discover_locked() {
  if (discovered_) return;
  discovered_ = true;
  for (const std::string& dir : search_directories()) {
    DIR* d = ::opendir(dir.c_str());
    if (!d) continue;
    std::vector<std::string> files;
    while (const dirent* e = ::readdir(d)) {
      const std::string path = dir + "/" + e->d_name;
      if (!name_from_filename(path).empty()) files.push_back(path);
    }
    ::closedir(d);
    std::sort(files.begin(), files.end());
    for (const std::string& path : files) {
      const std::string name = name_from_filename(path);
      const bool have = std::any_of(entries_.begin(), entries_.end(),
                                    [&](const BackendEntry& b) { return b.name == name; });
      if (have) {
        log(RWKVRT_LOG_DEBUG, "backend '{}' at {} shadowed by an earlier one", name, path);
        continue;
      }
      load_locked(path, /*strict=*/false);
    }
  }
}

size_t BackendRegistry::load_locked(const std::string& path, bool strict) {
  const std::string canon = canonical(path);
  for (size_t i = 0; i < loaded_files_.size(); ++i)
    if (loaded_files_[i] == canon) return i;

  BackendEntry entry;
  entry.path = canon;
  entry.name = name_from_filename(canon);
  if (entry.name.empty()) entry.name = canon.substr(canon.find_last_of('/') + 1);

  auto record_failure = [&](rwkvrt_status status, const std::string& reason) -> size_t {
    if (strict) throw Error(status, fmt::format("backend plugin '{}': {}", canon, reason));
    entry.unavailable_reason = reason;
    log(RWKVRT_LOG_INFO, "backend '{}' unavailable: {}", entry.name, reason);
    entries_.push_back(entry);
    loaded_files_.push_back(canon);
    return entries_.size() - 1;
  };

  void* handle = ::dlopen(canon.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* err = ::dlerror();
    return record_failure(RWKVRT_ERR_IO, fmt::format("cannot load: {}", err ? err : "unknown"));
  }
  auto negotiate =
      reinterpret_cast<rwkvrt_backend_negotiate_fn>(::dlsym(handle, RWKVRT_BACKEND_ENTRY_POINT));
  if (!negotiate)
    return record_failure(RWKVRT_ERR_FORMAT,
                          fmt::format("no '{}' entry point", RWKVRT_BACKEND_ENTRY_POINT));

  rwkvrt_bk_negotiation n{};
  n.struct_size = sizeof(n);
  n.host_min_version = kMinAbi;
  n.host_max_version = kMaxAbi;
  n.host = &kHost;
  const int rc = negotiate(&n);
  if (rc != RWKVRT_BK_OK || n.chosen_version < kMinAbi || n.chosen_version > kMaxAbi || !n.table) {
    return record_failure(
        RWKVRT_ERR_ABI_MISMATCH,
        fmt::format("plugin ABI versions {}..{} offered, this runtime speaks {}..{}",
                    n.plugin_min_version, n.plugin_max_version, kMinAbi, kMaxAbi));
  }
  const auto* api = static_cast<const rwkvrt_backend_v1*>(n.table);
  if (api->struct_size < RWKVRT_BACKEND_V1_MIN_SIZE || api->abi_version != n.chosen_version)
    return record_failure(RWKVRT_ERR_ABI_MISMATCH,
                          fmt::format("function table of size {} for version {} is malformed",
                                      api->struct_size, api->abi_version));

  entry.api = api;
  entry.abi_version = n.chosen_version;
  entry.name = api->name ? api->name : entry.name;
  entry.description = api->description ? api->description : "";
  char reason[512] = {0};
  entry.score = api->probe(reason, sizeof(reason));
  entry.device_count = entry.score > 0.0f ? api->device_count() : 0;
  if (entry.score <= 0.0f) {
    entry.unavailable_reason = reason[0] ? reason : "the plugin reports it cannot run here";
  } else if (entry.device_count <= 0) {
    entry.unavailable_reason = "no devices";
  }
  for (int32_t d = 0; d < entry.device_count; ++d) {
    rwkvrt_bk_device_desc desc{};
    desc.struct_size = sizeof(desc);
    entry.device_names.emplace_back(api->device_describe(d, &desc) == RWKVRT_BK_OK ? desc.name
                                                                                   : "?");
  }
  log(RWKVRT_LOG_DEBUG, "backend '{}' from {}: score {}, {} device(s){}", entry.name, canon,
      entry.score, entry.device_count,
      entry.unavailable_reason.empty() ? "" : "; unavailable: " + entry.unavailable_reason);
  entries_.push_back(std::move(entry));
  loaded_files_.push_back(canon);
  return entries_.size() - 1;
}

size_t BackendRegistry::count() {
  std::lock_guard<std::mutex> lock(mutex_);
  discover_locked();
  return entries_.size();
}

BackendEntry BackendRegistry::entry(size_t index) {
  std::lock_guard<std::mutex> lock(mutex_);
  discover_locked();
  if (index >= entries_.size())
    fail(RWKVRT_ERR_INVALID_ARGUMENT, "backend index {} out of range (there are {})", index,
         entries_.size());
  return entries_[index];
}

size_t BackendRegistry::load(const std::string& path) {
  std::lock_guard<std::mutex> lock(mutex_);
  discover_locked();
  return load_locked(path, /*strict=*/true);
}

BackendEntry BackendRegistry::select(const std::string& name) {
  std::lock_guard<std::mutex> lock(mutex_);
  discover_locked();
  const bool automatic = name.empty() || name == "auto";
  const BackendEntry* best = nullptr;
  for (const BackendEntry& e : entries_) {
    if (!automatic && e.name != name) continue;
    if (!e.usable()) continue;
    if (!best || e.score > best->score) best = &e;
  }
  if (best) {
    if (automatic) {
      for (const BackendEntry& e : entries_)
        if (!e.usable() && e.name != best->name)
          log(RWKVRT_LOG_INFO, "backend '{}' skipped: {}", e.name, e.unavailable_reason);
    }
    return *best;
  }
  std::string found;
  for (const BackendEntry& e : entries_)
    found += fmt::format("\n  {} ({}): {}", e.name, e.path,
                         e.unavailable_reason.empty() ? "usable" : e.unavailable_reason);
  if (entries_.empty()) {
    std::string dirs;
    for (const std::string& d : search_directories()) dirs += "\n  " + d;
    fail(RWKVRT_ERR_NO_BACKEND,
         "no backend plugins (librwkvrt-backend-*.so) found; searched:{}\nset RWKVRT_BACKEND_PATH "
         "to the directory holding them",
         dirs);
  }
  if (automatic) fail(RWKVRT_ERR_NO_BACKEND, "no usable backend; found:{}", found);
  fail(RWKVRT_ERR_NO_BACKEND, "backend '{}' is not available; found:{}", name, found);
}

}  // namespace rwkvrt
