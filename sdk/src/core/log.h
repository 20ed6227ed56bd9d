// Library logging: one line per call, routed to the application's callback or to stderr.
#pragma once

#include <fmt/format.h>

#include <string_view>
#include <utility>

#include "rwkvrt/rwkvrt.h"

namespace rwkvrt {

void log_set_callback(rwkvrt_log_fn fn, void* user_data, rwkvrt_log_level level);
bool log_enabled(rwkvrt_log_level level);
void log_line(rwkvrt_log_level level, std::string_view message);

template <typename... Args>
void log(rwkvrt_log_level level, fmt::format_string<Args...> format, Args&&... args) {
  if (log_enabled(level)) log_line(level, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace rwkvrt
