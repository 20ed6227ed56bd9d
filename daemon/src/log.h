// Structured logging for rwkvrtd: one JSON object per line on stderr (journald and log shippers
// read it as is), or "key=value" text for a terminal.
#pragma once

#include <nlohmann/json.hpp>

#include <string_view>

namespace rwkvrtd::log {

enum class Level { debug = 0, info = 1, warn = 2, error = 3 };
enum class Format { json, text };

// Sets what is written.  Call before other threads log (not synchronised with emit).
void configure(Level min_level, Format format);

// Parses "debug", "info", "warn" or "error"; returns false for anything else.
bool parse_level(std::string_view name, Level* out);

// Writes one line: time, level, message, then the fields of `fields` (a JSON object).
// Thread-safe: lines from different threads never interleave.
void emit(Level level, std::string_view message, const nlohmann::json& fields = nlohmann::json::object());

inline void debug(std::string_view m, const nlohmann::json& f = nlohmann::json::object()) { emit(Level::debug, m, f); }
inline void info(std::string_view m, const nlohmann::json& f = nlohmann::json::object()) { emit(Level::info, m, f); }
inline void warn(std::string_view m, const nlohmann::json& f = nlohmann::json::object()) { emit(Level::warn, m, f); }
inline void error(std::string_view m, const nlohmann::json& f = nlohmann::json::object()) { emit(Level::error, m, f); }

// Routes librwkvrt's own log lines into this log (level INFO and above, or DEBUG at debug level).
void capture_library_log();

}  // namespace rwkvrtd::log
