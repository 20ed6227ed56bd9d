/*
 * rwkvrt backend plugin ABI.
 *
 * A backend is a shared library (librwkvrt-backend-<name>.so) that exports one C function,
 * `rwkvrt_backend_negotiate`.  The host fills in the ABI versions it speaks; the plugin answers
 * with its own range and, if the two overlap, the function table of the highest common version.
 * The table starts with its own size and version, and is only ever appended to within a version's
 * lifetime; a slot documented as optional may be NULL.
 *
 * Memory model.  A backend works on "device addresses": `void*` values returned by buffer_alloc
 * (plus byte offsets the host adds).  The host never dereferences them; on the CPU backend they
 * happen to be ordinary host pointers.  Activations passed to ops are fp32 (the *_half entries
 * aside, see "Half-precision activations" below), row-major, dense unless a leading dimension
 * says otherwise.  Weight matrices are opaque handles made once at load by weight_prepare, in
 * whatever layout and precision the backend prefers.
 *
 * Execution model.  Ops are enqueued on a stream and may run asynchronously; work on one stream
 * runs in order.  upload() returns once the host source may be reused; download() returns once
 * the data is in host memory (it waits for earlier work on the stream).  A stream is used by one
 * host thread at a time; contexts and prepared weights may be shared by all streams of a context.
 *
 * Batches.  Ops that touch the recurrent state take B sequences of T tokens each, with
 * activations laid out [B][T][...] (M = B*T rows), and a rwkvrt_bk_state_ref naming, for each of
 * the B sequences, the device address of that sequence's state block.  States of a batch need not
 * be contiguous, so sessions keep their own state and still decode together.
 *
 * Half-precision activations (revision 4).  The *_half entries are the exception to "activations
 * are fp32": there a `half` argument (RWKVRT_BK_F16 or RWKVRT_BK_BF16) names the type of the
 * activations the op writes or reads, and the float pointers of its arguments that the entry
 * names point to values of that type (leading dimensions count values).  A value written so is
 * the fp32 result rounded to nearest; for f16, values beyond ±65504 (infinities included) become
 * ±65504 and NaN stays NaN, as the rounding of activations by the matmul does.
 *
 * Errors.  Functions returning int return RWKVRT_BK_OK (0) on success; on failure the plugin's
 * last_error() gives a message for the calling thread.
 */
#ifndef RWKVRT_BACKEND_H_
#define RWKVRT_BACKEND_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RWKVRT_BACKEND_ABI_VERSION 1
#define RWKVRT_BACKEND_ENTRY_POINT "rwkvrt_backend_negotiate"

enum {
  RWKVRT_BK_OK = 0,
  RWKVRT_BK_ERROR = 1, /* device or runtime failure */
  RWKVRT_BK_OUT_OF_MEMORY = 2,
  RWKVRT_BK_UNSUPPORTED = 3, /* a dtype, shape or op this backend does not implement */
  RWKVRT_BK_INVALID = 4      /* bad arguments */
};

typedef enum rwkvrt_bk_dtype {
  RWKVRT_BK_F32 = 0,
  RWKVRT_BK_F16 = 1,
  RWKVRT_BK_BF16 = 2,
  RWKVRT_BK_Q4_0 = 3,  /* ggml blocks of 32 along a row: fp16 d, 16 bytes of nibbles */
  RWKVRT_BK_Q4_1 = 4,  /* fp16 d, fp16 m, 16 bytes of nibbles */
  RWKVRT_BK_Q5_0 = 5,  /* fp16 d, u32 high bits, 16 bytes of nibbles */
  RWKVRT_BK_Q5_1 = 6,  /* fp16 d, fp16 m, u32 high bits, 16 bytes of nibbles */
  RWKVRT_BK_Q8_0 = 7,  /* fp16 d, 32 int8 */
  RWKVRT_BK_SAME = 255 /* weight_prepare: keep the source precision */
} rwkvrt_bk_dtype;

typedef struct rwkvrt_bk_context rwkvrt_bk_context; /* one device */
typedef struct rwkvrt_bk_stream rwkvrt_bk_stream;   /* an ordered queue of work on a context */
typedef struct rwkvrt_bk_weight rwkvrt_bk_weight;   /* a prepared matrix */
typedef struct rwkvrt_bk_graph rwkvrt_bk_graph;     /* a captured sequence of ops */

/* Host services the plugin may use.  Valid for the life of the process. */
typedef struct rwkvrt_bk_host {
  uint32_t struct_size;
  /* Writes one log line; level as rwkvrt_log_level (0 error .. 3 debug).  Thread-safe. */
  void (*log)(int level, const char* message);
} rwkvrt_bk_host;

/* The handshake.  The host sets the "in" fields; the plugin always sets the "out" range and, when
 * it accepts, chosen_version and table. */
typedef struct rwkvrt_bk_negotiation {
  uint32_t struct_size;        /* in: sizeof as the host knows it */
  uint32_t host_min_version;   /* in */
  uint32_t host_max_version;   /* in */
  const rwkvrt_bk_host* host;  /* in */
  uint32_t plugin_min_version; /* out */
  uint32_t plugin_max_version; /* out */
  uint32_t chosen_version;     /* out: 0 when the ranges do not overlap */
  const void* table;           /* out: e.g. const rwkvrt_backend_v1* when chosen_version == 1 */
} rwkvrt_bk_negotiation;

/* Returns RWKVRT_BK_OK and fills the negotiation, or RWKVRT_BK_UNSUPPORTED (ranges disjoint; the
 * out range is still set so the host can say which versions were offered). */
typedef int (*rwkvrt_backend_negotiate_fn)(rwkvrt_bk_negotiation* negotiation);

typedef struct rwkvrt_bk_device_desc {
  uint32_t struct_size;
  char name[128];
  uint64_t memory_total; /* bytes, 0 if unknown */
  uint64_t memory_free;
  /* Rows (tokens x sequences) per forward pass the device handles best: the host splits longer
     prompts into passes of this size (scratch memory grows with it).  0 = host default (256). */
  uint32_t preferred_pass_rows;
  /* Appended in revision 4 (set only when struct_size covers it): the rows (M) from which the
     matmuls of weights prepared with RWKVRT_BK_MATMUL_ROUNDED_ACTIVATIONS round their
     activations.  From there on a host may have the producers of those activations write them
     already rounded and hand them over as such (the *_half entries of revision 4): the same
     values reach the matmul without a rounding pass (the sums' order may differ where the
     backend pads rows).  0: never (the backend does not round, or lacks them).
     The field took what was padding at the end of the revision-3 struct (sizeof is unchanged),
     so a revision-3 host's struct_size covers it too; a plugin may write it there harmlessly.
     A field appended later must not rely on struct_size alone to know the host's revision. */
  uint32_t half_activation_rows;
} rwkvrt_bk_device_desc;

typedef struct rwkvrt_bk_context_params {
  uint32_t struct_size;
  int32_t device;
  int32_t n_threads; /* CPU worker threads; 0 = backend default */
} rwkvrt_bk_context_params;

typedef struct rwkvrt_bk_weight_desc {
  uint32_t struct_size;
  const char* name; /* tensor name, for messages */
  uint64_t rows;    /* N: output features */
  uint64_t cols;    /* K: input features (a multiple of 32 for block types) */
  rwkvrt_bk_dtype src_dtype;
  const void* src;            /* host memory, rows x cols row-major (blocks run along a row);
                                 only read during the call */
  rwkvrt_bk_dtype want_dtype; /* requested storage precision, or RWKVRT_BK_SAME; the backend
                                 may choose another and reports it through weight_info */
  /* Appended in revision 2 (read only when struct_size covers it; 0 otherwise): a
     rwkvrt_bk_matmul_precision for the matmuls of this weight. */
  uint32_t matmul_precision;
} rwkvrt_bk_weight_desc;

/* How a weight's matmuls may compute (rwkvrt_bk_weight_desc.matmul_precision). */
typedef enum rwkvrt_bk_matmul_precision {
  /* fp32 activations and fp32 sums whatever the storage: results equal an fp32 matmul on the
     stored values up to the rounding of the sums. */
  RWKVRT_BK_MATMUL_EXACT = 0,
  /* Activations of large matmuls (many rows: prompts, big batches) may be rounded to the
     storage type of f16/bf16 weights so that one tensor-core pass does the work; sums stay
     fp32.  Backends without a faster path compute as EXACT. */
  RWKVRT_BK_MATMUL_ROUNDED_ACTIVATIONS = 1
} rwkvrt_bk_matmul_precision;

typedef struct rwkvrt_bk_weight_info {
  uint32_t struct_size;
  rwkvrt_bk_dtype dtype;          /* precision kept */
  uint64_t bytes;                 /* device memory used */
  uint64_t bytes_read_per_matmul; /* bytes streamed by one matmul (for roofline figures) */
} rwkvrt_bk_weight_info;

/* Per-sequence state addressing: bases[b] is the device address of sequence b's state block
 * (bases itself is a device array of B addresses); the tensor an op touches starts `offset` bytes
 * into each block. */
typedef struct rwkvrt_bk_state_ref {
  void* const* bases;
  uint64_t offset;
} rwkvrt_bk_state_ref;

/* y[M,N] (+)= x[M,K] · Wᵀ, W prepared as [N,K]. */
typedef struct rwkvrt_bk_matmul_args {
  const float* x;
  uint64_t M;
  uint64_t ldx; /* floats between rows of x; 0 = K */
  const rwkvrt_bk_weight* w;
  float* y;
  uint64_t ldy;        /* floats between rows of y; 0 = N */
  uint32_t accumulate; /* 1: add to y (residual connections) */
} rwkvrt_bk_matmul_args;

typedef enum rwkvrt_bk_unary {
  RWKVRT_BK_SIGMOID = 0,
  RWKVRT_BK_TANH = 1,
  RWKVRT_BK_SILU = 2,        /* x·σ(x) */
  RWKVRT_BK_RELU_SQUARE = 3, /* max(x,0)² */
  RWKVRT_BK_NEG_EXP = 4,     /* −exp(x): v5/v6 log-decay from time_decay */
  RWKVRT_BK_V7_LOG_DECAY = 5 /* −0.606531·σ(x): v7 log-decay */
} rwkvrt_bk_unary;

typedef enum rwkvrt_bk_binary {
  RWKVRT_BK_ADD = 0,
  RWKVRT_BK_SUB = 1,
  RWKVRT_BK_MUL = 2
} rwkvrt_bk_binary;

/* Token shift and mixing.  prev[b][t] is the previous token's input (the state for t = 0). */
typedef struct rwkvrt_bk_token_shift_args {
  const float* x; /* [B][T][C] */
  float* prev;    /* [B][T][C] out */
  uint64_t B, T, C;
  rwkvrt_bk_state_ref shift; /* C floats per sequence: read, then set to x[b][T-1] */
} rwkvrt_bk_token_shift_args;

/* out[i][m][c] = x[m][c] + (prev[m][c] − x[m][c]) · (mix[i][c] + (extra ? extra[i][m][c] : 0)) */
typedef struct rwkvrt_bk_mix_args {
  const float* x;
  const float* prev;
  uint64_t M, C;
  uint32_t n_out;     /* 1..8 */
  const float* mix;   /* [n_out][C] */
  const float* extra; /* [n_out][M][C] or NULL */
  float* out;         /* [n_out][M][C] */
} rwkvrt_bk_mix_args;

typedef struct rwkvrt_bk_norm_args {
  const float* x;
  float* y; /* may equal x */
  uint64_t M, C;
  uint64_t groups; /* layer_norm: ignored; group_norm: number of groups (heads), C % groups == 0 */
  const float* gamma;
  const float* beta;
  float eps;
} rwkvrt_bk_norm_args;

/* v4 WKV: log-space stabilised, per channel.  State block at `state` holds aa[C], bb[C], pp[C]. */
typedef struct rwkvrt_bk_wkv4_args {
  uint64_t B, T, C;
  const float* k; /* [B][T][C] */
  const float* v; /* [B][T][C] */
  const float* w; /* [C] = −exp(time_decay) */
  const float* u; /* [C] = time_first */
  float* y;       /* [B][T][C] */
  rwkvrt_bk_state_ref state;
} rwkvrt_bk_wkv4_args;

/* v5/v6 WKV, per head, state S[H][N key][N value]:
 *   y_j = Σ_i r_i (S_ij + u_i k_i v_j);  S_ij ← exp(λ_i) S_ij + k_i v_j
 * λ (log decay) is [C] (v5, constant) or [B][T][C] (v6, per token). */
typedef struct rwkvrt_bk_wkv5_args {
  uint64_t B, T, H, N;
  const float* r;
  const float* k;
  const float* v;
  const float* log_decay;
  uint32_t decay_per_token;
  const float* u; /* [C] */
  float* y;       /* [B][T][C] */
  rwkvrt_bk_state_ref state;
} rwkvrt_bk_wkv5_args;

/* v7 WKV (generalised delta rule), per head, state S[H][N value][N key]:
 *   S ← S·diag(exp(λ)) − (S κ)(κ⊙a)ᵀ + v k̃ᵀ;   y = S r */
typedef struct rwkvrt_bk_wkv7_args {
  uint64_t B, T, H, N;
  const float* r;
  const float* log_decay; /* [B][T][C] */
  const float* k;         /* k̃ [B][T][C] */
  const float* v;
  const float* kappa; /* normalised κ */
  const float* a;     /* in-context learning rate, σ(...) */
  float* y;
  rwkvrt_bk_state_ref state;
} rwkvrt_bk_wkv7_args;

/* v7 key preparation per head: κ = normalise_L2(k⊙k_k), k̃ = k⊙(1 + (a − 1)⊙k_a). */
typedef struct rwkvrt_bk_v7_key_args {
  uint64_t M, H, N;
  const float* k;
  const float* a;
  const float* k_k; /* [C] */
  const float* k_a; /* [C] */
  float* kappa;
  float* ktilde;
} rwkvrt_bk_v7_key_args;

/* v7 bonus per head, added to the GroupNorm output: y_h += (Σ_j r_j k̃_j r_k,j) v_h. */
typedef struct rwkvrt_bk_v7_bonus_args {
  uint64_t M, H, N;
  float* y;
  const float* r;
  const float* ktilde;
  const float* v;
  const float* r_k; /* [C] */
} rwkvrt_bk_v7_bonus_args;

/* RWKV-7's recurrence with what feeds it, in one op: key preparation (as v7_key_prep, κ kept
 * internal), the value residual v' = v + (v_first − v)⊙v_gate (layers after the first; both
 * NULL: v' = v), then wkv7 on k̃, v', κ.  Writes k̃ and v' (needed by the output's bonus term)
 * and y; the state as wkv7. */
typedef struct rwkvrt_bk_v7_wkv_args {
  uint64_t B, T, H, N;
  const float* r;
  const float* log_decay; /* [B][T][C] */
  const float* k;         /* the key projection k (not yet k̃) */
  const float* v;
  const float* a;
  const float* k_k;     /* [C] */
  const float* k_a;     /* [C] */
  const float* v_first; /* [B][T][C] or NULL */
  const float* v_gate;  /* [B][T][C] or NULL (NULL exactly when v_first is) */
  float* ktilde;        /* out: k̃ */
  float* v_out;         /* out: v' when v_first is set (may not alias v); else unused */
  float* y;
  rwkvrt_bk_state_ref state;
} rwkvrt_bk_v7_wkv_args;

/* The start of every RWKV block in one op: LayerNorm, token shift and mixes.  For row m = b·T + t,
 *   h[m] = LayerNorm(x[m]) (as layer_norm),  prev[m] = t > 0 ? h[m − 1] : state_b,
 *   out[i][m][c] = h[m][c] + (prev[m][c] − h[m][c])·mix[i][c],
 * and state_b (C floats at shift) is set to h[b][T − 1].  h and prev are not kept. */
typedef struct rwkvrt_bk_norm_shift_mix_args {
  const float* x; /* [B][T][C] */
  uint64_t B, T, C;
  const float* gamma; /* [C] */
  const float* beta;  /* [C] */
  float eps;
  rwkvrt_bk_state_ref shift;
  uint32_t n_out;   /* 1..8 */
  const float* mix; /* [n_out][C] */
  float* out;       /* [n_out][B·T][C] */
} rwkvrt_bk_norm_shift_mix_args;

/* The end of the v7 time mix, per head h of each row (GroupNorm as group_norm with H groups):
 *   y_h ← (GroupNorm(y)_h + (Σ_j r_j k̃_j r_k,j) v_h) ⊙ g_h,   y read and written in place. */
typedef struct rwkvrt_bk_v7_output_args {
  uint64_t M, H, N;
  float* y;
  const float* gamma; /* [C] */
  const float* beta;  /* [C] */
  float eps;
  const float* r;
  const float* ktilde;
  const float* v;
  const float* r_k; /* [C] */
  const float* g;   /* [M][C] */
} rwkvrt_bk_v7_output_args;

/* The channel mix's two matmuls (revision 3):
 *   y[m] (+)= W_value · relu(W_key · x[m])²   for m < M,
 * with the hidden activations ([M][rows of W_key]) in `hidden`, which the backend may use as
 * scratch (its contents afterwards are unspecified).  W_value's columns must equal W_key's
 * rows.  Same results as matmul_bias_act (RWKVRT_BK_RELU_SQUARE) into hidden followed by matmul,
 * which hosts call instead when the entry is absent. */
typedef struct rwkvrt_bk_channel_mix_args {
  const float* x; /* [M][ldx]; ldx 0 = W_key's columns */
  uint64_t M, ldx;
  const rwkvrt_bk_weight* key;   /* [F][C] */
  const rwkvrt_bk_weight* value; /* [C'][F] */
  float* hidden;                 /* [M][F] */
  float* y;                      /* [M][ldy]; ldy 0 = W_value's rows */
  uint64_t ldy;
  uint32_t accumulate; /* 1: y += …, 0: y = … */
} rwkvrt_bk_channel_mix_args;

/* One matmul of a group (matmul_group): the arguments, then the epilogue. */
typedef struct rwkvrt_bk_matmul_item {
  rwkvrt_bk_matmul_args args;
  const float* bias; /* [N] or NULL */
  int32_t act;       /* rwkvrt_bk_unary or RWKVRT_BK_NO_ACTIVATION */
} rwkvrt_bk_matmul_item;

#define RWKVRT_BK_MAX_GROUP 8

/* The function table of ABI version 1. */
typedef struct rwkvrt_backend_v1 {
  uint32_t struct_size;
  uint32_t abi_version;    /* 1 */
  const char* name;        /* short lowercase name: "cpu", "cuda" */
  const char* description; /* one line */

  /* Message for the calling thread's last failed call of this plugin. */
  const char* (*last_error)(void);

  /* Score on this machine: > 0 usable (higher is better), 0 unusable with `reason` filled. */
  float (*probe)(char* reason, size_t reason_capacity);
  int32_t (*device_count)(void);
  int (*device_describe)(int32_t device, rwkvrt_bk_device_desc* out);

  int (*context_create)(const rwkvrt_bk_context_params* params, rwkvrt_bk_context** out);
  void (*context_free)(rwkvrt_bk_context* ctx);
  int (*stream_create)(rwkvrt_bk_context* ctx, rwkvrt_bk_stream** out);
  void (*stream_free)(rwkvrt_bk_stream* stream);
  int (*stream_synchronize)(rwkvrt_bk_stream* stream);

  int (*buffer_alloc)(rwkvrt_bk_context* ctx, uint64_t bytes, void** out);
  void (*buffer_free)(rwkvrt_bk_context* ctx, void* ptr);
  int (*upload)(rwkvrt_bk_stream* s, void* dst, const void* host_src, uint64_t bytes);
  int (*download)(rwkvrt_bk_stream* s, void* host_dst, const void* src, uint64_t bytes);
  int (*copy)(rwkvrt_bk_stream* s, void* dst, const void* src, uint64_t bytes);
  int (*fill_zero)(rwkvrt_bk_stream* s, void* dst, uint64_t bytes);

  int (*weight_prepare)(rwkvrt_bk_context* ctx, const rwkvrt_bk_weight_desc* desc,
                        rwkvrt_bk_weight** out);
  void (*weight_free)(rwkvrt_bk_context* ctx, rwkvrt_bk_weight* w);
  int (*weight_info)(const rwkvrt_bk_weight* w, rwkvrt_bk_weight_info* out);

  int (*matmul)(rwkvrt_bk_stream* s, const rwkvrt_bk_matmul_args* args);
  /* out[m][:] = table[ids[m]][:]; table is a device fp32 [rows][C]; ids a device int32 [M]
     whose values the host has checked. */
  int (*gather_rows)(rwkvrt_bk_stream* s, const float* table, uint64_t C, const int32_t* ids,
                     uint64_t M, float* out);
  int (*layer_norm)(rwkvrt_bk_stream* s, const rwkvrt_bk_norm_args* args);
  int (*group_norm)(rwkvrt_bk_stream* s, const rwkvrt_bk_norm_args* args);
  int (*token_shift)(rwkvrt_bk_stream* s, const rwkvrt_bk_token_shift_args* args);
  int (*mix)(rwkvrt_bk_stream* s, const rwkvrt_bk_mix_args* args);
  int (*unary)(rwkvrt_bk_stream* s, rwkvrt_bk_unary op, const float* x, float* y, uint64_t n);
  /* y[m][c] = a[m][c] op b[m][c], or b[c] when b_is_row; y may alias a or b. */
  int (*binary)(rwkvrt_bk_stream* s, rwkvrt_bk_binary op, const float* a, const float* b, float* y,
                uint64_t M, uint64_t C, uint32_t b_is_row);
  int (*wkv4)(rwkvrt_bk_stream* s, const rwkvrt_bk_wkv4_args* args);
  int (*wkv5)(rwkvrt_bk_stream* s, const rwkvrt_bk_wkv5_args* args);
  int (*wkv7)(rwkvrt_bk_stream* s, const rwkvrt_bk_wkv7_args* args);
  int (*v7_key_prep)(rwkvrt_bk_stream* s, const rwkvrt_bk_v7_key_args* args);
  int (*v7_bonus)(rwkvrt_bk_stream* s, const rwkvrt_bk_v7_bonus_args* args);

  /* Optional (NULL when unsupported): record the ops enqueued on a stream between capture_begin
   * and capture_end into a graph, and replay it.  A graph replays the same ops on the same
   * addresses; the host re-captures when any of them changes. */
  int (*capture_begin)(rwkvrt_bk_stream* s);
  int (*capture_end)(rwkvrt_bk_stream* s, rwkvrt_bk_graph** out);
  int (*graph_launch)(rwkvrt_bk_stream* s, rwkvrt_bk_graph* g);
  void (*graph_free)(rwkvrt_bk_graph* g);

  /* ---- Appended to version 1 (revision 1).  The host reads an appended entry only when the
   * table's struct_size covers it, so a plugin built against the first revision (whose table
   * ends at graph_free, RWKVRT_BACKEND_V1_MIN_SIZE bytes) keeps loading and simply lacks it. */

  /* Optional (NULL when unsupported): a matmul with an epilogue, one op instead of three,
   *   y[m][n] = act(Σ_k x[m][k]·W[n][k] + bias[n]),
   * with bias a device fp32 [N] or NULL and act a rwkvrt_bk_unary or RWKVRT_BK_NO_ACTIVATION.
   * args->accumulate must be 0.  Accuracy as matmul followed by binary ADD and unary.  Hosts
   * fall back to those three ops when the entry is absent. */
  int (*matmul_bias_act)(rwkvrt_bk_stream* s, const rwkvrt_bk_matmul_args* args, const float* bias,
                         int32_t act);

  /* Optional (NULL when unsupported): n (1..RWKVRT_BK_MAX_GROUP) independent matmuls in one op,
   * each as matmul_bias_act (or as matmul when its act is RWKVRT_BK_NO_ACTIVATION and its bias
   * NULL, accumulate then allowed).  No item's output may overlap another item's input or output.
   * A GPU backend runs a group of small (decode) matmuls as one launch.  Hosts fall back to one
   * call per item. */
  int (*matmul_group)(rwkvrt_bk_stream* s, const rwkvrt_bk_matmul_item* items, uint32_t n);

  /* Optional (NULL when unsupported): layer_norm, token_shift and mix as one op (a GPU backend
   * runs a decode step's in one launch).  Same results as the three ops, which hosts call
   * instead when the entry is absent. */
  int (*norm_shift_mix)(rwkvrt_bk_stream* s, const rwkvrt_bk_norm_shift_mix_args* args);

  /* Optional (NULL when unsupported): group_norm, v7_bonus and the gate multiply as one op.  Same
   * results as the three ops, which hosts call instead when the entry is absent. */
  int (*v7_output)(rwkvrt_bk_stream* s, const rwkvrt_bk_v7_output_args* args);

  /* ---- Appended to version 1 (revision 2); read as those of revision 1. */

  /* Optional (NULL when unsupported): host memory that downloads and uploads reach at the
   * interconnect's full speed (page-locked), for large transfers such as a batch's logits.  It
   * is ordinary host memory for the host's own reads and writes.  Hosts use malloc'd memory when
   * the entries are absent.  host_free(ctx, NULL) is a no-op. */
  int (*host_alloc)(rwkvrt_bk_context* ctx, uint64_t bytes, void** out);
  void (*host_free)(rwkvrt_bk_context* ctx, void* ptr);

  /* Optional (NULL when unsupported): v7_key_prep, the value residual and wkv7 as one op (a GPU
   * backend runs a decode step's in one launch).  Same results as those ops up to fp32 rounding;
   * hosts call them instead when the entry is absent. */
  int (*v7_wkv)(rwkvrt_bk_stream* s, const rwkvrt_bk_v7_wkv_args* args);

  /* ---- Appended to version 1 (revision 3); read as those of revision 1. */

  /* Optional (NULL when unsupported): the channel mix's key matmul, ReLU² and value matmul as
   * one op (a GPU backend applies the ReLU² in the pass that prepares the value matmul's input
   * instead of a pass of its own).  See rwkvrt_bk_channel_mix_args. */
  int (*channel_mix)(rwkvrt_bk_stream* s, const rwkvrt_bk_channel_mix_args* args);

  /* ---- Appended to version 1 (revision 4); read as those of revision 1.  Optional, all four or
   * none (hosts call none unless every one is present): half-precision activations, see the
   * memory model above and rwkvrt_bk_device_desc.half_activation_rows.  With weights whose
   * matmuls round their activations anyway, a producer writing them rounded saves the matmul's
   * rounding pass and half of the bytes written and read. */

  /* norm_shift_mix with args->out holding `half` values. */
  int (*norm_shift_mix_half)(rwkvrt_bk_stream* s, const rwkvrt_bk_norm_shift_mix_args* args,
                             rwkvrt_bk_dtype half);
  /* v7_output writing its result into out ([M][H·N] `half` values) instead of args->y, which is
   * only read; out must not overlap any input (refused when it is args->y). */
  int (*v7_output_half)(rwkvrt_bk_stream* s, const rwkvrt_bk_v7_output_args* args,
                        rwkvrt_bk_dtype half, void* out);
  /* matmul_group with every item's args.x holding `half` values and every item's weight stored
   * as `half` (weight_info's dtype; RWKVRT_BK_UNSUPPORTED otherwise).  The matmuls compute on
   * those values (exact in fp32) with fp32 sums, whatever the weights' matmul precision. */
  int (*matmul_group_half)(rwkvrt_bk_stream* s, const rwkvrt_bk_matmul_item* items, uint32_t n,
                           rwkvrt_bk_dtype half);
  /* channel_mix with args->x holding `half` values, the key weight stored as `half`.  The hidden
   * activations stay fp32 (the value matmul computes as its precision says). */
  int (*channel_mix_half)(rwkvrt_bk_stream* s, const rwkvrt_bk_channel_mix_args* args,
                          rwkvrt_bk_dtype half);
} rwkvrt_backend_v1;

/* `act` of matmul_bias_act when no activation follows. */
#define RWKVRT_BK_NO_ACTIVATION (-1)
/* The size of a first-revision version-1 table: the smallest struct_size a host accepts.
 * Revisions: 1 added matmul_bias_act .. v7_output; 2 added host_alloc, host_free, v7_wkv and
 * rwkvrt_bk_weight_desc.matmul_precision; 3 added channel_mix; 4 added norm_shift_mix_half ..
 * channel_mix_half and rwkvrt_bk_device_desc.half_activation_rows. */
#define RWKVRT_BACKEND_V1_MIN_SIZE offsetof(rwkvrt_backend_v1, matmul_bias_act)
/* Whether `table` (version 1) has the appended entry `member`.  Plugins test appended fields of
 * the descriptors the host passes the same way, against the descriptor's struct_size. */
#define RWKVRT_BACKEND_V1_HAS(table, member) \
  ((table)->struct_size >= offsetof(rwkvrt_backend_v1, member) + sizeof((table)->member))

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* RWKVRT_BACKEND_H_ */
