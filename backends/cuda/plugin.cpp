// The CUDA backend plugin: the C entry point, the function table, probing, contexts, streams,
// memory, argument checks of the ops, and graph capture.  Kernels live in the .cu files
// (kernels.h); the matmul dispatcher in matmul.cpp; weight preparation in weights.cpp.
//
// Loading: the CUDA runtime is linked statically and reaches the driver (libcuda.so.1) only when
// first called, and cuBLAS is dlopened by blas_load(), so the plugin loads on any Linux machine;
// probe() says why it cannot run where it cannot.
#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "cuda_backend.h"
#include "kernels.h"
#include "matmul.h"
#include "weights.h"

namespace rwkvrt::cuda {

namespace {

thread_local std::string t_last_error;
thread_local int t_current_device = -1;

constexpr int kMinComputeMajor = 8;  // the oldest architecture the plugin carries code for
constexpr uint64_t kBlasWorkspaceBytes = 32ull << 20;
constexpr uint32_t kPreferredPassRows = 4096;

// Devices of compute capability ≥ 8.0, as CUDA ordinals; found once by probe().
struct DeviceList {
  std::once_flag once;
  std::vector<int> ordinals;
  std::string unusable;  // why there are none (empty when there are)
};
DeviceList g_devices;

std::string format_version(int v) {
  return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
}

void find_devices() {
  int driver = 0;
  if (gpuDriverGetVersion(&driver) != gpuSuccess || driver == 0) {
    (void)gpuGetLastError();
    g_devices.unusable = "no CUDA driver found (libcuda.so.1 is missing or cannot be loaded)";
    return;
  }
  if (driver / 1000 < GPU_RUNTIME_VERSION / 1000) {
    g_devices.unusable = "driver too old: it supports CUDA " + format_version(driver) +
                         ", the plugin needs CUDA " + format_version(GPU_RUNTIME_VERSION);
    return;
  }
  int n = 0;
  const gpuError_t e = gpuGetDeviceCount(&n);
  if (e != gpuSuccess || n == 0) {
    (void)gpuGetLastError();
    if (e == gpuErrorInsufficientDriver)
      g_devices.unusable = "driver too old: " + std::string(gpuGetErrorString(e));
    else if (e == gpuSuccess || e == gpuErrorNoDevice)
      g_devices.unusable = "no CUDA device";
    else
      g_devices.unusable = std::string("no CUDA device: ") + gpuGetErrorString(e);
    return;
  }
  std::string found;
  for (int d = 0; d < n; ++d) {
    gpuDeviceProp p;
    if (gpuGetDeviceProperties(&p, d) != gpuSuccess) continue;
    if (p.major >= kMinComputeMajor) {
      g_devices.ordinals.push_back(d);
    } else {
      found += (found.empty() ? "" : ", ") + std::string(p.name) + " (sm_" +
               std::to_string(p.major) + std::to_string(p.minor) + ")";
    }
  }
  if (g_devices.ordinals.empty())
    g_devices.unusable = "no CUDA device of compute capability 8.0 or newer (found " + found + ")";
}

const DeviceList& devices() {
  std::call_once(g_devices.once, find_devices);
  return g_devices;
}

bool env_flag(const char* name, bool fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  return std::strcmp(v, "0") != 0;
}

uint64_t env_u64(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const unsigned long long x = std::strtoull(v, &end, 10);
  return end && *end == '\0' ? uint64_t(x) : fallback;
}

// ---- table entries -------------------------------------------------------------------------

const char* last_error() {
  return t_last_error.c_str();
}

float probe(char* reason, size_t capacity) {
  auto refuse = [&](const std::string& why) {
    if (reason && capacity > 0) std::snprintf(reason, capacity, "%s", why.c_str());
    return 0.0f;
  };
  const DeviceList& d = devices();
  if (d.ordinals.empty()) return refuse(d.unusable);
  std::string why;
  if (!blas_load(&why)) return refuse(why);
  return 100.0f;  // above every CPU score
}

int32_t device_count() {
  return int32_t(devices().ordinals.size());
}

int device_describe(int32_t device, rwkvrt_bk_device_desc* out) {
  const DeviceList& d = devices();
  if (!out || device < 0 || size_t(device) >= d.ordinals.size())
    return set_error(RWKVRT_BK_INVALID,
                     "device_describe: no CUDA device " + std::to_string(device));
  gpuDeviceProp p;
  const gpuError_t e = gpuGetDeviceProperties(&p, d.ordinals[size_t(device)]);
  if (e != gpuSuccess) return check(e, "device_describe");
  const std::string name = std::string(p.name) + " (sm_" + std::to_string(p.major) +
                           std::to_string(p.minor) + ", " + std::to_string(p.multiProcessorCount) +
                           " SMs)";
  const size_t len = std::min(name.size(), sizeof(out->name) - 1);
  std::memcpy(out->name, name.data(), len);
  out->name[len] = '\0';
  out->memory_total = p.totalGlobalMem;
  // Free memory needs a context on the device; none is created just to describe it.
  out->memory_free = 0;
  size_t free_bytes = 0, total_bytes = 0;
  if (t_current_device == d.ordinals[size_t(device)] &&
      gpuMemGetInfo(&free_bytes, &total_bytes) == gpuSuccess)
    out->memory_free = free_bytes;
  if (out->struct_size >= offsetof(rwkvrt_bk_device_desc, preferred_pass_rows) + sizeof(uint32_t))
    out->preferred_pass_rows = kPreferredPassRows;
  // GEMMs on weights prepared with RWKVRT_BK_MATMUL_ROUNDED_ACTIVATIONS round their activations
  // from kGemvMaxRows + 1 rows (matmul.cpp); RWKVRT_CUDA_HALF_ACTIVATIONS=0 asks hosts to hand
  // them fp32 activations all the same (for measurements against the rounding passes).
  if (out->struct_size >= offsetof(rwkvrt_bk_device_desc, half_activation_rows) + sizeof(uint32_t))
    out->half_activation_rows =
        env_flag("RWKVRT_CUDA_HALF_ACTIVATIONS", true) ? uint32_t(kGemvMaxRows + 1) : 0;
  return RWKVRT_BK_OK;
}

int context_create(const rwkvrt_bk_context_params* params, rwkvrt_bk_context** out) {
  if (!params || !out) return set_error(RWKVRT_BK_INVALID, "context_create: null argument");
  const DeviceList& d = devices();
  if (d.ordinals.empty()) return set_error(RWKVRT_BK_UNSUPPORTED, d.unusable);
  if (params->device < 0 || size_t(params->device) >= d.ordinals.size())
    return set_error(RWKVRT_BK_INVALID,
                     "context_create: no CUDA device " + std::to_string(params->device));
  std::string why;
  if (!blas_load(&why)) return set_error(RWKVRT_BK_UNSUPPORTED, why);
  const int ordinal = d.ordinals[size_t(params->device)];
  gpuDeviceProp p;
  gpuError_t e = gpuGetDeviceProperties(&p, ordinal);
  if (e == gpuSuccess) e = use_device(ordinal);
  if (e == gpuSuccess) e = gpuFree(nullptr);  // creates the primary context now, not mid-op
  if (e != gpuSuccess) return check(e, "context_create");
  auto* ctx = new (std::nothrow) rwkvrt_bk_context();
  if (!ctx) return set_error(RWKVRT_BK_OUT_OF_MEMORY, "out of host memory");
  ctx->device = ordinal;
  ctx->cc_major = p.major;
  ctx->cc_minor = p.minor;
  ctx->sm_count = p.multiProcessorCount;
  ctx->chained_launch = p.major >= 9 && env_flag("RWKVRT_CUDA_PDL", true);
  // Rounded-activation GEMMs only when asked for (docs/CUDA.md): by default every matmul keeps
  // fp32-level accuracy, as the tests of sequence against RNN mode require.
  ctx->fast_gemm_rows =
      std::max<uint64_t>(kGemvMaxRows + 1, env_u64("RWKVRT_CUDA_FAST_GEMM_ROWS", UINT64_MAX));
  ctx->wkv7_step_min_heads = env_u64("RWKVRT_CUDA_WKV7_STEP_HEADS", 1);
  ctx->wkv7_chunk_min_tokens = env_u64("RWKVRT_CUDA_WKV7_CHUNK_TOKENS", 64);
  if (ctx->wkv7_chunk_min_tokens == 0) ctx->wkv7_chunk_min_tokens = UINT64_MAX;
  ctx->gemv_preload_weights = env_flag("RWKVRT_CUDA_GEMV_PRELOAD", true);
  ctx->gemv_short_rows = env_flag("RWKVRT_CUDA_GEMV_SHORT_ROWS", true);
  ctx->wkv7_wide_step = env_u64("RWKVRT_CUDA_WKV7_STEP_ROWS", 4) != 1;
  *out = ctx;
  return RWKVRT_BK_OK;
}

void context_free(rwkvrt_bk_context* ctx) {
  delete ctx;
}

void destroy_stream(rwkvrt_bk_stream* s) {
  if (!s) return;
  if (s->stream) {
    abandon_capture(s);
    (void)gpuStreamSynchronize(s->stream);
  }
  if (s->blas) blas_destroy(s->blas);
  s->ring.release();
  s->scratch.release_all();
  if (s->blas_workspace) gpuFree(s->blas_workspace);
  if (s->stream) gpuStreamDestroy(s->stream);
  delete s;
}

int stream_create(rwkvrt_bk_context* ctx, rwkvrt_bk_stream** out) {
  if (!ctx || !out) return set_error(RWKVRT_BK_INVALID, "stream_create: null argument");
  gpuError_t e = use_device(ctx->device);
  if (e != gpuSuccess) return check(e, "stream_create");
  auto* s = new (std::nothrow) rwkvrt_bk_stream();
  if (!s) return set_error(RWKVRT_BK_OUT_OF_MEMORY, "out of host memory");
  s->ctx = ctx;
  // The cuBLAS handle, its workspace and the pinned upload ring are made on first use: a
  // session that only decodes through batched passes never needs them, and a server may hold
  // thousands of sessions, each with its own stream.
  e = gpuStreamCreateNonBlocking(&s->stream);
  if (e != gpuSuccess) {
    const int rc = check(e, "stream_create");
    destroy_stream(s);
    return rc;
  }
  *out = s;
  return RWKVRT_BK_OK;
}

void stream_free(rwkvrt_bk_stream* s) {
  if (s) (void)use_device(s->ctx->device);
  destroy_stream(s);
}

int stream_synchronize(rwkvrt_bk_stream* s) {
  if (!s) return set_error(RWKVRT_BK_INVALID, "stream_synchronize: null stream");
  return check(gpuStreamSynchronize(s->stream), "stream_synchronize");
}

int buffer_alloc(rwkvrt_bk_context* ctx, uint64_t bytes, void** out) {
  if (!ctx || !out) return set_error(RWKVRT_BK_INVALID, "buffer_alloc: null argument");
  gpuError_t e = use_device(ctx->device);
  if (e != gpuSuccess) return check(e, "buffer_alloc");
  e = gpuMalloc(out, bytes > 0 ? bytes : 1);
  if (e == gpuSuccess) return RWKVRT_BK_OK;
  (void)gpuGetLastError();
  *out = nullptr;
  return set_error(RWKVRT_BK_OUT_OF_MEMORY,
                   "cannot allocate " + std::to_string(bytes) + " bytes of device memory");
}

void buffer_free(rwkvrt_bk_context* ctx, void* ptr) {
  if (!ptr) return;
  if (ctx) (void)use_device(ctx->device);
  gpuFree(ptr);
}

// Page-locked host memory: device copies reach it by DMA directly (pageable memory is copied
// through a driver staging buffer at a fraction of the speed: ≈ 12 GB/s measured on the H200 for
// a 256 MiB batch of logits).
int host_alloc(rwkvrt_bk_context* ctx, uint64_t bytes, void** out) {
  if (!ctx || !out) return set_error(RWKVRT_BK_INVALID, "host_alloc: null argument");
  gpuError_t e = use_device(ctx->device);
  if (e != gpuSuccess) return check(e, "host_alloc");
  e = gpuHostAlloc(out, bytes > 0 ? bytes : 1);
  if (e == gpuSuccess) return RWKVRT_BK_OK;
  (void)gpuGetLastError();
  *out = nullptr;
  return set_error(RWKVRT_BK_OUT_OF_MEMORY, "cannot allocate " + std::to_string(bytes) +
                                                " bytes of page-locked host memory");
}

void host_free(rwkvrt_bk_context* ctx, void* ptr) {
  if (!ptr) return;
  if (ctx) (void)use_device(ctx->device);
  gpuFreeHost(ptr);
}

// Host transfers are refused while capturing: a graph would replay them from stale memory.
int refuse_in_capture(const char* what) {
  return set_error(RWKVRT_BK_UNSUPPORTED,
                   std::string(what) + " cannot be recorded into a graph (capture in progress)");
}

int upload(rwkvrt_bk_stream* s, void* dst, const void* src, uint64_t bytes) {
  if (!s || (!dst && bytes) || (!src && bytes))
    return set_error(RWKVRT_BK_INVALID, "upload: null argument");
  if (bytes == 0) return RWKVRT_BK_OK;
  if (s->capturing) return refuse_in_capture("upload");
  gpuError_t e = use_device(s->ctx->device);
  if (e != gpuSuccess) return check(e, "upload");
  if (bytes <= UploadRing::kSlotBytes) {
    if (!s->ring.ready()) e = s->ring.init();
    if (e == gpuSuccess) e = s->ring.upload(s->stream, dst, src, bytes);
    return check(e, "upload");
  }
  // Large uploads (weights, whole states): copy and wait, which is what lets the caller reuse
  // `src` on return whatever kind of host memory it is.
  e = gpuMemcpyAsync(dst, src, bytes, gpuMemcpyHostToDevice, s->stream);
  if (e == gpuSuccess) e = gpuStreamSynchronize(s->stream);
  return check(e, "upload");
}

int download(rwkvrt_bk_stream* s, void* dst, const void* src, uint64_t bytes) {
  if (!s || (!dst && bytes) || (!src && bytes))
    return set_error(RWKVRT_BK_INVALID, "download: null argument");
  if (bytes == 0) return RWKVRT_BK_OK;
  if (s->capturing) return refuse_in_capture("download");
  gpuError_t e = use_device(s->ctx->device);
  if (e == gpuSuccess) e = gpuMemcpyAsync(dst, src, bytes, gpuMemcpyDeviceToHost, s->stream);
  if (e == gpuSuccess) e = gpuStreamSynchronize(s->stream);
  return check(e, "download");
}

int copy(rwkvrt_bk_stream* s, void* dst, const void* src, uint64_t bytes) {
  if (!s) return set_error(RWKVRT_BK_INVALID, "copy: null stream");
  if (bytes == 0) return RWKVRT_BK_OK;
  gpuError_t e = use_device(s->ctx->device);
  if (e == gpuSuccess) e = gpuMemcpyAsync(dst, src, bytes, gpuMemcpyDeviceToDevice, s->stream);
  return check_op(s, e, "copy");
}

int fill_zero(rwkvrt_bk_stream* s, void* dst, uint64_t bytes) {
  if (!s) return set_error(RWKVRT_BK_INVALID, "fill_zero: null stream");
  if (bytes == 0) return RWKVRT_BK_OK;
  gpuError_t e = use_device(s->ctx->device);
  if (e == gpuSuccess) e = gpuMemsetAsync(dst, 0, bytes, s->stream);
  return check_op(s, e, "fill_zero");
}

int weight_prepare_entry(rwkvrt_bk_context* ctx, const rwkvrt_bk_weight_desc* desc,
                         rwkvrt_bk_weight** out) {
  if (!ctx || !desc || !out || !desc->src)
    return set_error(RWKVRT_BK_INVALID, "weight_prepare: null argument");
  return weight_prepare(ctx, *desc, out);
}

void weight_free_entry(rwkvrt_bk_context* ctx, rwkvrt_bk_weight* w) {
  if (ctx) (void)use_device(ctx->device);
  weight_free(w);
}

int weight_info(const rwkvrt_bk_weight* w, rwkvrt_bk_weight_info* out) {
  if (!w || !out) return set_error(RWKVRT_BK_INVALID, "weight_info: null argument");
  out->dtype = w->dtype;
  out->bytes = w->bytes;
  out->bytes_read_per_matmul = w->bytes;
  return RWKVRT_BK_OK;
}

// Every op: a null stream is refused, the device made current, then the op's own checks.
#define RWKVRT_OP_PROLOGUE(s, name)                                      \
  do {                                                                   \
    if (!(s)) return set_error(RWKVRT_BK_INVALID, name ": null stream"); \
    const gpuError_t dev_err = use_device((s)->ctx->device);             \
    if (dev_err != gpuSuccess) return check_op((s), dev_err, name);      \
  } while (0)

int op_matmul(rwkvrt_bk_stream* s, const rwkvrt_bk_matmul_args* a) {
  RWKVRT_OP_PROLOGUE(s, "matmul");
  if (!a || !a->w || (a->M && (!a->x || !a->y)))
    return set_error(RWKVRT_BK_INVALID, "matmul: null argument");
  return matmul(s, *a);
}

// Why a matmul with an epilogue cannot run (null when it can); *code gets the ABI code.  Shared
// by matmul_bias_act and each item of matmul_group.
const char* matmul_problem(const rwkvrt_bk_matmul_args& a, const float* bias, int32_t act,
                           int* code) {
  *code = RWKVRT_BK_INVALID;
  if (!a.w || (a.M && (!a.x || !a.y))) return "null argument";
  if ((a.ldx && a.ldx < a.w->cols) || (a.ldy && a.ldy < a.w->rows))
    return "leading dimension smaller than the row";
  if ((bias || act != RWKVRT_BK_NO_ACTIVATION) && a.accumulate)
    return "accumulate must be 0 with an epilogue";
  *code = RWKVRT_BK_UNSUPPORTED;
  if (act < RWKVRT_BK_NO_ACTIVATION || act > RWKVRT_BK_V7_LOG_DECAY) return "unknown activation";
  return nullptr;
}

int op_matmul_bias_act(rwkvrt_bk_stream* s, const rwkvrt_bk_matmul_args* a, const float* bias,
                       int32_t act) {
  RWKVRT_OP_PROLOGUE(s, "matmul_bias_act");
  if (!a) return set_error(RWKVRT_BK_INVALID, "matmul_bias_act: null argument");
  int code = 0;
  if (const char* problem = matmul_problem(*a, bias, act, &code))
    return set_error(code, std::string("matmul_bias_act: ") + problem);
  return matmul(s, *a, bias, act);
}

int op_matmul_group(rwkvrt_bk_stream* s, const rwkvrt_bk_matmul_item* items, uint32_t n) {
  RWKVRT_OP_PROLOGUE(s, "matmul_group");
  if (!items || n == 0 || n > RWKVRT_BK_MAX_GROUP)
    return set_error(RWKVRT_BK_INVALID,
                     "matmul_group: need 1.." + std::to_string(RWKVRT_BK_MAX_GROUP) + " items");
  bool one_launch = true;
  for (uint32_t i = 0; i < n; ++i) {
    const rwkvrt_bk_matmul_args& a = items[i].args;
    int code = 0;
    if (const char* problem = matmul_problem(a, items[i].bias, items[i].act, &code))
      return set_error(code, "matmul_group item " + std::to_string(i) + ": " + problem);
    one_launch = one_launch && a.M >= 1 && a.M <= kGemvMaxRows && a.M == items[0].args.M;
  }
  if (one_launch) return check_op(s, launch_gemv_group(s, items, n), "matmul_group");
  return matmul_group_gemm(s, items, n);
}

// The argument checks of channel_mix and channel_mix_half: RWKVRT_BK_OK or the error set.
int channel_mix_problem(const rwkvrt_bk_channel_mix_args* a, const std::string& entry) {
  if (!a || !a->key || !a->value || (a->M && (!a->x || !a->hidden || !a->y)))
    return set_error(RWKVRT_BK_INVALID, entry + ": null argument");
  if (a->value->cols != a->key->rows)
    return set_error(RWKVRT_BK_INVALID,
                     entry + ": the value matrix has " + std::to_string(a->value->cols) +
                         " columns but the key matrix " + std::to_string(a->key->rows) + " rows");
  if ((a->ldx && a->ldx < a->key->cols) || (a->ldy && a->ldy < a->value->rows))
    return set_error(RWKVRT_BK_INVALID, entry + ": leading dimension smaller than the row");
  if (a->accumulate > 1) return set_error(RWKVRT_BK_INVALID, entry + ": accumulate must be 0 or 1");
  return RWKVRT_BK_OK;
}

int op_channel_mix(rwkvrt_bk_stream* s, const rwkvrt_bk_channel_mix_args* a) {
  RWKVRT_OP_PROLOGUE(s, "channel_mix");
  if (const int rc = channel_mix_problem(a, "channel_mix"); rc != RWKVRT_BK_OK) return rc;
  if (a->M == 0) return RWKVRT_BK_OK;
  return channel_mix(s, *a);
}

// The argument checks of norm_shift_mix and norm_shift_mix_half: RWKVRT_BK_OK or the error set.
int norm_shift_mix_problem(const rwkvrt_bk_norm_shift_mix_args* a, const std::string& entry) {
  if (!a) return set_error(RWKVRT_BK_INVALID, entry + ": null argument");
  if (a->n_out < 1 || a->n_out > 8)
    return set_error(RWKVRT_BK_INVALID, entry + ": n_out must be 1..8");
  if (a->T == 0 && a->B > 0) return set_error(RWKVRT_BK_INVALID, entry + ": T must be at least 1");
  return RWKVRT_BK_OK;
}

int op_norm_shift_mix(rwkvrt_bk_stream* s, const rwkvrt_bk_norm_shift_mix_args* a) {
  RWKVRT_OP_PROLOGUE(s, "norm_shift_mix");
  if (const int rc = norm_shift_mix_problem(a, "norm_shift_mix"); rc != RWKVRT_BK_OK) return rc;
  return check_op(s, launch_norm_shift_mix(s, *a), "norm_shift_mix");
}

int op_v7_output(rwkvrt_bk_stream* s, const rwkvrt_bk_v7_output_args* a) {
  RWKVRT_OP_PROLOGUE(s, "v7_output");
  if (!a) return set_error(RWKVRT_BK_INVALID, "v7_output: null argument");
  return check_op(s, launch_v7_output(s, *a), "v7_output");
}

// The storage type of the `half` argument of a *_half entry; false (with the error set) when it
// is neither f16 nor bf16.
bool half_storage(rwkvrt_bk_dtype half, const char* entry, WeightStorage* out) {
  if (half == RWKVRT_BK_F16 || half == RWKVRT_BK_BF16) {
    *out = half == RWKVRT_BK_F16 ? WeightStorage::F16 : WeightStorage::BF16;
    return true;
  }
  set_error(RWKVRT_BK_INVALID, std::string(entry) + ": the half type must be f16 or bf16 (got " +
                                   std::to_string(int(half)) + ")");
  return false;
}

int op_norm_shift_mix_half(rwkvrt_bk_stream* s, const rwkvrt_bk_norm_shift_mix_args* a,
                           rwkvrt_bk_dtype half) {
  WeightStorage out_type;
  if (!half_storage(half, "norm_shift_mix_half", &out_type)) return RWKVRT_BK_INVALID;
  RWKVRT_OP_PROLOGUE(s, "norm_shift_mix_half");
  if (const int rc = norm_shift_mix_problem(a, "norm_shift_mix_half"); rc != RWKVRT_BK_OK)
    return rc;
  return check_op(s, launch_norm_shift_mix(s, *a, out_type), "norm_shift_mix_half");
}

int op_v7_output_half(rwkvrt_bk_stream* s, const rwkvrt_bk_v7_output_args* a, rwkvrt_bk_dtype half,
                      void* out) {
  WeightStorage out_type;
  if (!half_storage(half, "v7_output_half", &out_type)) return RWKVRT_BK_INVALID;
  RWKVRT_OP_PROLOGUE(s, "v7_output_half");
  if (!a || (a->M && a->H && a->N && !out))
    return set_error(RWKVRT_BK_INVALID, "v7_output_half: null argument");
  if (out == a->y && a->M && a->H && a->N)
    return set_error(RWKVRT_BK_INVALID, "v7_output_half: out must not overlap y (it is read)");
  return check_op(s, launch_v7_output(s, *a, out_type, out), "v7_output_half");
}

int op_matmul_group_half(rwkvrt_bk_stream* s, const rwkvrt_bk_matmul_item* items, uint32_t n,
                         rwkvrt_bk_dtype half) {
  WeightStorage x_type;
  if (!half_storage(half, "matmul_group_half", &x_type)) return RWKVRT_BK_INVALID;
  RWKVRT_OP_PROLOGUE(s, "matmul_group_half");
  if (!items || n == 0 || n > RWKVRT_BK_MAX_GROUP)
    return set_error(RWKVRT_BK_INVALID, "matmul_group_half: need 1.." +
                                            std::to_string(RWKVRT_BK_MAX_GROUP) + " items");
  for (uint32_t i = 0; i < n; ++i) {
    int code = 0;
    if (const char* problem = matmul_problem(items[i].args, items[i].bias, items[i].act, &code))
      return set_error(code, "matmul_group_half item " + std::to_string(i) + ": " + problem);
  }
  return matmul_group_half(s, items, n, x_type);
}

int op_channel_mix_half(rwkvrt_bk_stream* s, const rwkvrt_bk_channel_mix_args* a,
                        rwkvrt_bk_dtype half) {
  WeightStorage x_type;
  if (!half_storage(half, "channel_mix_half", &x_type)) return RWKVRT_BK_INVALID;
  RWKVRT_OP_PROLOGUE(s, "channel_mix_half");
  if (const int rc = channel_mix_problem(a, "channel_mix_half"); rc != RWKVRT_BK_OK) return rc;
  if (a->M == 0) return RWKVRT_BK_OK;
  return channel_mix_half(s, *a, x_type);
}

int op_gather_rows(rwkvrt_bk_stream* s, const float* table, uint64_t C, const int32_t* ids,
                   uint64_t M, float* out) {
  RWKVRT_OP_PROLOGUE(s, "gather_rows");
  return check_op(s, launch_gather_rows(s, table, C, ids, M, out), "gather_rows");
}

int op_layer_norm(rwkvrt_bk_stream* s, const rwkvrt_bk_norm_args* a) {
  RWKVRT_OP_PROLOGUE(s, "layer_norm");
  if (!a) return set_error(RWKVRT_BK_INVALID, "layer_norm: null argument");
  return check_op(s, launch_layer_norm(s, *a), "layer_norm");
}

int op_group_norm(rwkvrt_bk_stream* s, const rwkvrt_bk_norm_args* a) {
  RWKVRT_OP_PROLOGUE(s, "group_norm");
  if (!a) return set_error(RWKVRT_BK_INVALID, "group_norm: null argument");
  if (a->groups == 0 || a->C % a->groups != 0)
    return set_error(RWKVRT_BK_INVALID, "group_norm: C is not a multiple of the group count");
  return check_op(s, launch_group_norm(s, *a), "group_norm");
}

int op_token_shift(rwkvrt_bk_stream* s, const rwkvrt_bk_token_shift_args* a) {
  RWKVRT_OP_PROLOGUE(s, "token_shift");
  if (!a) return set_error(RWKVRT_BK_INVALID, "token_shift: null argument");
  if (a->T == 0) return set_error(RWKVRT_BK_INVALID, "token_shift: T must be at least 1");
  return check_op(s, launch_token_shift(s, *a), "token_shift");
}

int op_mix(rwkvrt_bk_stream* s, const rwkvrt_bk_mix_args* a) {
  RWKVRT_OP_PROLOGUE(s, "mix");
  if (!a) return set_error(RWKVRT_BK_INVALID, "mix: null argument");
  if (a->n_out < 1 || a->n_out > 8) return set_error(RWKVRT_BK_INVALID, "mix: n_out must be 1..8");
  return check_op(s, launch_mix(s, *a), "mix");
}

int op_unary(rwkvrt_bk_stream* s, rwkvrt_bk_unary op, const float* x, float* y, uint64_t n) {
  RWKVRT_OP_PROLOGUE(s, "unary");
  if (op > RWKVRT_BK_V7_LOG_DECAY) return set_error(RWKVRT_BK_UNSUPPORTED, "unary: unknown op");
  return check_op(s, launch_unary(s, op, x, y, n), "unary");
}

int op_binary(rwkvrt_bk_stream* s, rwkvrt_bk_binary op, const float* a, const float* b, float* y,
              uint64_t M, uint64_t C, uint32_t b_is_row) {
  RWKVRT_OP_PROLOGUE(s, "binary");
  if (op > RWKVRT_BK_MUL) return set_error(RWKVRT_BK_UNSUPPORTED, "binary: unknown op");
  return check_op(s, launch_binary(s, op, a, b, y, M, C, b_is_row != 0), "binary");
}

int op_wkv4(rwkvrt_bk_stream* s, const rwkvrt_bk_wkv4_args* a) {
  RWKVRT_OP_PROLOGUE(s, "wkv4");
  if (!a) return set_error(RWKVRT_BK_INVALID, "wkv4: null argument");
  return check_op(s, launch_wkv4(s, *a), "wkv4");
}

int op_wkv5(rwkvrt_bk_stream* s, const rwkvrt_bk_wkv5_args* a) {
  RWKVRT_OP_PROLOGUE(s, "wkv5");
  if (!a) return set_error(RWKVRT_BK_INVALID, "wkv5: null argument");
  if (a->N == 0 || a->N > 1024)
    return set_error(RWKVRT_BK_UNSUPPORTED, "wkv5: head size must be 1..1024");
  return check_op(s, launch_wkv5(s, *a), "wkv5");
}

int op_wkv7(rwkvrt_bk_stream* s, const rwkvrt_bk_wkv7_args* a) {
  RWKVRT_OP_PROLOGUE(s, "wkv7");
  if (!a) return set_error(RWKVRT_BK_INVALID, "wkv7: null argument");
  if (a->N == 0 || a->N > 1024)
    return set_error(RWKVRT_BK_UNSUPPORTED, "wkv7: head size must be 1..1024");
  return check_op(s, launch_wkv7(s, *a), "wkv7");
}

int op_v7_wkv(rwkvrt_bk_stream* s, const rwkvrt_bk_v7_wkv_args* a) {
  RWKVRT_OP_PROLOGUE(s, "v7_wkv");
  if (!a) return set_error(RWKVRT_BK_INVALID, "v7_wkv: null argument");
  if (a->N == 0 || a->N > 1024)
    return set_error(RWKVRT_BK_UNSUPPORTED, "v7_wkv: head size must be 1..1024");
  if ((a->v_first == nullptr) != (a->v_gate == nullptr) || (a->v_first && !a->v_out))
    return set_error(RWKVRT_BK_INVALID,
                     "v7_wkv: v_first and v_gate must both be set (with v_out) or both be null");
  return check_op(s, launch_v7_wkv(s, *a), "v7_wkv");
}

int op_v7_key_prep(rwkvrt_bk_stream* s, const rwkvrt_bk_v7_key_args* a) {
  RWKVRT_OP_PROLOGUE(s, "v7_key_prep");
  if (!a) return set_error(RWKVRT_BK_INVALID, "v7_key_prep: null argument");
  return check_op(s, launch_v7_key_prep(s, *a), "v7_key_prep");
}

int op_v7_bonus(rwkvrt_bk_stream* s, const rwkvrt_bk_v7_bonus_args* a) {
  RWKVRT_OP_PROLOGUE(s, "v7_bonus");
  if (!a) return set_error(RWKVRT_BK_INVALID, "v7_bonus: null argument");
  return check_op(s, launch_v7_bonus(s, *a), "v7_bonus");
}

#undef RWKVRT_OP_PROLOGUE

// ---- graph capture -------------------------------------------------------------------------

int capture_begin(rwkvrt_bk_stream* s) {
  if (!s) return set_error(RWKVRT_BK_INVALID, "capture_begin: null stream");
  if (s->capturing) return set_error(RWKVRT_BK_INVALID, "capture_begin: already capturing");
  gpuError_t e = use_device(s->ctx->device);
  if (e != gpuSuccess) return check(e, "capture_begin");
  const int rc = ensure_blas(s);  // never create the handle inside a capture
  if (rc != RWKVRT_BK_OK) return rc;
  // Relaxed mode: the scratch arena may need cudaMalloc while the stream is captured.
  e = gpuStreamBeginCaptureRelaxed(s->stream);
  if (e != gpuSuccess) return check(e, "capture_begin");
  s->capturing = true;
  return RWKVRT_BK_OK;
}

int capture_end(rwkvrt_bk_stream* s, rwkvrt_bk_graph** out) {
  if (!s || !out) return set_error(RWKVRT_BK_INVALID, "capture_end: null argument");
  if (!s->capturing)
    return set_error(RWKVRT_BK_INVALID,
                     "capture_end: no capture in progress (an op failed and abandoned it?)");
  gpuError_t e = use_device(s->ctx->device);
  gpuGraph_t graph = nullptr;
  const gpuError_t end = gpuStreamEndCapture(s->stream, &graph);
  s->capturing = false;
  if (e == gpuSuccess) e = end;
  gpuGraphExec_t exec = nullptr;
  if (e == gpuSuccess) e = gpuGraphInstantiate(&exec, graph);
  if (e != gpuSuccess) {
    if (graph) gpuGraphDestroy(graph);
    return check(e, "capture_end");
  }
  auto* g = new (std::nothrow) rwkvrt_bk_graph();
  if (!g) {
    gpuGraphExecDestroy(exec);
    gpuGraphDestroy(graph);
    return set_error(RWKVRT_BK_OUT_OF_MEMORY, "out of host memory");
  }
  g->graph = graph;
  g->exec = exec;
  *out = g;
  return RWKVRT_BK_OK;
}

int graph_launch(rwkvrt_bk_stream* s, rwkvrt_bk_graph* g) {
  if (!s || !g) return set_error(RWKVRT_BK_INVALID, "graph_launch: null argument");
  gpuError_t e = use_device(s->ctx->device);
  if (e == gpuSuccess) e = gpuGraphLaunch(g->exec, s->stream);
  return check_op(s, e, "graph_launch");
}

void graph_free(rwkvrt_bk_graph* g) {
  if (!g) return;
  if (g->exec) gpuGraphExecDestroy(g->exec);
  if (g->graph) gpuGraphDestroy(g->graph);
  delete g;
}

std::string description() {
  return std::string("CUDA ") + format_version(GPU_RUNTIME_VERSION) +
         ": cuBLAS GEMM, own GEMV/WKV/norm kernels, CUDA graphs";
}

const rwkvrt_backend_v1& table() {
  static const std::string desc = description();
  static const rwkvrt_backend_v1 t = [] {
    rwkvrt_backend_v1 v{};
    v.struct_size = sizeof(v);
    v.abi_version = 1;
    v.name = "cuda";
    v.description = desc.c_str();
    v.last_error = &last_error;
    v.probe = &probe;
    v.device_count = &device_count;
    v.device_describe = &device_describe;
    v.context_create = &context_create;
    v.context_free = &context_free;
    v.stream_create = &stream_create;
    v.stream_free = &stream_free;
    v.stream_synchronize = &stream_synchronize;
    v.buffer_alloc = &buffer_alloc;
    v.buffer_free = &buffer_free;
    v.upload = &upload;
    v.download = &download;
    v.copy = &copy;
    v.fill_zero = &fill_zero;
    v.weight_prepare = &weight_prepare_entry;
    v.weight_free = &weight_free_entry;
    v.weight_info = &weight_info;
    v.matmul = &op_matmul;
    v.gather_rows = &op_gather_rows;
    v.layer_norm = &op_layer_norm;
    v.group_norm = &op_group_norm;
    v.token_shift = &op_token_shift;
    v.mix = &op_mix;
    v.unary = &op_unary;
    v.binary = &op_binary;
    v.wkv4 = &op_wkv4;
    v.wkv5 = &op_wkv5;
    v.wkv7 = &op_wkv7;
    v.v7_key_prep = &op_v7_key_prep;
    v.v7_bonus = &op_v7_bonus;
    v.capture_begin = &capture_begin;
    v.capture_end = &capture_end;
    v.graph_launch = &graph_launch;
    v.graph_free = &graph_free;
    v.matmul_bias_act = &op_matmul_bias_act;
    v.matmul_group = &op_matmul_group;
    v.norm_shift_mix = &op_norm_shift_mix;
    v.v7_output = &op_v7_output;
    v.host_alloc = &host_alloc;
    v.host_free = &host_free;
    v.v7_wkv = &op_v7_wkv;
    v.channel_mix = &op_channel_mix;
    v.norm_shift_mix_half = &op_norm_shift_mix_half;
    v.v7_output_half = &op_v7_output_half;
    v.matmul_group_half = &op_matmul_group_half;
    v.channel_mix_half = &op_channel_mix_half;
    return v;
  }();
  return t;
}

}  // namespace

// ---- shared helpers (cuda_backend.h) ---------------------------------------------------------

int set_error(int code, const std::string& message) {
  t_last_error = message;
  return code;
}

int check(gpuError_t err, const char* what) {
  if (err == gpuSuccess) return RWKVRT_BK_OK;
  (void)gpuGetLastError();  // clear a non-sticky error so later calls are not blamed for it
  const int code = err == gpuErrorMemoryAllocation ? RWKVRT_BK_OUT_OF_MEMORY : RWKVRT_BK_ERROR;
  return set_error(code, std::string(what) + ": " + gpuGetErrorString(err));
}

void abandon_capture(rwkvrt_bk_stream* s) {
  if (!s || !s->capturing) return;
  gpuGraph_t g = nullptr;
  (void)gpuStreamEndCapture(s->stream, &g);
  if (g) gpuGraphDestroy(g);
  (void)gpuGetLastError();
  s->capturing = false;
}

int check_op(rwkvrt_bk_stream* s, gpuError_t err, const char* what) {
  if (err == gpuSuccess) return RWKVRT_BK_OK;
  const int rc = check(err, what);
  abandon_capture(s);
  return rc;
}

int ensure_blas(rwkvrt_bk_stream* s) {
  if (s->blas) return RWKVRT_BK_OK;
  if (!s->blas_workspace) {
    const gpuError_t e = gpuMalloc(&s->blas_workspace, kBlasWorkspaceBytes);
    if (e != gpuSuccess) return check(e, "creating the cuBLAS workspace");
  }
  const int st = blas_create(&s->blas, s->stream, s->blas_workspace, kBlasWorkspaceBytes);
  if (st != 0) return set_error(RWKVRT_BK_ERROR, "cublasCreate failed: " + blas_status_string(st));
  return RWKVRT_BK_OK;
}

gpuError_t use_device(int device) {
  if (t_current_device == device) return gpuSuccess;
  const gpuError_t e = gpuSetDevice(device);
  if (e == gpuSuccess) t_current_device = device;
  return e;
}

void* Scratch::get(uint64_t bytes) {
  bytes = (bytes + 255) / 256 * 256;
  if (bytes <= size_) return ptr_;
  // Grow geometrically; the old buffer may still be read by queued work or a captured graph.
  uint64_t want = size_ * 2 > bytes ? size_ * 2 : bytes;
  void* p = nullptr;
  if (gpuMalloc(&p, want) != gpuSuccess) {
    (void)gpuGetLastError();
    want = bytes;
    if (gpuMalloc(&p, want) != gpuSuccess) {
      (void)gpuGetLastError();
      return nullptr;
    }
  }
  if (ptr_) retired_.push_back(ptr_);
  ptr_ = p;
  size_ = want;
  return ptr_;
}

void Scratch::release_all() {
  for (void* p : retired_) gpuFree(p);
  retired_.clear();
  if (ptr_) gpuFree(ptr_);
  ptr_ = nullptr;
  size_ = 0;
}

gpuError_t UploadRing::init() {
  for (int i = 0; i < kSlots; ++i) {
    if (events_[i]) continue;
    const gpuError_t e = gpuEventCreateNoTiming(&events_[i]);
    if (e != gpuSuccess) return e;
  }
  void* p = nullptr;
  const gpuError_t e = gpuHostAlloc(&p, kSlotBytes * kSlots);
  if (e != gpuSuccess) return e;
  pinned_ = static_cast<char*>(p);  // ready() only once everything exists
  return gpuSuccess;
}

void UploadRing::release() {
  for (gpuEvent_t& ev : events_) {
    if (ev) gpuEventDestroy(ev);
    ev = nullptr;
  }
  if (pinned_) gpuFreeHost(pinned_);
  pinned_ = nullptr;
}

gpuError_t UploadRing::upload(gpuStream_t stream, void* dst, const void* src, uint64_t bytes) {
  const int slot = next_;
  next_ = (next_ + 1) % kSlots;
  if (used_[slot]) {
    const gpuError_t e = gpuEventSynchronize(events_[slot]);  // its previous copy has been read
    if (e != gpuSuccess) return e;
  }
  char* staging = pinned_ + uint64_t(slot) * kSlotBytes;
  std::memcpy(staging, src, bytes);
  gpuError_t e = gpuMemcpyAsync(dst, staging, bytes, gpuMemcpyHostToDevice, stream);
  if (e == gpuSuccess) e = gpuEventRecord(events_[slot], stream);
  used_[slot] = e == gpuSuccess;
  return e;
}

}  // namespace rwkvrt::cuda

extern "C" __attribute__((visibility("default"))) int rwkvrt_backend_negotiate(
    rwkvrt_bk_negotiation* n) {
  if (!n || n->struct_size < sizeof(rwkvrt_bk_negotiation)) return RWKVRT_BK_INVALID;
  n->plugin_min_version = 1;
  n->plugin_max_version = 1;
  if (n->host_min_version > 1 || n->host_max_version < 1) {
    n->chosen_version = 0;
    n->table = nullptr;
    return RWKVRT_BK_UNSUPPORTED;
  }
  n->chosen_version = 1;
  n->table = &rwkvrt::cuda::table();
  return RWKVRT_BK_OK;
}
