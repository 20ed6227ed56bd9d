// Small C++ conveniences over the public C ABI (rwkvrt.h): owning handles and error capture.
// The daemon uses the SDK only through these and the plain C functions.
#pragma once

#include <rwkvrt/rwkvrt.h>

#include <grpcpp/support/status.h>

#include <memory>
#include <string>

namespace rwkvrtd {

struct ModelDeleter {
  void operator()(rwkvrt_model* m) const { rwkvrt_model_free(m); }
};
struct SessionDeleter {
  void operator()(rwkvrt_session* s) const { rwkvrt_session_free(s); }
};
struct BatchDeleter {
  void operator()(rwkvrt_batch* b) const { rwkvrt_batch_free(b); }
};
using ModelPtr = std::unique_ptr<rwkvrt_model, ModelDeleter>;
using SessionPtr = std::unique_ptr<rwkvrt_session, SessionDeleter>;
using BatchPtr = std::unique_ptr<rwkvrt_batch, BatchDeleter>;

// "<what>: RWKVRT_ERR_X: <the library's message>" for a failed call.  Call it on the thread that
// made the call, before any other rwkvrt call (the message is per thread and per call).
inline std::string sdk_error(const std::string& what, rwkvrt_status status) {
  std::string message = what + ": " + rwkvrt_status_name(status);
  const char* detail = rwkvrt_last_error();
  if (detail && *detail) message += std::string(": ") + detail;
  return message;
}

// The gRPC status for an SDK failure on data the client sent (a prompt, a blob, parameters).
// Server-side trouble (I/O, backend, memory, bugs) is never blamed on the client.
inline grpc::Status client_data_status(const std::string& what, rwkvrt_status status) {
  grpc::StatusCode code = grpc::StatusCode::INTERNAL;
  switch (status) {
    case RWKVRT_ERR_INVALID_ARGUMENT:
    case RWKVRT_ERR_FORMAT:
    case RWKVRT_ERR_CORRUPT:
    case RWKVRT_ERR_STATE_MISMATCH:
    case RWKVRT_ERR_UNSUPPORTED:
      code = grpc::StatusCode::INVALID_ARGUMENT;
      break;
    case RWKVRT_ERR_OUT_OF_MEMORY:
      code = grpc::StatusCode::RESOURCE_EXHAUSTED;
      break;
    case RWKVRT_ERR_CANCELLED:
      code = grpc::StatusCode::CANCELLED;
      break;
    default:
      code = grpc::StatusCode::INTERNAL;
      break;
  }
  return grpc::Status(code, sdk_error(what, status));
}

}  // namespace rwkvrtd
