/*
 * rwkvrt — embeddable runtime for RWKV language models.  Public C ABI.
 *
 * Conventions (see docs/C-API-GUIDELINES.md):
 *  - Every fallible function returns rwkvrt_status; RWKVRT_OK (0) is success.  On failure a
 *    human-readable message is available from rwkvrt_last_error() on the same thread, and every
 *    out-parameter is left untouched.
 *  - Handles are opaque.  Every *_load / *_create has a *_free; *_free(NULL) is a no-op.
 *  - Parameter structs begin with `struct_size`; obtain them from the matching *_default()
 *    function so that fields appended in later versions get their defaults.
 *  - Thread-safety baseline: the backend registry and every rwkvrt_model function are safe to call
 *    from any thread; a model is immutable after load and may be shared by many sessions on many
 *    threads.  A session must be used by one thread at a time (distinct sessions are independent),
 *    except rwkvrt_session_cancel(), which any thread may call at any time.
 *  - Enumerators are never renumbered; functions and struct fields are only ever appended.
 *
 * Every declaration names the ABI version it appeared in ("since 1").
 */
#ifndef RWKVRT_RWKVRT_H_
#define RWKVRT_RWKVRT_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define RWKVRT_API __declspec(dllimport)
#elif defined(__GNUC__)
#define RWKVRT_API __attribute__((visibility("default")))
#else
#define RWKVRT_API
#endif

/* ABI version of this header.  Bumped by one whenever a function or a struct field is appended.
 * A library whose rwkvrt_abi_version() is >= the version a program was compiled against serves it. */
#define RWKVRT_ABI_VERSION 1

/* ---------------------------------------------------------------------------------------------
 * Status codes and errors
 * ------------------------------------------------------------------------------------------- */

/* since 1 */
typedef enum rwkvrt_status {
  RWKVRT_OK = 0,
  RWKVRT_ERR_INVALID_ARGUMENT = 1, /* a NULL handle, a size of the wrong value, an out-of-range id */
  RWKVRT_ERR_IO = 2,               /* a file could not be opened, read or written */
  RWKVRT_ERR_FORMAT = 3,           /* malformed, truncated or hostile file contents */
  RWKVRT_ERR_UNSUPPORTED = 4,      /* well-formed input that this version cannot handle */
  RWKVRT_ERR_BACKEND = 5,          /* a backend (device) operation failed */
  RWKVRT_ERR_NO_BACKEND = 6,       /* no usable backend, or the requested one is not available */
  RWKVRT_ERR_OUT_OF_MEMORY = 7,    /* host or device memory exhausted */
  RWKVRT_ERR_STATE_MISMATCH = 8,   /* a state of another model, or of the wrong size */
  RWKVRT_ERR_CORRUPT = 9,          /* a checksum did not match */
  RWKVRT_ERR_BUFFER_TOO_SMALL = 10, /* caller buffer too small; the needed size is reported */
  RWKVRT_ERR_CANCELLED = 11,       /* cancelled by the caller (progress callback, cancel call) */
  RWKVRT_ERR_INTERNAL = 12,        /* a bug in rwkvrt; please report it with the message */
  RWKVRT_ERR_ABI_MISMATCH = 13     /* a plugin or caller built for an ABI this library lacks */
} rwkvrt_status;

/* The message describing the last failure of an rwkvrt call on the calling thread, or "" if the
 * last call succeeded or none failed yet.  The string is owned by the library and valid until the
 * next rwkvrt call on this thread.  Thread-safe (the message is per thread).  since 1 */
RWKVRT_API const char* rwkvrt_last_error(void);

/* A stable identifier for a status ("RWKVRT_ERR_FORMAT"), or "RWKVRT_UNKNOWN_STATUS".  Static
 * storage; thread-safe.  since 1 */
RWKVRT_API const char* rwkvrt_status_name(rwkvrt_status status);

/* ---------------------------------------------------------------------------------------------
 * Versions and logging
 * ------------------------------------------------------------------------------------------- */

/* The ABI version the loaded library implements (>= RWKVRT_ABI_VERSION of any header it
 * serves).  Thread-safe.  since 1 */
RWKVRT_API uint32_t rwkvrt_abi_version(void);

/* The library's release version, "MAJOR.MINOR.PATCH".  Static storage; thread-safe.  since 1 */
RWKVRT_API const char* rwkvrt_version_string(void);

/* since 1 */
typedef enum rwkvrt_log_level {
  RWKVRT_LOG_ERROR = 0,
  RWKVRT_LOG_WARN = 1,
  RWKVRT_LOG_INFO = 2,
  RWKVRT_LOG_DEBUG = 3
} rwkvrt_log_level;

/* Receives one complete log line (no trailing newline).  May be called from any thread the
 * library runs on; it must not call back into rwkvrt. */
typedef void (*rwkvrt_log_fn)(void* user_data, rwkvrt_log_level level, const char* message);

/* Routes library log lines of `level` or more severe to `fn`.  fn == NULL restores the default,
 * which writes WARN and ERROR lines to stderr.  The env var RWKVRT_LOG_LEVEL (error, warn, info,
 * debug) sets the initial level.  Thread-safe.  since 1 */
RWKVRT_API void rwkvrt_set_log_callback(rwkvrt_log_fn fn, void* user_data, rwkvrt_log_level level);

/* ---------------------------------------------------------------------------------------------
 * Backends
 *
 * Backends are plugins (shared libraries named librwkvrt-backend-<name>.so) discovered at first
 * use in: every directory of the env var RWKVRT_BACKEND_PATH (':'-separated), the install's plugin
 * directory, and the directory holding librwkvrt itself.  The first plugin found for a name wins.
 * Plugins are never unloaded, so strings they report stay valid until process exit.
 * ------------------------------------------------------------------------------------------- */

/* since 1 */
typedef struct rwkvrt_backend_info {
  uint32_t struct_size;      /* set by the caller to sizeof(rwkvrt_backend_info) */
  const char* name;          /* "cpu", "cuda", ... */
  const char* description;   /* one line, e.g. "x86-64 AVX-512 + oneDNN 2.6" */
  const char* path;          /* the shared library it was loaded from */
  uint32_t abi_version;      /* plugin ABI version negotiated with it (0 if refused) */
  float score;               /* higher is preferred; 0 means it cannot run on this machine */
  int32_t device_count;      /* 0 if unavailable */
  const char* unavailable_reason; /* "" when usable, else why not (no GPU, ABI refused, ...) */
} rwkvrt_backend_info;

/* since 1 */
typedef struct rwkvrt_device_info {
  uint32_t struct_size;   /* set by the caller to sizeof(rwkvrt_device_info) */
  const char* name;       /* "AMD EPYC 9R14 (2 threads)", "NVIDIA H100 80GB HBM3", ... */
  uint64_t memory_total;  /* bytes; 0 if unknown */
  uint64_t memory_free;   /* bytes; 0 if unknown */
} rwkvrt_device_info;

/* Number of backend plugins found (usable or not).  Discovers plugins on first call.  Thread-safe.
 * Errors: INVALID_ARGUMENT (out_count NULL).  since 1 */
RWKVRT_API rwkvrt_status rwkvrt_backend_count(size_t* out_count);

/* Describes backend `index` (0 <= index < count).  Strings are owned by the library and valid
 * until process exit.  Thread-safe.  Errors: INVALID_ARGUMENT (bad index, NULL, struct_size too
 * small).  since 1 */
RWKVRT_API rwkvrt_status rwkvrt_backend_get_info(size_t index, rwkvrt_backend_info* out_info);

/* Describes device `device` of backend `index`.  Strings valid until process exit.  Thread-safe.
 * Errors: INVALID_ARGUMENT, NO_BACKEND (backend unusable).  since 1 */
RWKVRT_API rwkvrt_status rwkvrt_backend_get_device(size_t index, int32_t device,
                                                   rwkvrt_device_info* out_info);

/* Loads a backend plugin from an explicit path and adds it to the registry; *out_index receives
 * its index.  Loading the same file twice returns the existing index.  A plugin whose ABI range
 * does not include one this library speaks is refused with ABI_MISMATCH and a message naming both
 * ranges.  Thread-safe.  Errors: IO (dlopen failed), ABI_MISMATCH, FORMAT (no entry point).
 * since 1 */
RWKVRT_API rwkvrt_status rwkvrt_backend_load(const char* path, size_t* out_index);

/* ---------------------------------------------------------------------------------------------
 * Models
 * ------------------------------------------------------------------------------------------- */

/* since 1 */
typedef struct rwkvrt_model rwkvrt_model;

/* Reported while loading: fraction in [0,1] and a short stage name ("reading", "preparing").
 * Return nonzero to cancel the load (rwkvrt_model_load then fails with CANCELLED).  Called on the
 * loading thread. */
typedef int (*rwkvrt_progress_fn)(void* user_data, float fraction, const char* stage);

/* since 1 */
typedef enum rwkvrt_weight_type {
  RWKVRT_WEIGHTS_AUTO = 0, /* keep the checkpoint's precision (fp32 stays fp32; bf16/fp16 stay) */
  RWKVRT_WEIGHTS_F32 = 1,  /* convert matrices to fp32 (most exact, twice the memory of bf16) */
  RWKVRT_WEIGHTS_BF16 = 2,
  RWKVRT_WEIGHTS_F16 = 3
} rwkvrt_weight_type;

/* since 1 */
typedef struct rwkvrt_model_params {
  uint32_t struct_size;
  const char* backend;     /* NULL, "" or "auto": the usable backend with the highest score */
  int32_t device;          /* device index within the backend; default 0 */
  int32_t n_threads;       /* CPU worker threads; 0 = all online cores */
  rwkvrt_weight_type weights; /* default RWKVRT_WEIGHTS_AUTO */
  float group_norm_eps;    /* v5-v7 GroupNorm eps; 0 = the file format's default (64e-5 for
                              official checkpoints, 1e-5 for rwkv.cpp .bin files) */
  rwkvrt_progress_fn progress; /* optional */
  void* progress_user_data;
} rwkvrt_model_params;

/* Defaults for rwkvrt_model_load.  Thread-safe.  since 1 */
RWKVRT_API rwkvrt_model_params rwkvrt_model_params_default(void);

/* Loads a checkpoint (.pth as published by BlinkDL, .safetensors, or rwkv.cpp .bin; detected from
 * the file's contents) and prepares its weights on a backend.  params may be NULL (defaults).
 * On success *out_model owns the model; free it with rwkvrt_model_free after every session made
 * from it is freed.  Thread-safe (distinct loads may run concurrently).
 * Errors: INVALID_ARGUMENT, IO, FORMAT (broken or hostile file; the message names the problem),
 * UNSUPPORTED (unknown model version), NO_BACKEND, OUT_OF_MEMORY, CANCELLED.  since 1 */
RWKVRT_API rwkvrt_status rwkvrt_model_load(const char* path, const rwkvrt_model_params* params,
                                           rwkvrt_model** out_model);

/* Frees a model.  Every session of the model must have been freed.  NULL is a no-op.  since 1 */
RWKVRT_API void rwkvrt_model_free(rwkvrt_model* model);

/* since 1 */
typedef enum rwkvrt_dtype {
  RWKVRT_DTYPE_F32 = 0,
  RWKVRT_DTYPE_F16 = 1,
  RWKVRT_DTYPE_BF16 = 2,
  RWKVRT_DTYPE_Q4_0 = 3,
  RWKVRT_DTYPE_Q4_1 = 4,
  RWKVRT_DTYPE_Q5_0 = 5,
  RWKVRT_DTYPE_Q5_1 = 6,
  RWKVRT_DTYPE_Q8_0 = 7
} rwkvrt_dtype;

/* since 1 */
typedef struct rwkvrt_model_info {
  uint32_t struct_size;       /* set by the caller to sizeof(rwkvrt_model_info) */
  uint32_t rwkv_version;      /* 40, 50, 51, 52, 60 or 70 (version x 10) */
  const char* version_name;   /* "4", "5.0", "5.1", "5.2", "6.0", "7.0" */
  const char* file_format;    /* "pth", "safetensors", "rwkvcpp" */
  uint32_t n_layer;
  uint32_t n_embd;            /* C */
  uint32_t n_att;             /* A (= C in official models) */
  uint32_t n_ffn;             /* F */
  uint32_t n_head;            /* H (v5-v7; 0 for v4) */
  uint32_t head_size;         /* N (v5-v7; 0 for v4) */
  uint32_t n_vocab;
  rwkvrt_dtype file_dtype;    /* precision of the checkpoint's matrices */
  rwkvrt_dtype weight_dtype;  /* precision the backend keeps the matrices in */
  uint64_t n_params;          /* parameters in the checkpoint */
  uint64_t weight_bytes;      /* bytes the prepared weights occupy on the device */
  uint64_t state_floats;      /* floats in the canonical state (rwkvrt_session_export_state) */
  float group_norm_eps;       /* in use (v5-v7) */
  const char* backend;        /* name of the backend the model runs on */
  int32_t device;
  uint32_t has_initial_state; /* 1 if the checkpoint carries time_state tensors */
} rwkvrt_model_info;

/* Fills *out_info.  Strings are owned by the model and valid until it is freed.  Thread-safe.
 * Errors: INVALID_ARGUMENT (NULL, struct_size too small).  since 1 */
RWKVRT_API rwkvrt_status rwkvrt_model_get_info(const rwkvrt_model* model,
                                               rwkvrt_model_info* out_info);

/* The canonical state is a flat array of fp32 values: for each layer, in order, the tensors the
 * reference package keeps (v4: att shift (C), aa (A), bb (A), pp (A), ffn shift (C); v5/v6: att
 * shift (C), wkv (H,N,N) as [head][key][value], ffn shift (C); v7: att shift (C), wkv (H,N,N) as
 * [head][value][key], ffn shift (C)), each row-major.  These calls describe that layout. */

/* since 1 */
typedef struct rwkvrt_state_tensor_info {
  uint32_t struct_size;
  const char* name;    /* "blocks.3.att.shift", "blocks.3.att.wkv", "blocks.3.att.aa", ... */
  uint64_t offset;     /* in floats from the start of the canonical state */
  uint32_t n_dims;
  uint64_t shape[4];
} rwkvrt_state_tensor_info;

/* Number of tensors in the canonical state.  Thread-safe.  since 1 */
RWKVRT_API rwkvrt_status rwkvrt_model_state_tensor_count(const rwkvrt_model* model,
                                                         size_t* out_count);

/* Describes state tensor `index`.  Strings valid while the model lives.  Thread-safe.  since 1 */
RWKVRT_API rwkvrt_status rwkvrt_model_state_tensor_info(const rwkvrt_model* model, size_t index,
                                                        rwkvrt_state_tensor_info* out_info);

/* ---------------------------------------------------------------------------------------------
 * Sessions: a recurrent state plus the scratch memory to advance it
 * ------------------------------------------------------------------------------------------- */

/* since 1 */
typedef struct rwkvrt_session rwkvrt_session;

/* Creates a session at the model's initial state (zeros, or the checkpoint's time_state).
 * The session keeps the model alive until rwkvrt_session_free.  Thread-safe with respect to the
 * model.  Errors: INVALID_ARGUMENT, OUT_OF_MEMORY, BACKEND.  since 1 */
RWKVRT_API rwkvrt_status rwkvrt_session_create(rwkvrt_model* model, rwkvrt_session** out_session);

/* Frees a session.  NULL is a no-op.  since 1 */
RWKVRT_API void rwkvrt_session_free(rwkvrt_session* session);

/* Returns the session to the model's initial state.  Errors: INVALID_ARGUMENT, BACKEND.
 * since 1 */
RWKVRT_API rwkvrt_status rwkvrt_session_reset(rwkvrt_session* session);

/* since 1 */
typedef enum rwkvrt_logits_mode {
  RWKVRT_LOGITS_NONE = 0, /* advance the state only (fastest prefill) */
  RWKVRT_LOGITS_LAST = 1, /* logits after the last token: n_vocab floats */
  RWKVRT_LOGITS_ALL = 2   /* logits after every token: n_tokens x n_vocab floats, row-major */
} rwkvrt_logits_mode;

/* Sequence mode: feeds n_tokens tokens at once (the projections are batched over the sequence)
 * and advances the state.  The result equals feeding them one by one with rwkvrt_session_step,
 * up to fp32 rounding.  `logits` must hold the floats `mode` asks for (logits_capacity counts
 * floats); it may be NULL with RWKVRT_LOGITS_NONE.  Tokens must lie in [0, n_vocab).
 * On error the state is unchanged (validation happens before any work), except for BACKEND
 * failures, after which the state is undefined until reset or import.
 * Errors: INVALID_ARGUMENT (bad token id, n_tokens 0, NULL), BUFFER_TOO_SMALL, BACKEND.
 * since 1 */
RWKVRT_API rwkvrt_status rwkvrt_session_feed(rwkvrt_session* session, const int32_t* tokens,
                                             size_t n_tokens, rwkvrt_logits_mode mode,
                                             float* logits, size_t logits_capacity);

/* RNN mode: feeds one token and writes the n_vocab logits that follow it into `logits` (which may
 * be NULL to skip the head).  Errors as rwkvrt_session_feed.  since 1 */
RWKVRT_API rwkvrt_status rwkvrt_session_step(rwkvrt_session* session, int32_t token,
                                             float* logits, size_t logits_capacity);

/* Copies the canonical fp32 state (layout: see rwkvrt_model_state_tensor_info) into `dst`, which
 * holds `capacity` floats (at least rwkvrt_model_info.state_floats).
 * Errors: INVALID_ARGUMENT, BUFFER_TOO_SMALL, BACKEND.  since 1 */
RWKVRT_API rwkvrt_status rwkvrt_session_export_state(rwkvrt_session* session, float* dst,
                                                     size_t capacity);

/* Replaces the session's state with `n_floats` canonical fp32 values (n_floats must equal
 * rwkvrt_model_info.state_floats).  Errors: INVALID_ARGUMENT, STATE_MISMATCH (wrong size), BACKEND.
 * since 1 */
RWKVRT_API rwkvrt_status rwkvrt_session_import_state(rwkvrt_session* session, const float* src,
                                                     size_t n_floats);

/* Serialises the state as a self-describing blob (little-endian; header with magic, format
 * version, RWKV version, dims and a fingerprint of the model; fp32 tensors; CRC-32 trailer), which
 * any backend on any machine can load into a session of the same model.  With buffer == NULL only
 * *out_size is set.  If capacity is too small, *out_size receives the needed size and
 * BUFFER_TOO_SMALL is returned.  Errors: INVALID_ARGUMENT, BUFFER_TOO_SMALL, BACKEND.  since 1 */
RWKVRT_API rwkvrt_status rwkvrt_session_save_state(rwkvrt_session* session, void* buffer,
                                                   size_t capacity, size_t* out_size);

/* Loads a blob made by rwkvrt_session_save_state.  The blob is validated completely (magic,
 * version, size, checksum, model fingerprint and dims) before the state changes.
 * Errors: INVALID_ARGUMENT, FORMAT (not a state blob, truncated), CORRUPT (checksum),
 * STATE_MISMATCH (another model), BACKEND.  since 1 */
RWKVRT_API rwkvrt_status rwkvrt_session_load_state(rwkvrt_session* session, const void* blob,
                                                   size_t size);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* RWKVRT_RWKVRT_H_ */
