#include "auth.h"

#include <fstream>
#include <stdexcept>

namespace rwkvrtd {

bool constant_time_equal(std::string_view a, std::string_view b) {
  // Walk the expected string's full length whatever the other holds; the only branch depends on
  // b's length, which the caller chose.
  unsigned char difference = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) {
    const unsigned char other = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    difference |= static_cast<unsigned char>(static_cast<unsigned char>(a[i]) ^ other);
  }
  return difference == 0;
}

Authenticator::Authenticator(std::vector<std::string> tokens) {
  for (auto& token : tokens) {
    if (!token.empty()) tokens_.push_back(std::move(token));
  }
}

Authenticator Authenticator::from_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read the auth token file " + path);
  std::vector<std::string> tokens;
  std::string line;
  while (std::getline(in, line)) {
    const auto first = line.find_first_not_of(" \t\r\n");
    if (first == std::string::npos || line[first] == '#') continue;
    const auto last = line.find_last_not_of(" \t\r\n");
    tokens.push_back(line.substr(first, last - first + 1));
  }
  if (tokens.empty()) throw std::runtime_error("the auth token file " + path + " holds no token");
  return Authenticator(std::move(tokens));
}

grpc::Status Authenticator::check(const grpc::ServerContextBase& context) const {
  if (tokens_.empty()) return grpc::Status::OK;
  const auto& metadata = context.client_metadata();
  const auto it = metadata.find("authorization");
  if (it == metadata.end()) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "missing credentials: send the metadata 'authorization: Bearer <token>'");
  }
  const std::string_view value(it->second.data(), it->second.size());
  constexpr std::string_view kScheme = "Bearer ";
  if (value.size() < kScheme.size() || value.substr(0, kScheme.size()) != kScheme) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "the authorization metadata must read 'Bearer <token>'");
  }
  const std::string_view presented = value.substr(kScheme.size());
  bool accepted = false;
  for (const auto& token : tokens_) accepted |= constant_time_equal(token, presented);
  if (!accepted) return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "invalid token");
  return grpc::Status::OK;
}

}  // namespace rwkvrtd
