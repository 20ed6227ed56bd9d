/*
 * rwkvrt — embeddable runtime for RWKV language models.  Public C ABI.
 *
 * Conventions (see docs/C-API.md):
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
#define RWKVRT_ABI_VERSION 2

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

/* How matmuls compute (rwkvrt_model_params.matmul_precision).  since 2 */
typedef enum rwkvrt_matmul_precision {
  /* fp32 activations and fp32 sums whatever the weights' precision: every pass agrees with an
     fp32 computation on the stored weights (max abs logit error ~1e-5), and a prompt fed at once
     gives the logits of feeding it token by token. */
  RWKVRT_MATMUL_EXACT = 0,
  /* For speed on GPUs: matmuls over many rows (prompts, large batches) may round the activations
     to the f16/bf16 weights' type and use one tensor-core pass; sums stay fp32.  Relative error
     per product up to 2^-11 (f16) or 2^-8 (bf16); docs/CUDA.md gives the measured logit
     differences.  Batch-1 decode and fp32 weights compute as EXACT; the CPU backend always
     computes as EXACT. */
  RWKVRT_MATMUL_FAST = 1
} rwkvrt_matmul_precision;

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
  const char* tokenizer_path; /* optional: World vocabulary .txt or Hugging Face tokenizer.json for
                                 this model; NULL = find it (see rwkvrt_model_get_tokenizer) */
  /* since 2; callers built against ABI 1 headers pass a smaller struct_size and
     get the default. */
  rwkvrt_matmul_precision matmul_precision; /* default RWKVRT_MATMUL_EXACT */
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

/* Frees a model.  Sessions, batches and prefix caches made from it keep what they need alive, so
 * they may be freed before or after it; the tokenizer from rwkvrt_model_get_tokenizer is freed
 * with the model.  NULL is a no-op.  since 1 */
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

/* ---------------------------------------------------------------------------------------------
 * Tokenizers
 *
 * Three kinds: "world" (RWKV World vocabulary, rwkv_vocab_v20230424.txt), "bpe" (a Hugging Face
 * tokenizer.json byte-level BPE, e.g. 20B_tokenizer.json for RWKV-4 Pile models) and "byte" (one
 * token per byte, for byte-level models).  A tokenizer is immutable; every function below is
 * thread-safe.
 * ------------------------------------------------------------------------------------------- */

/* since 1 */
typedef struct rwkvrt_tokenizer rwkvrt_tokenizer;

/* Loads a tokenizer file, detecting its kind from the contents (a JSON object is a tokenizer.json,
 * lines "<id> <literal> <nbytes>" a World vocabulary).  Free with rwkvrt_tokenizer_free.
 * Errors: INVALID_ARGUMENT, IO, FORMAT (names the file and line), UNSUPPORTED (a tokenizer.json
 * this library cannot reproduce exactly).  since 1 */
RWKVRT_API rwkvrt_status rwkvrt_tokenizer_load(const char* path, rwkvrt_tokenizer** out_tokenizer);

/* The byte-level tokenizer (256 ids, id = byte value).  since 1 */
RWKVRT_API rwkvrt_status rwkvrt_tokenizer_create_byte(rwkvrt_tokenizer** out_tokenizer);

/* NULL is a no-op.  Do not free a tokenizer obtained from rwkvrt_model_get_tokenizer.  since 1 */
RWKVRT_API void rwkvrt_tokenizer_free(rwkvrt_tokenizer* tokenizer);

/* since 1 */
typedef struct rwkvrt_tokenizer_info {
  uint32_t struct_size; /* set by the caller to sizeof(rwkvrt_tokenizer_info) */
  const char* kind;     /* "world", "bpe" or "byte"; static storage */
  uint32_t vocab_size;  /* one more than the largest id */
  int32_t eos_id;       /* end-of-text id (0 for World and byte), -1 if none */
} rwkvrt_tokenizer_info;

/* since 1 */
RWKVRT_API rwkvrt_status rwkvrt_tokenizer_get_info(const rwkvrt_tokenizer* tokenizer,
                                                   rwkvrt_tokenizer_info* out_info);

/* Encodes text_len bytes of `text` (need not be NUL-terminated; BPE requires valid UTF-8).  Writes
 * at most `capacity` ids to `ids` (may be NULL with capacity 0) and the number of ids of the whole
 * text to *out_count.  If capacity is too small, nothing is written to ids, *out_count receives
 * the needed count and BUFFER_TOO_SMALL is returned.  Errors: INVALID_ARGUMENT (malformed UTF-8
 * for BPE), BUFFER_TOO_SMALL.  since 1 */
RWKVRT_API rwkvrt_status rwkvrt_tokenizer_encode(const rwkvrt_tokenizer* tokenizer,
                                                 const char* text, size_t text_len, int32_t* ids,
                                                 size_t capacity, size_t* out_count);

/* Decodes ids to their bytes (which may be invalid UTF-8 if the ids end mid-character), written to
 * `buffer` without a terminating NUL; *out_size receives the byte count.  Same BUFFER_TOO_SMALL
 * protocol as rwkvrt_tokenizer_encode.  Errors: INVALID_ARGUMENT (an id outside the vocabulary,
 * named in the message), BUFFER_TOO_SMALL.  since 1 */
RWKVRT_API rwkvrt_status rwkvrt_tokenizer_decode(const rwkvrt_tokenizer* tokenizer,
                                                 const int32_t* ids, size_t n_ids, char* buffer,
                                                 size_t capacity, size_t* out_size);

/* The model's tokenizer, found at load time in this order: rwkvrt_model_params.tokenizer_path; the
 * file's metadata ("rwkvrt.tokenizer" = "byte"); a vocabulary of 256 (byte-level model); a file
 * next to the model named "<model file name without extension>.tokenizer.json" or ".vocab.txt",
 * "tokenizer.json", "rwkv_vocab_v20230424.txt" (World, for vocab 65536) or "20B_tokenizer.json"
 * (vocab 50277).  The tokenizer is owned by the model (do not free it).
 * Errors: INVALID_ARGUMENT, UNSUPPORTED (none found; the message says which files were tried and
 * to pass tokenizer_path).  since 1 */
RWKVRT_API rwkvrt_status rwkvrt_model_get_tokenizer(const rwkvrt_model* model,
                                                    const rwkvrt_tokenizer** out_tokenizer);

/* ---------------------------------------------------------------------------------------------
 * Sampling
 * ------------------------------------------------------------------------------------------- */

/* since 1 */
typedef enum rwkvrt_sampling_mode {
  /* bias and bans, penalties (repetition, presence, frequency with decay), then top-k, top-p,
   * min-p on the softmax, then temperature over the survivors (llama.cpp's order) */
  RWKVRT_SAMPLING_STANDARD = 0,
  /* reproduces rwkv.utils.PIPELINE of the official package: presence/frequency penalties with
   * decay that skip whitespace and digit tokens, top-p then top-k, temperature after filtering.
   * min_p, repetition_penalty, logit bias and penalty_last_n must keep their defaults. */
  RWKVRT_SAMPLING_REFERENCE_PIPELINE = 1
} rwkvrt_sampling_mode;

/* since 1 */
typedef struct rwkvrt_sampling_params {
  uint32_t struct_size;
  rwkvrt_sampling_mode mode;  /* default STANDARD */
  float temperature;          /* >= 0; 0 = greedy.  default 1.0 */
  int32_t top_k;              /* 0 = off (default) */
  float top_p;                /* [0, 1]; 1 = off (default); 0 keeps only the most likely token(s) */
  float min_p;                /* [0, 1]; 0 = off (default) */
  float repetition_penalty;   /* > 0; 1 = off (default) */
  float presence_penalty;     /* default 0 */
  float frequency_penalty;    /* default 0 */
  float penalty_decay;        /* [0, 1]; weight past occurrences keep per token; default 1 */
  int32_t penalty_last_n;     /* window of generated tokens the penalties see; -1 = all (default) */
  uint64_t seed;              /* the same seed reproduces a run bit for bit; default 0 */
  const int32_t* banned;      /* ids never sampled (copied by the callee) */
  size_t n_banned;
  const int32_t* logit_bias_ids; /* logit_bias_values[i] is added to logit_bias_ids[i] */
  const float* logit_bias_values;
  size_t n_logit_bias;
} rwkvrt_sampling_params;

/* Defaults (see the fields).  since 1 */
RWKVRT_API rwkvrt_sampling_params rwkvrt_sampling_params_default(void);

/* Sets the session's sampler (replacing the previous one; its penalty history and random stream
 * start afresh from params->seed).  A new session samples with the defaults.  Errors:
 * INVALID_ARGUMENT (a parameter out of range, an id outside the vocabulary, reference mode with a
 * field it lacks, or without a tokenizer).  since 1 */
RWKVRT_API rwkvrt_status rwkvrt_session_set_sampling(rwkvrt_session* session,
                                                     const rwkvrt_sampling_params* params);

/* ---------------------------------------------------------------------------------------------
 * Prompts and streaming generation
 *
 * A session remembers the logits after the last token it was fed (by rwkvrt_session_prompt*,
 * rwkvrt_session_feed or rwkvrt_session_step with logits requested, or a generation); generation
 * samples its first token from them.  Every token a generation samples is fed to the state,
 * including the one that ends it (an end-of-text token, the last token of a stop string, the
 * max_tokens-th token); so after a generation the state equals feeding the prompt and every
 * generated token.  A cancelled generation feeds nothing more once it sees the cancel.
 * ------------------------------------------------------------------------------------------- */

/* Encodes `text` with the model's tokenizer and feeds it (sequence mode), keeping the logits of its
 * last token for the next generation.  Errors: INVALID_ARGUMENT (empty text), UNSUPPORTED (no
 * tokenizer), BACKEND.  since 1 */
RWKVRT_API rwkvrt_status rwkvrt_session_prompt(rwkvrt_session* session, const char* text,
                                               size_t text_len);

/* As rwkvrt_session_prompt, with token ids.  Errors: INVALID_ARGUMENT (bad id, n_tokens 0).
 * since 1 */
RWKVRT_API rwkvrt_status rwkvrt_session_prompt_tokens(rwkvrt_session* session,
                                                      const int32_t* tokens, size_t n_tokens);

/* Copies the logits the session remembers (those after the last token fed with logits, which the
 * next generation samples from) into dst, which holds capacity floats (at least n_vocab).
 * Errors: INVALID_ARGUMENT (no logits: nothing fed with logits since creation, reset or a state
 * import/load), BUFFER_TOO_SMALL.  since 1 */
RWKVRT_API rwkvrt_status rwkvrt_session_get_logits(const rwkvrt_session* session, float* dst,
                                                   size_t capacity);

/* since 1 */
typedef enum rwkvrt_finish_reason {
  RWKVRT_FINISH_NONE = 0,      /* still generating */
  RWKVRT_FINISH_STOP = 1,      /* a stop string appeared (it is not part of the text) */
  RWKVRT_FINISH_LENGTH = 2,    /* max_tokens were generated */
  RWKVRT_FINISH_EOS = 3,       /* the end-of-text token was sampled (its text is not emitted) */
  RWKVRT_FINISH_CANCELLED = 4  /* rwkvrt_session_cancel, or the callback returned nonzero */
} rwkvrt_finish_reason;

/* since 1 */
typedef struct rwkvrt_generate_params {
  uint32_t struct_size;
  uint32_t max_tokens;       /* tokens to generate at most; default 256; 0 = no limit */
  const char* const* stop;   /* NUL-terminated stop strings (copied by the callee; so a stop
                                string cannot contain NUL); the text is cut before the first
                                occurrence, also across token boundaries */
  size_t n_stop;
  uint32_t stop_at_eos;      /* default 1: the tokenizer's end-of-text id ends the generation
                                (World: 0; byte tokenizer: byte 0, NUL; BPE: <|endoftext|>) */
} rwkvrt_generate_params;

/* Defaults (see the fields).  since 1 */
RWKVRT_API rwkvrt_generate_params rwkvrt_generate_params_default(void);

/* One step of a generation, as reported to a callback or by rwkvrt_session_generate_next.
 * Written by the library (also as arrays, by rwkvrt_batch_generate_next), so it has no
 * struct_size and its layout is frozen: later information comes through new functions.  since 1 */
typedef struct rwkvrt_generate_piece {
  const char* text;            /* valid UTF-8, may be empty: bytes of an incomplete character,
                                  or text that may begin a stop string, are held back until
                                  decided.  Owned by the session; valid until its next call. */
  size_t text_len;
  int32_t token;               /* the token sampled in this step, -1 if none */
  rwkvrt_finish_reason finish; /* NONE while the generation goes on */
  uint32_t n_generated;        /* tokens sampled so far in this generation */
} rwkvrt_generate_piece;

/* Receives each piece.  Return nonzero to stop (finish reason CANCELLED).  since 1 */
typedef int (*rwkvrt_piece_fn)(void* user_data, const rwkvrt_generate_piece* piece);

/* Starts a generation (pull mode); params may be NULL (defaults).  The session must have logits:
 * a prompt, or a token fed with logits, since creation, reset, import or state load (a loaded
 * state carries no logits, so prompt the next turn before generating).  A cancel requested
 * before this call is discarded.  Without a tokenizer, pieces carry tokens but no text and
 * stop_at_eos is ignored.  Errors: INVALID_ARGUMENT (no logits yet, a generation already in
 * progress, an empty stop string), UNSUPPORTED (stop strings without a tokenizer).  since 1 */
RWKVRT_API rwkvrt_status rwkvrt_session_generate_begin(rwkvrt_session* session,
                                                       const rwkvrt_generate_params* params);

/* Samples one token, feeds it, and describes the step in *out_piece.  A step that finds a cancel
 * pending samples and feeds nothing (no model pass) and finishes with CANCELLED, so cancel +
 * next is also the cheap way to end a generation early.  Once out_piece->finish is
 * not NONE the generation is over (the piece carries the remaining text) and further calls fail
 * with INVALID_ARGUMENT until the next rwkvrt_session_generate_begin.  Errors: INVALID_ARGUMENT
 * (no generation in progress), BACKEND.  since 1 */
RWKVRT_API rwkvrt_status rwkvrt_session_generate_next(rwkvrt_session* session,
                                                      rwkvrt_generate_piece* out_piece);

/* Runs a whole generation (begin + next until finished), calling fn for each piece (including the
 * final one).  If fn returns nonzero, the generation stops before its next token: fn is called
 * once more with the final piece (finish CANCELLED, the text still held back) and the call
 * returns OK.  *out_finish (may be NULL) receives the finish reason.  Errors: as
 * rwkvrt_session_generate_begin and rwkvrt_session_generate_next.  since 1 */
RWKVRT_API rwkvrt_status rwkvrt_session_generate(rwkvrt_session* session,
                                                 const rwkvrt_generate_params* params,
                                                 rwkvrt_piece_fn fn, void* user_data,
                                                 rwkvrt_finish_reason* out_finish);

/* Asks the session's generation in progress to stop before its next token: that step samples and
 * feeds nothing and reports finish CANCELLED with the text still held back.  With no generation in
 * progress it has no effect.  The only session function any thread may call at any time.
 * since 1 */
RWKVRT_API rwkvrt_status rwkvrt_session_cancel(rwkvrt_session* session);

/* ---------------------------------------------------------------------------------------------
 * Fork, state files, prefix cache, batches
 * ------------------------------------------------------------------------------------------- */

/* A new session with a copy of `session`'s state, logits, sampler (random stream and penalty
 * history), initial state, token history and prefix cache attachment; the two evolve
 * independently afterwards.  Errors: INVALID_ARGUMENT (during a generation), OUT_OF_MEMORY,
 * BACKEND.  since 1 */
RWKVRT_API rwkvrt_status rwkvrt_session_fork(rwkvrt_session* session,
                                             rwkvrt_session** out_session);

/* Loads a state-tuning file (a .pth or .safetensors holding blocks.<i>.att.time_state tensors, as
 * RWKV state tuning writes them) and makes it the session's initial state: the session is reset to
 * it now and by every later rwkvrt_session_reset.  Errors: IO, FORMAT, STATE_MISMATCH (shapes of
 * another model), UNSUPPORTED (v4 and v7: the reference defines time_state for v5 and v6 only,
 * and rwkvrt does not guess another orientation).  since 1 */
RWKVRT_API rwkvrt_status rwkvrt_session_load_initial_state(rwkvrt_session* session,
                                                           const char* path);

/* A cache of states after prompts, shared by the sessions of one model: a prompt that starts with
 * a cached token prefix resumes from that state and feeds only the rest.  Thread-safe. */
typedef struct rwkvrt_prefix_cache rwkvrt_prefix_cache; /* since 1 */

/* max_bytes bounds the memory of cached states (least recently used entries go first; an entry
 * larger than max_bytes is not kept).  Errors: INVALID_ARGUMENT (NULL).  since 1 */
RWKVRT_API rwkvrt_status rwkvrt_prefix_cache_create(rwkvrt_model* model, uint64_t max_bytes,
                                                    rwkvrt_prefix_cache** out_cache);
/* Releases the caller's handle.  Sessions still attached keep the cache alive until they are
 * freed or detached.  NULL is a no-op.  since 1 */
RWKVRT_API void rwkvrt_prefix_cache_free(rwkvrt_prefix_cache* cache);

/* Attaches a cache (NULL detaches).  While the session's history since its initial state is known
 * (it is unless a state was imported or loaded since the last reset), rwkvrt_session_prompt*
 * resumes from the longest cached prefix of history + prompt, then stores the state after the
 * prompt.  Results equal feeding the whole text, up to fp32 rounding.  Errors: INVALID_ARGUMENT
 * (NULL session, a cache of another model).  since 1 */
RWKVRT_API rwkvrt_status rwkvrt_session_set_prefix_cache(rwkvrt_session* session,
                                                         rwkvrt_prefix_cache* cache);

/* Tokens of the last prompt reused from the cache (0 if none).  Errors: INVALID_ARGUMENT.
 * since 1 */
RWKVRT_API rwkvrt_status rwkvrt_session_prefix_cache_hit(const rwkvrt_session* session,
                                                         size_t* out_tokens);

/* Batched decode: one call advances many sessions of a model by one token each, in one forward
 * pass (the basis of continuous batching: sessions may join and leave between calls).  A batch
 * is used by one thread at a time; the sessions in a call must not be used elsewhere meanwhile. */
typedef struct rwkvrt_batch rwkvrt_batch; /* since 1 */

/* A batch for up to max_batch sessions per call (1..65536; scratch memory grows with the largest
 * batch used).  Errors: INVALID_ARGUMENT, OUT_OF_MEMORY.  since 1 */
RWKVRT_API rwkvrt_status rwkvrt_batch_create(rwkvrt_model* model, size_t max_batch,
                                             rwkvrt_batch** out_batch);
/* NULL is a no-op.  since 1 */
RWKVRT_API void rwkvrt_batch_free(rwkvrt_batch* batch);

/* Feeds tokens[i] to sessions[i] for i < n (distinct sessions of the batch's model) and writes
 * their logits as rows of `logits` (n x n_vocab floats; NULL to skip).  Each session also keeps
 * its logits for generation.  Equal to rwkvrt_session_step on each, up to fp32 rounding.
 * Validates everything before any state changes.  Errors: INVALID_ARGUMENT (n 0 or above
 * max_batch, a NULL or repeated session, a session of another model or generating, a bad token),
 * BUFFER_TOO_SMALL, BACKEND.  since 1 */
RWKVRT_API rwkvrt_status rwkvrt_batch_step(rwkvrt_batch* batch, rwkvrt_session* const* sessions,
                                           const int32_t* tokens, size_t n, float* logits,
                                           size_t logits_capacity);

/* Advances n sessions, each with a generation begun by rwkvrt_session_generate_begin, by one
 * token in one forward pass: every session samples from its own logits with its own sampler, and
 * out_pieces[i] receives what rwkvrt_session_generate_next would have reported for sessions[i].
 * Sessions whose piece finishes are done (remove them before the next call).  Passing a session
 * without a generation in progress is INVALID_ARGUMENT and changes nothing.  Errors:
 * INVALID_ARGUMENT (as rwkvrt_batch_step), BACKEND (every session of the call then ends its
 * generation, its state undefined until reset or load).  since 1 */
RWKVRT_API rwkvrt_status rwkvrt_batch_generate_next(rwkvrt_batch* batch,
                                                    rwkvrt_session* const* sessions, size_t n,
                                                    rwkvrt_generate_piece* out_pieces);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* RWKVRT_RWKVRT_H_ */
