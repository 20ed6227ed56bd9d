#include "core/log.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

namespace rwkvrt {
namespace {

rwkvrt_log_level level_from_env() {
  const char* env = std::getenv("RWKVRT_LOG_LEVEL");
  if (!env) return RWKVRT_LOG_WARN;
  if (!std::strcmp(env, "error")) return RWKVRT_LOG_ERROR;
  if (!std::strcmp(env, "info")) return RWKVRT_LOG_INFO;
  if (!std::strcmp(env, "debug")) return RWKVRT_LOG_DEBUG;
  return RWKVRT_LOG_WARN;
}

struct LogSink {
  std::mutex mutex;
  rwkvrt_log_fn fn = nullptr;
  void* user_data = nullptr;
  rwkvrt_log_level level = level_from_env();
};

LogSink& sink() {
  static LogSink s;
  return s;
}

const char* level_name(rwkvrt_log_level level) {
  switch (level) {
    case RWKVRT_LOG_ERROR: return "error";
    case RWKVRT_LOG_WARN: return "warning";
    case RWKVRT_LOG_INFO: return "info";
    case RWKVRT_LOG_DEBUG: return "debug";
  }
  return "log";
}

}  // namespace

void log_set_callback(rwkvrt_log_fn fn, void* user_data, rwkvrt_log_level level) {
  LogSink& s = sink();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.fn = fn;
  s.user_data = user_data;
  s.level = fn ? level : level_from_env();
}

bool log_enabled(rwkvrt_log_level level) {
  LogSink& s = sink();
  std::lock_guard<std::mutex> lock(s.mutex);
  return level <= s.level;
}

void log_line(rwkvrt_log_level level, std::string_view message) {
  LogSink& s = sink();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (level > s.level) return;
  const std::string line(message);
  if (s.fn) {
    s.fn(s.user_data, level, line.c_str());
  } else {
    std::fprintf(stderr, "rwkvrt %s: %s\n", level_name(level), line.c_str());
  }
}

}  // namespace rwkvrt
