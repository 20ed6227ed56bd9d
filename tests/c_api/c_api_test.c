/* The public C ABI, exercised from plain C11: it compiles against rwkvrt.h alone, links the shared
 * library, freezes the v1 struct layouts, and checks the documented contracts (errors, out-params
 * untouched on failure, NULL frees, size queries, state round trips, corrupt blobs). */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rwkvrt/rwkvrt.h"

/* Layouts are frozen: fields may only be appended: fields may only be appended.  These fail to compile if one moves. */
_Static_assert(offsetof(rwkvrt_model_params, struct_size) == 0, "params layout");
_Static_assert(offsetof(rwkvrt_model_params, backend) == 8, "params layout");
_Static_assert(offsetof(rwkvrt_model_params, device) == 16, "params layout");
_Static_assert(offsetof(rwkvrt_model_params, n_threads) == 20, "params layout");
_Static_assert(offsetof(rwkvrt_model_params, weights) == 24, "params layout");
_Static_assert(offsetof(rwkvrt_model_params, group_norm_eps) == 28, "params layout");
_Static_assert(offsetof(rwkvrt_model_params, progress) == 32, "params layout");
_Static_assert(offsetof(rwkvrt_model_params, progress_user_data) == 40, "params layout");
_Static_assert(offsetof(rwkvrt_model_params, tokenizer_path) == 48, "params layout");
_Static_assert(offsetof(rwkvrt_model_params, matmul_precision) == 56, "params layout (ABI 2)");
_Static_assert(sizeof(rwkvrt_model_params) == 64, "params layout");
_Static_assert(offsetof(rwkvrt_sampling_params, seed) == 48, "sampling_params layout");
_Static_assert(sizeof(rwkvrt_sampling_params) == 96, "sampling_params layout");
_Static_assert(sizeof(rwkvrt_generate_params) == 32, "generate_params layout");
_Static_assert(offsetof(rwkvrt_generate_piece, token) == 16, "generate_piece layout");
_Static_assert(sizeof(rwkvrt_generate_piece) == 32, "generate_piece layout");
_Static_assert(sizeof(rwkvrt_tokenizer_info) == 24, "tokenizer_info layout");
_Static_assert(offsetof(rwkvrt_backend_info, unavailable_reason) == 48, "backend_info layout");
_Static_assert(sizeof(rwkvrt_backend_info) == 56, "backend_info layout");
_Static_assert(sizeof(rwkvrt_device_info) == 32, "device_info layout");
_Static_assert(offsetof(rwkvrt_model_info, n_layer) == 24, "model_info layout");
_Static_assert(offsetof(rwkvrt_model_info, n_params) == 64, "model_info layout");
_Static_assert(offsetof(rwkvrt_model_info, backend) == 96, "model_info layout");
_Static_assert(sizeof(rwkvrt_model_info) == 112, "model_info layout");
_Static_assert(sizeof(rwkvrt_state_tensor_info) == 64, "state_tensor_info layout");
_Static_assert(RWKVRT_ERR_ABI_MISMATCH == 13, "status values are never renumbered");
_Static_assert(RWKVRT_LOGITS_ALL == 2, "enum values are never renumbered");

static int failures = 0;

#define CHECK(cond)                                                        \
  do {                                                                     \
    if (!(cond)) {                                                         \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      ++failures;                                                          \
    }                                                                      \
  } while (0)

#define CHECK_STATUS(expr, want)                                                        \
  do {                                                                                  \
    rwkvrt_status got_ = (expr);                                                        \
    if (got_ != (want)) {                                                               \
      fprintf(stderr, "%s:%d: %s returned %s (%s), expected %s\n", __FILE__, __LINE__, #expr, \
              rwkvrt_status_name(got_), rwkvrt_last_error(), #want);                    \
      ++failures;                                                                       \
    }                                                                                   \
  } while (0)

static int progress_calls = 0;
static int count_progress(void* user, float fraction, const char* stage) {
  (void)user;
  CHECK(fraction >= 0.0f && fraction <= 1.0f);
  CHECK(stage != NULL && stage[0] != '\0');
  ++progress_calls;
  return 0;
}
static int cancel_progress(void* user, float fraction, const char* stage) {
  (void)user;
  (void)fraction;
  (void)stage;
  return 1;
}

static float max_abs_diff(const float* a, const float* b, size_t n) {
  float m = 0.0f;
  for (size_t i = 0; i < n; ++i) {
    const float d = fabsf(a[i] - b[i]);
    if (!(d <= m)) m = d; /* also catches NaN */
  }
  return m;
}

static char* model_path(void) {
  const char* dir = getenv("RWKVRT_TESTDATA");
  if (!dir) dir = RWKVRT_TESTDATA_DEFAULT;
  static char path[4096];
  snprintf(path, sizeof(path), "%s/golden/v7_L2_C128.pth", dir);
  return path;
}

static void test_versions_and_errors(void) {
  CHECK(rwkvrt_abi_version() >= RWKVRT_ABI_VERSION);
  CHECK(strlen(rwkvrt_version_string()) >= 5);
  CHECK(strcmp(rwkvrt_status_name(RWKVRT_ERR_FORMAT), "RWKVRT_ERR_FORMAT") == 0);
  CHECK(strcmp(rwkvrt_status_name((rwkvrt_status)999), "RWKVRT_UNKNOWN_STATUS") == 0);
  CHECK_STATUS(rwkvrt_backend_count(NULL), RWKVRT_ERR_INVALID_ARGUMENT);
  CHECK(strstr(rwkvrt_last_error(), "out_count") != NULL);
  rwkvrt_model_free(NULL);
  rwkvrt_session_free(NULL);
}

static void test_backends(void) {
  size_t n = 0;
  CHECK_STATUS(rwkvrt_backend_count(&n), RWKVRT_OK);
  CHECK(n >= 1);
  int have_cpu = 0;
  for (size_t i = 0; i < n; ++i) {
    rwkvrt_backend_info info;
    memset(&info, 0, sizeof(info));
    info.struct_size = sizeof(info);
    CHECK_STATUS(rwkvrt_backend_get_info(i, &info), RWKVRT_OK);
    CHECK(info.name != NULL && info.path != NULL && info.unavailable_reason != NULL);
    if (strcmp(info.name, "cpu") == 0) {
      have_cpu = 1;
      CHECK(info.score > 0.0f);
      CHECK(info.device_count == 1);
      CHECK(info.unavailable_reason[0] == '\0');
      rwkvrt_device_info dev;
      memset(&dev, 0, sizeof(dev));
      dev.struct_size = sizeof(dev);
      CHECK_STATUS(rwkvrt_backend_get_device(i, 0, &dev), RWKVRT_OK);
      CHECK(dev.name != NULL && dev.name[0] != '\0');
      CHECK_STATUS(rwkvrt_backend_get_device(i, 5, &dev), RWKVRT_ERR_INVALID_ARGUMENT);
    }
  }
  CHECK(have_cpu);
  /* Out of range: the out struct stays untouched. */
  rwkvrt_backend_info info;
  memset(&info, 0xab, sizeof(info));
  info.struct_size = sizeof(info);
  CHECK_STATUS(rwkvrt_backend_get_info(n + 10, &info), RWKVRT_ERR_INVALID_ARGUMENT);
  CHECK(info.abi_version == 0xabababab);
  /* A too-small struct is refused rather than overrun. */
  info.struct_size = 8;
  CHECK_STATUS(rwkvrt_backend_get_info(0, &info), RWKVRT_ERR_INVALID_ARGUMENT);
  size_t index = 0;
  CHECK_STATUS(rwkvrt_backend_load("/nonexistent/librwkvrt-backend-x.so", &index), RWKVRT_ERR_IO);
}

static void test_model_and_session(void) {
  rwkvrt_model* model = (rwkvrt_model*)0x1;
  rwkvrt_model_params params = rwkvrt_model_params_default();
  CHECK(params.struct_size == sizeof(params));

  /* Missing file: IO error naming the path; out-param untouched. */
  CHECK_STATUS(rwkvrt_model_load("/nonexistent/model.pth", &params, &model), RWKVRT_ERR_IO);
  CHECK(model == (rwkvrt_model*)0x1);
  CHECK(strstr(rwkvrt_last_error(), "/nonexistent/model.pth") != NULL);

  /* A cancelled load. */
  params.progress = cancel_progress;
  CHECK_STATUS(rwkvrt_model_load(model_path(), &params, &model), RWKVRT_ERR_CANCELLED);

  /* An unknown backend. */
  params = rwkvrt_model_params_default();
  params.backend = "no-such-backend";
  CHECK_STATUS(rwkvrt_model_load(model_path(), &params, &model), RWKVRT_ERR_NO_BACKEND);
  CHECK(strstr(rwkvrt_last_error(), "no-such-backend") != NULL);

  /* A matmul precision that does not exist. */
  params = rwkvrt_model_params_default();
  params.matmul_precision = (rwkvrt_matmul_precision)7;
  CHECK_STATUS(rwkvrt_model_load(model_path(), &params, &model), RWKVRT_ERR_INVALID_ARGUMENT);
  CHECK(strstr(rwkvrt_last_error(), "matmul_precision") != NULL);

  /* Parameters as a program built against ABI 1 passes them: the struct ends before
   * matmul_precision, so whatever lies there is not read. */
  params = rwkvrt_model_params_default();
  params.struct_size = (uint32_t)offsetof(rwkvrt_model_params, matmul_precision);
  params.matmul_precision = (rwkvrt_matmul_precision)7;
  params.backend = "cpu";
  params.weights = RWKVRT_WEIGHTS_F32;
  params.progress = count_progress;
  CHECK_STATUS(rwkvrt_model_load(model_path(), &params, &model), RWKVRT_OK);
  if (model == (rwkvrt_model*)0x1) return;
  CHECK(progress_calls > 0);

  rwkvrt_model_info info;
  memset(&info, 0, sizeof(info));
  info.struct_size = sizeof(info);
  CHECK_STATUS(rwkvrt_model_get_info(model, &info), RWKVRT_OK);
  CHECK(info.rwkv_version == 70);
  CHECK(strcmp(info.version_name, "7.0") == 0);
  CHECK(strcmp(info.file_format, "pth") == 0);
  CHECK(info.n_layer == 2 && info.n_embd == 128 && info.n_vocab == 500);
  CHECK(info.n_head == 2 && info.head_size == 64);
  CHECK(info.file_dtype == RWKVRT_DTYPE_BF16);
  CHECK(info.weight_dtype == RWKVRT_DTYPE_F32);
  CHECK(info.state_floats == 2 * (2 * 128 + 2 * 64 * 64));
  CHECK(strcmp(info.backend, "cpu") == 0);

  size_t n_state_tensors = 0;
  CHECK_STATUS(rwkvrt_model_state_tensor_count(model, &n_state_tensors), RWKVRT_OK);
  CHECK(n_state_tensors == 6);
  rwkvrt_state_tensor_info st;
  memset(&st, 0, sizeof(st));
  st.struct_size = sizeof(st);
  CHECK_STATUS(rwkvrt_model_state_tensor_info(model, 4, &st), RWKVRT_OK);
  CHECK(strcmp(st.name, "blocks.1.att.wkv") == 0);
  CHECK(st.n_dims == 3 && st.shape[0] == 2 && st.shape[1] == 64 && st.shape[2] == 64);
  CHECK(st.offset == (2 * 128 + 2 * 64 * 64) + 128);
  CHECK_STATUS(rwkvrt_model_state_tensor_info(model, 6, &st), RWKVRT_ERR_INVALID_ARGUMENT);

  rwkvrt_session* s = NULL;
  CHECK_STATUS(rwkvrt_session_create(model, &s), RWKVRT_OK);
  rwkvrt_session* s2 = NULL;
  CHECK_STATUS(rwkvrt_session_create(model, &s2), RWKVRT_OK);
  if (!s || !s2) return;

  const int32_t tokens[5] = {1, 22, 333, 4, 55};
  const size_t V = info.n_vocab;
  float* all = malloc(5 * V * sizeof(float));
  float* last = malloc(V * sizeof(float));
  float* step = malloc(V * sizeof(float));

  /* Sequence mode with every row equals RNN mode step by step. */
  CHECK_STATUS(rwkvrt_session_feed(s, tokens, 5, RWKVRT_LOGITS_ALL, all, 5 * V), RWKVRT_OK);
  for (int t = 0; t < 5; ++t) {
    CHECK_STATUS(rwkvrt_session_step(s2, tokens[t], step, V), RWKVRT_OK);
    CHECK(max_abs_diff(step, all + (size_t)t * V, V) < 1e-4f);
  }

  /* Bad inputs leave the state untouched. */
  const int32_t bad[2] = {1, 500};
  CHECK_STATUS(rwkvrt_session_feed(s, bad, 2, RWKVRT_LOGITS_LAST, last, V),
               RWKVRT_ERR_INVALID_ARGUMENT);
  CHECK(strstr(rwkvrt_last_error(), "500") != NULL);
  CHECK_STATUS(rwkvrt_session_feed(s, tokens, 1, RWKVRT_LOGITS_LAST, last, V - 1),
               RWKVRT_ERR_BUFFER_TOO_SMALL);
  CHECK_STATUS(rwkvrt_session_feed(s, tokens, 0, RWKVRT_LOGITS_NONE, NULL, 0),
               RWKVRT_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(rwkvrt_session_feed(s, tokens, 1, (rwkvrt_logits_mode)7, last, V),
               RWKVRT_ERR_INVALID_ARGUMENT);

  /* Export / import of the canonical state, and the blob round trip. */
  float* state = malloc(info.state_floats * sizeof(float));
  CHECK_STATUS(rwkvrt_session_export_state(s, state, info.state_floats - 1),
               RWKVRT_ERR_BUFFER_TOO_SMALL);
  CHECK_STATUS(rwkvrt_session_export_state(s, state, info.state_floats), RWKVRT_OK);
  size_t blob_size = 0;
  CHECK_STATUS(rwkvrt_session_save_state(s, NULL, 0, &blob_size), RWKVRT_OK);
  CHECK(blob_size == 64 + 4 * info.state_floats + 4);
  unsigned char* blob = malloc(blob_size);
  size_t needed = 0;
  CHECK_STATUS(rwkvrt_session_save_state(s, blob, 10, &needed), RWKVRT_ERR_BUFFER_TOO_SMALL);
  CHECK(needed == blob_size);
  CHECK_STATUS(rwkvrt_session_save_state(s, blob, blob_size, &needed), RWKVRT_OK);
  CHECK(memcmp(blob, "RWKVSTAT", 8) == 0);

  /* Continue s by one token; the fresh session s3 continues identically from the blob. */
  rwkvrt_session* s3 = NULL;
  CHECK_STATUS(rwkvrt_session_create(model, &s3), RWKVRT_OK);
  CHECK_STATUS(rwkvrt_session_load_state(s3, blob, blob_size), RWKVRT_OK);
  CHECK_STATUS(rwkvrt_session_step(s, 77, last, V), RWKVRT_OK);
  CHECK_STATUS(rwkvrt_session_step(s3, 77, step, V), RWKVRT_OK);
  CHECK(max_abs_diff(step, last, V) == 0.0f);

  /* Import of the exported floats continues identically too. */
  CHECK_STATUS(rwkvrt_session_import_state(s2, state, info.state_floats - 1),
               RWKVRT_ERR_STATE_MISMATCH);
  CHECK_STATUS(rwkvrt_session_import_state(s2, state, info.state_floats), RWKVRT_OK);
  CHECK_STATUS(rwkvrt_session_step(s2, 77, step, V), RWKVRT_OK);
  CHECK(max_abs_diff(step, last, V) == 0.0f);

  /* Corrupt and truncated blobs are refused, and the state stays as it was. */
  blob[100] ^= 0x40;
  CHECK_STATUS(rwkvrt_session_load_state(s3, blob, blob_size), RWKVRT_ERR_CORRUPT);
  blob[100] ^= 0x40;
  CHECK_STATUS(rwkvrt_session_load_state(s3, blob, blob_size - 1), RWKVRT_ERR_FORMAT);
  CHECK_STATUS(rwkvrt_session_load_state(s3, "garbage", 7), RWKVRT_ERR_FORMAT);
  CHECK_STATUS(rwkvrt_session_step(s3, 5, step, V), RWKVRT_OK);
  CHECK_STATUS(rwkvrt_session_step(s, 5, last, V), RWKVRT_OK);
  CHECK(max_abs_diff(step, last, V) == 0.0f);

  /* Reset returns to the initial state: the first logits repeat. */
  CHECK_STATUS(rwkvrt_session_reset(s), RWKVRT_OK);
  CHECK_STATUS(rwkvrt_session_step(s, tokens[0], last, V), RWKVRT_OK);
  CHECK(max_abs_diff(last, all, V) < 1e-4f);

  free(blob);
  free(state);
  free(all);
  free(last);
  free(step);
  rwkvrt_session_free(s3);
  rwkvrt_session_free(s2);
  rwkvrt_session_free(s);
  rwkvrt_model_free(model);
}

int main(void) {
  test_versions_and_errors();
  test_backends();
  test_model_and_session();
  if (failures) {
    fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  printf("C ABI test passed\n");
  return 0;
}
