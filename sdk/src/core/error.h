// Internal error type.  Inside the library every failure is an Error carrying the public status
// code and a message a user can act on (the file, the tensor, what was expected, what was found).
// The C ABI layer (c_api.cpp) converts it into a return code and the per-thread message.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>
#include <utility>

#include "rwkvrt/rwkvrt.h"

namespace rwkvrt {

class Error : public std::runtime_error {
 public:
  Error(rwkvrt_status status, std::string message)
      : std::runtime_error(std::move(message)), status_(status) {}
  rwkvrt_status status() const { return status_; }

 private:
  rwkvrt_status status_;
};

// Throws Error(status, fmt::format(...)).
template <typename... Args>
[[noreturn]] void fail(rwkvrt_status status, fmt::format_string<Args...> format, Args&&... args) {
  throw Error(status, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace rwkvrt
