// What the C ABI's entry points share: the structs behind the opaque handles, and the helpers
// that turn exceptions into a status plus the calling thread's message.  Internal to the core.
#pragma once

#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <type_traits>
#include <vector>

#include "core/error.h"
#include "model/model.h"
#include "rwkvrt/rwkvrt.h"
#include "session/generator.h"
#include "session/prefix_cache.h"
#include "tokenizer/tokenizer.h"

struct rwkvrt_tokenizer {
  std::shared_ptr<const rwkvrt::Tokenizer> tokenizer;
};

struct rwkvrt_model {
  std::shared_ptr<rwkvrt::Model> model;
  std::string version_name, file_format, backend;
  std::vector<rwkvrt::StateTensor> layout;
  // The model's tokenizer (null tokenizer.tokenizer when none was found; then why not).
  rwkvrt_tokenizer tokenizer;
  std::string tokenizer_failure;
};

struct rwkvrt_session {
  std::unique_ptr<rwkvrt::Generator> generator;
  rwkvrt::GeneratedPiece piece;  // owns the text of the last piece reported
  rwkvrt::Session& session() { return generator->session(); }
};

struct rwkvrt_prefix_cache {
  std::shared_ptr<rwkvrt::PrefixCache> cache;
};

struct rwkvrt_batch {
  std::shared_ptr<const rwkvrt::Model> model;
  std::unique_ptr<rwkvrt::BatchDecoder> decoder;
  size_t max_batch = 0;
};

namespace rwkvrt::capi {

inline thread_local std::string t_last_error;

inline rwkvrt_status set_error(rwkvrt_status status, const std::string& message) {
  t_last_error = message;
  return status;
}

// Runs `body`, translating exceptions into a status and the thread's message.
template <typename F>
rwkvrt_status guarded(F&& body) {
  try {
    t_last_error.clear();
    body();
    return RWKVRT_OK;
  } catch (const rwkvrt::Error& e) {
    return set_error(e.status(), e.what());
  } catch (const std::bad_alloc&) {
    return set_error(RWKVRT_ERR_OUT_OF_MEMORY, "out of host memory");
  } catch (const std::exception& e) {
    return set_error(RWKVRT_ERR_INTERNAL, std::string("internal error: ") + e.what());
  } catch (...) {
    return set_error(RWKVRT_ERR_INTERNAL, "internal error: unknown exception");
  }
}

// Output structs: the caller's struct_size must cover at least the v1 layout.  Only
// min(caller size, our size) bytes are written, and struct_size is preserved.
template <typename T>
void check_out_struct(const T* out, const char* what) {
  if (!out) rwkvrt::fail(RWKVRT_ERR_INVALID_ARGUMENT, "{} is null", what);
  if (out->struct_size < sizeof(T))
    rwkvrt::fail(RWKVRT_ERR_INVALID_ARGUMENT, "{}.struct_size is {}, expected at least {}", what,
                 out->struct_size, sizeof(T));
}

template <typename T>
void copy_out(T* out, T full) {
  full.struct_size = out->struct_size;
  std::memcpy(out, &full, sizeof(T));
}

template <typename T>
void require(const T* p, const char* what) {
  if (!p) rwkvrt::fail(RWKVRT_ERR_INVALID_ARGUMENT, "{} is null", what);
}

// The number a C caller passed for an enum, as a parameter or a struct field.  C lets any int
// through, but in C++ reading an enum object whose value is outside the enum's range, even to
// cast it, is undefined (UBSan -fsanitize=enum); its bytes copied into an int are that number.
// Switch on this, with a default case for the values that are not enumerators.
template <typename E>
int c_enum_value(const E& value) {
  static_assert(std::is_enum_v<E> && sizeof(E) == sizeof(int), "a C enum, passed as an int");
  int v = 0;
  std::memcpy(&v, &value, sizeof(v));
  return v;
}

// Input params structs: an older caller's smaller struct is taken as far as it goes, with the
// defaults for the rest.  `defaults` must come from the matching *_default() function.
template <typename T>
T read_params(const T* params, T defaults, const char* what) {
  if (params) {
    if (params->struct_size < sizeof(uint32_t) || params->struct_size > 4096)
      rwkvrt::fail(RWKVRT_ERR_INVALID_ARGUMENT, "{}.struct_size {} is invalid", what,
                   params->struct_size);
    std::memcpy(&defaults, params, std::min<size_t>(params->struct_size, sizeof(T)));
  }
  return defaults;
}

}  // namespace rwkvrt::capi
