// The CPU backend plugin: the C entry point, the function table, contexts, streams and memory.
// Work runs synchronously on the calling thread plus the context's OpenMP workers, so a "stream"
// only carries the context; upload/download/copy are memcpy.
#include <omp.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <new>
#include <string>

#include "cpu_backend.h"
#include "kernels.h"

namespace rwkvrt::cpu {
namespace {

thread_local std::string t_last_error;

const char* last_error() { return t_last_error.c_str(); }

int online_cores() {
  const long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? int(n) : 1;
}

std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) return line.substr(colon + 2);
    }
  }
  return "CPU";
}

float probe(char* reason, size_t capacity) {
  (void)reason;
  (void)capacity;
  // Always usable; prefer any accelerator backend (their scores are higher).
  return cpu_features().avx512 ? 10.0f : cpu_features().avx2_fma ? 8.0f : 5.0f;
}

int32_t device_count() { return 1; }

int device_describe(int32_t device, rwkvrt_bk_device_desc* out) {
  if (device != 0 || !out) return set_error(RWKVRT_BK_INVALID, "the CPU backend has one device, 0");
  const std::string name =
      cpu_model_name() + " (" + std::to_string(online_cores()) + " cores, " + kernel_isa_name() + ")";
  std::snprintf(out->name, sizeof(out->name), "%s", name.c_str());
  const long pages = ::sysconf(_SC_PHYS_PAGES), avail = ::sysconf(_SC_AVPHYS_PAGES);
  const long page = ::sysconf(_SC_PAGESIZE);
  out->memory_total = pages > 0 ? uint64_t(pages) * uint64_t(page) : 0;
  out->memory_free = avail > 0 ? uint64_t(avail) * uint64_t(page) : 0;
  return RWKVRT_BK_OK;
}

int context_create(const rwkvrt_bk_context_params* params, rwkvrt_bk_context** out) {
  if (!params || !out) return set_error(RWKVRT_BK_INVALID, "context_create: null argument");
  if (params->device != 0)
    return set_error(RWKVRT_BK_INVALID, "the CPU backend has one device, 0");
  auto* ctx = new (std::nothrow) rwkvrt_bk_context();
  if (!ctx) return set_error(RWKVRT_BK_OUT_OF_MEMORY, "out of memory");
  ctx->n_threads = params->n_threads > 0 ? params->n_threads : online_cores();
  *out = ctx;
  return RWKVRT_BK_OK;
}

void context_free(rwkvrt_bk_context* ctx) { delete ctx; }

int stream_create(rwkvrt_bk_context* ctx, rwkvrt_bk_stream** out) {
  if (!ctx || !out) return set_error(RWKVRT_BK_INVALID, "stream_create: null argument");
  auto* s = new (std::nothrow) rwkvrt_bk_stream();
  if (!s) return set_error(RWKVRT_BK_OUT_OF_MEMORY, "out of memory");
  s->ctx = ctx;
  *out = s;
  return RWKVRT_BK_OK;
}

void stream_free(rwkvrt_bk_stream* s) { delete s; }
int stream_synchronize(rwkvrt_bk_stream*) { return RWKVRT_BK_OK; }

int buffer_alloc(rwkvrt_bk_context*, uint64_t bytes, void** out) {
  void* p = aligned_alloc_bytes(bytes);
  if (!p) return set_error(RWKVRT_BK_OUT_OF_MEMORY, "cannot allocate " + std::to_string(bytes) + " bytes");
  *out = p;
  return RWKVRT_BK_OK;
}

void buffer_free(rwkvrt_bk_context*, void* p) { aligned_free(p); }

int upload(rwkvrt_bk_stream*, void* dst, const void* src, uint64_t bytes) {
  std::memcpy(dst, src, bytes);
  return RWKVRT_BK_OK;
}
int download(rwkvrt_bk_stream*, void* dst, const void* src, uint64_t bytes) {
  std::memcpy(dst, src, bytes);
  return RWKVRT_BK_OK;
}
int copy(rwkvrt_bk_stream*, void* dst, const void* src, uint64_t bytes) {
  std::memmove(dst, src, bytes);
  return RWKVRT_BK_OK;
}
int fill_zero(rwkvrt_bk_stream*, void* dst, uint64_t bytes) {
  std::memset(dst, 0, bytes);
  return RWKVRT_BK_OK;
}

int weight_prepare(rwkvrt_bk_context*, const rwkvrt_bk_weight_desc* desc, rwkvrt_bk_weight** out) {
  if (!desc || !out || !desc->src) return set_error(RWKVRT_BK_INVALID, "weight_prepare: null argument");
  auto* w = new (std::nothrow) rwkvrt_bk_weight();
  if (!w) return set_error(RWKVRT_BK_OUT_OF_MEMORY, "out of memory");
  const int rc = prepare_weight(*desc, w);
  if (rc != RWKVRT_BK_OK) {
    aligned_free(w->data);
    delete w;
    return rc;
  }
  *out = w;
  return RWKVRT_BK_OK;
}

void weight_free(rwkvrt_bk_context*, rwkvrt_bk_weight* w) {
  if (!w) return;
  aligned_free(w->data);
  delete w;
}

int weight_info(const rwkvrt_bk_weight* w, rwkvrt_bk_weight_info* out) {
  if (!w || !out) return set_error(RWKVRT_BK_INVALID, "weight_info: null argument");
  out->dtype = w->dtype;
  out->bytes = w->bytes;
  out->bytes_read_per_matmul = w->rows * w->row_bytes;
  return RWKVRT_BK_OK;
}

int threads_of(rwkvrt_bk_stream* s) { return s->ctx->n_threads; }

int op_matmul(rwkvrt_bk_stream* s, const rwkvrt_bk_matmul_args* a) {
  if (!a || !a->w || !a->x || !a->y) return set_error(RWKVRT_BK_INVALID, "matmul: null argument");
  const uint64_t ldx = a->ldx ? a->ldx : a->w->cols, ldy = a->ldy ? a->ldy : a->w->rows;
  if (ldx < a->w->cols || ldy < a->w->rows)
    return set_error(RWKVRT_BK_INVALID, "matmul: leading dimension smaller than the row");
  return matmul(*a, threads_of(s));
}

int op_gather_rows(rwkvrt_bk_stream* s, const float* table, uint64_t C, const int32_t* ids,
                   uint64_t M, float* out) {
  gather_rows(table, C, ids, M, out, threads_of(s));
  return RWKVRT_BK_OK;
}

int op_layer_norm(rwkvrt_bk_stream* s, const rwkvrt_bk_norm_args* a) {
  layer_norm(*a, threads_of(s));
  return RWKVRT_BK_OK;
}

int op_group_norm(rwkvrt_bk_stream* s, const rwkvrt_bk_norm_args* a) {
  if (a->groups == 0 || a->C % a->groups != 0)
    return set_error(RWKVRT_BK_INVALID, "group_norm: C is not a multiple of the group count");
  group_norm(*a, threads_of(s));
  return RWKVRT_BK_OK;
}

int op_token_shift(rwkvrt_bk_stream* s, const rwkvrt_bk_token_shift_args* a) {
  if (a->T == 0) return set_error(RWKVRT_BK_INVALID, "token_shift: T must be at least 1");
  token_shift(*a, threads_of(s));
  return RWKVRT_BK_OK;
}

int op_mix(rwkvrt_bk_stream* s, const rwkvrt_bk_mix_args* a) {
  if (a->n_out < 1 || a->n_out > 8) return set_error(RWKVRT_BK_INVALID, "mix: n_out must be 1..8");
  mix(*a, threads_of(s));
  return RWKVRT_BK_OK;
}

int op_unary(rwkvrt_bk_stream* s, rwkvrt_bk_unary op, const float* x, float* y, uint64_t n) {
  if (op > RWKVRT_BK_V7_LOG_DECAY) return set_error(RWKVRT_BK_UNSUPPORTED, "unary: unknown op");
  unary(op, x, y, n, threads_of(s));
  return RWKVRT_BK_OK;
}

int op_binary(rwkvrt_bk_stream* s, rwkvrt_bk_binary op, const float* a, const float* b, float* y,
              uint64_t M, uint64_t C, uint32_t b_is_row) {
  if (op > RWKVRT_BK_MUL) return set_error(RWKVRT_BK_UNSUPPORTED, "binary: unknown op");
  binary(op, a, b, y, M, C, b_is_row != 0, threads_of(s));
  return RWKVRT_BK_OK;
}

int op_wkv4(rwkvrt_bk_stream* s, const rwkvrt_bk_wkv4_args* a) {
  wkv4(*a, threads_of(s));
  return RWKVRT_BK_OK;
}
int op_wkv5(rwkvrt_bk_stream* s, const rwkvrt_bk_wkv5_args* a) {
  wkv5(*a, threads_of(s));
  return RWKVRT_BK_OK;
}
int op_wkv7(rwkvrt_bk_stream* s, const rwkvrt_bk_wkv7_args* a) {
  wkv7(*a, threads_of(s));
  return RWKVRT_BK_OK;
}
int op_v7_key_prep(rwkvrt_bk_stream* s, const rwkvrt_bk_v7_key_args* a) {
  v7_key_prep(*a, threads_of(s));
  return RWKVRT_BK_OK;
}
int op_v7_bonus(rwkvrt_bk_stream* s, const rwkvrt_bk_v7_bonus_args* a) {
  v7_bonus(*a, threads_of(s));
  return RWKVRT_BK_OK;
}

std::string description() {
  return std::string("CPU: ") + kernel_isa_name() + " kernels, oneDNN matmul, OpenMP threads";
}

const rwkvrt_backend_v1& table() {
  static const std::string desc = description();
  static const rwkvrt_backend_v1 t = [] {
    rwkvrt_backend_v1 v{};
    v.struct_size = sizeof(v);
    v.abi_version = 1;
    v.name = "cpu";
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
    v.weight_prepare = &weight_prepare;
    v.weight_free = &weight_free;
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
    // No graph capture: CPU ops have no launch overhead to save.
    return v;
  }();
  return t;
}

}  // namespace

int set_error(int code, const std::string& message) {
  t_last_error = message;
  return code;
}

}  // namespace rwkvrt::cpu

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
  n->table = &rwkvrt::cpu::table();
  return RWKVRT_BK_OK;
}
