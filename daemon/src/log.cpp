#include "log.h"

#include <rwkvrt/rwkvrt.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <string>

namespace rwkvrtd::log {
namespace {

Level g_min_level = Level::info;
Format g_format = Format::json;
std::mutex g_write_mutex;

const char* level_name(Level level) {
  switch (level) {
    case Level::debug: return "debug";
    case Level::info: return "info";
    case Level::warn: return "warn";
    case Level::error: return "error";
  }
  return "info";
}

// RFC 3339 UTC with milliseconds, e.g. "2024-05-01T12:00:00.123Z".
std::string timestamp() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                static_cast<int>(millis));
  return buffer;
}

void library_log(void* /*user_data*/, rwkvrt_log_level level, const char* message) {
  Level mapped = Level::info;
  switch (level) {
    case RWKVRT_LOG_ERROR: mapped = Level::error; break;
    case RWKVRT_LOG_WARN: mapped = Level::warn; break;
    case RWKVRT_LOG_INFO: mapped = Level::info; break;
    case RWKVRT_LOG_DEBUG: mapped = Level::debug; break;
  }
  emit(mapped, message ? message : "", {{"source", "librwkvrt"}});
}

}  // namespace

void configure(Level min_level, Format format) {
  g_min_level = min_level;
  g_format = format;
}

bool parse_level(std::string_view name, Level* out) {
  for (Level level : {Level::debug, Level::info, Level::warn, Level::error}) {
    if (name == level_name(level)) {
      *out = level;
      return true;
    }
  }
  return false;
}

void emit(Level level, std::string_view message, const nlohmann::json& fields) {
  if (level < g_min_level) return;
  std::string line;
  if (g_format == Format::json) {
    // Ordered: time, level and message lead every line, then the fields in the caller's order.
    nlohmann::ordered_json record;
    record["ts"] = timestamp();
    record["level"] = level_name(level);
    record["msg"] = message;
    if (fields.is_object()) {
      for (auto it = fields.begin(); it != fields.end(); ++it) record[it.key()] = it.value();
    }
    // Invalid UTF-8 from a client (never expected, but logs must not throw) is replaced.
    line = record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } else {
    line = timestamp() + " " + level_name(level) + " " + std::string(message);
    if (fields.is_object()) {
      for (auto it = fields.begin(); it != fields.end(); ++it) {
        line += " " + it.key() + "=" +
                (it.value().is_string()
                     ? it.value().get<std::string>()
                     : it.value().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
      }
    }
  }
  line += '\n';
  std::lock_guard lock(g_write_mutex);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

void capture_library_log() {
  rwkvrt_set_log_callback(library_log, nullptr,
                          g_min_level == Level::debug ? RWKVRT_LOG_DEBUG : RWKVRT_LOG_INFO);
}

}  // namespace rwkvrtd::log
