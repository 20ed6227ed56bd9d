// Bearer-token authentication of API calls.
#pragma once

#include <grpcpp/server_context.h>
#include <grpcpp/support/status.h>

#include <string>
#include <string_view>
#include <vector>

namespace rwkvrtd {

// Compares two strings in time that depends only on their lengths, never on where they differ
// (so a caller cannot find a token byte by byte from response times).
bool constant_time_equal(std::string_view a, std::string_view b);

class Authenticator {
 public:
  // No token: every call is accepted.
  Authenticator() = default;

  // Accepts any of `tokens` (empty entries are ignored).  Several tokens allow rotation.
  explicit Authenticator(std::vector<std::string> tokens);

  // Reads tokens from a file: one per line, surrounding whitespace and blank lines ignored,
  // lines starting with '#' are comments.  Throws std::runtime_error if it cannot be read or
  // holds no token.
  static Authenticator from_file(const std::string& path);

  bool enabled() const { return !tokens_.empty(); }

  // OK, or UNAUTHENTICATED when the call lacks "authorization: Bearer <token>" or its token is
  // not one of ours.  Every token is compared (in constant time) whatever the outcome.
  grpc::Status check(const grpc::ServerContextBase& context) const;

 private:
  std::vector<std::string> tokens_;
};

}  // namespace rwkvrtd
