#include "core/device.h"

#include <algorithm>
#include <cstdlib>
#include <utility>

#include "core/error.h"
#include "core/log.h"

namespace rwkvrt {

Device::Device(const BackendEntry& backend, int32_t device, int32_t n_threads)
    : api_(backend.api), backend_name_(backend.name), device_(device) {
  if (!api_) fail(RWKVRT_ERR_NO_BACKEND, "backend '{}' is not loaded", backend.name);
  if (device < 0 || device >= backend.device_count)
    fail(RWKVRT_ERR_INVALID_ARGUMENT, "backend '{}' has {} device(s); device {} does not exist",
         backend.name, backend.device_count, device);
  rwkvrt_bk_context_params p{};
  p.struct_size = sizeof(p);
  p.device = device;
  p.n_threads = n_threads;
  check(api_->context_create(&p, &ctx_), "context_create");
  const rwkvrt_backend_v1& t = *api_;
  has_half_activations_ = RWKVRT_BACKEND_V1_HAS(&t, channel_mix_half) && t.norm_shift_mix_half &&
                          t.v7_output_half && t.matmul_group_half && t.channel_mix_half;
  rwkvrt_bk_device_desc desc{};
  desc.struct_size = sizeof(desc);
  if (has_half_activations_ && api_->device_describe(device, &desc) == RWKVRT_BK_OK)
    half_activation_rows_ = desc.half_activation_rows;
}

Device::~Device() {
  if (ctx_) api_->context_free(ctx_);
}

void Device::check(int rc, const char* what) const {
  if (rc == RWKVRT_BK_OK) return;
  const char* msg = api_->last_error ? api_->last_error() : nullptr;
  const rwkvrt_status status = rc == RWKVRT_BK_OUT_OF_MEMORY ? RWKVRT_ERR_OUT_OF_MEMORY
                               : rc == RWKVRT_BK_UNSUPPORTED ? RWKVRT_ERR_UNSUPPORTED
                                                             : RWKVRT_ERR_BACKEND;
  fail(status, "backend '{}' {} failed: {}", backend_name_, what, msg && *msg ? msg : "no message");
}

DeviceBuffer::DeviceBuffer(std::shared_ptr<Device> device, uint64_t bytes)
    : device_(std::move(device)), bytes_(bytes) {
  device_->check(device_->api().buffer_alloc(device_->context(), bytes > 0 ? bytes : 1, &ptr_),
                 "buffer_alloc");
}

DeviceBuffer::~DeviceBuffer() {
  release();
}

void DeviceBuffer::release() {
  if (ptr_) device_->api().buffer_free(device_->context(), ptr_);
  ptr_ = nullptr;
  bytes_ = 0;
}

DeviceBuffer::DeviceBuffer(DeviceBuffer&& other) noexcept
    : device_(std::move(other.device_)), ptr_(other.ptr_), bytes_(other.bytes_) {
  other.ptr_ = nullptr;
  other.bytes_ = 0;
}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  if (this != &other) {
    release();
    device_ = std::move(other.device_);
    ptr_ = std::exchange(other.ptr_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

HostBuffer::HostBuffer(std::shared_ptr<Device> device, uint64_t bytes)
    : device_(std::move(device)), bytes_(bytes) {
  const rwkvrt_backend_v1& api = device_->api();
  if (RWKVRT_BACKEND_V1_HAS(&api, host_free) && api.host_alloc && api.host_free) {
    if (api.host_alloc(device_->context(), bytes > 0 ? bytes : 1, &ptr_) == RWKVRT_BK_OK) {
      page_locked_ = true;
      return;
    }
    // Page-locked memory is a limited resource; ordinary memory only makes the copies slower.
    log(RWKVRT_LOG_DEBUG, "backend '{}' host_alloc of {} bytes failed, using pageable memory",
        device_->backend_name(), bytes);
    ptr_ = nullptr;
  }
  ptr_ = std::malloc(bytes > 0 ? bytes : 1);
  if (!ptr_) fail(RWKVRT_ERR_OUT_OF_MEMORY, "cannot allocate {} bytes of host memory", bytes);
}

HostBuffer::~HostBuffer() {
  release();
}

void HostBuffer::release() {
  if (ptr_) {
    if (page_locked_)
      device_->api().host_free(device_->context(), ptr_);
    else
      std::free(ptr_);
  }
  ptr_ = nullptr;
  bytes_ = 0;
  page_locked_ = false;
}

HostBuffer::HostBuffer(HostBuffer&& other) noexcept
    : device_(std::move(other.device_)),
      ptr_(std::exchange(other.ptr_, nullptr)),
      bytes_(std::exchange(other.bytes_, 0)),
      page_locked_(std::exchange(other.page_locked_, false)) {}

HostBuffer& HostBuffer::operator=(HostBuffer&& other) noexcept {
  if (this != &other) {
    release();
    device_ = std::move(other.device_);
    ptr_ = std::exchange(other.ptr_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
    page_locked_ = std::exchange(other.page_locked_, false);
  }
  return *this;
}

PreparedWeight::PreparedWeight(std::shared_ptr<Device> device, const rwkvrt_bk_weight_desc& desc)
    : device_(std::move(device)), rows_(desc.rows), cols_(desc.cols) {
  const int rc = device_->api().weight_prepare(device_->context(), &desc, &w_);
  if (rc != RWKVRT_BK_OK) {
    const std::string what =
        std::string("weight_prepare of '") + (desc.name ? desc.name : "?") + "'";
    device_->check(rc, what.c_str());
  }
}

PreparedWeight::~PreparedWeight() {
  release();
}

void PreparedWeight::release() {
  if (w_) device_->api().weight_free(device_->context(), w_);
  w_ = nullptr;
}

PreparedWeight::PreparedWeight(PreparedWeight&& other) noexcept
    : device_(std::move(other.device_)),
      w_(std::exchange(other.w_, nullptr)),
      rows_(other.rows_),
      cols_(other.cols_) {}

PreparedWeight& PreparedWeight::operator=(PreparedWeight&& other) noexcept {
  if (this != &other) {
    release();
    device_ = std::move(other.device_);
    w_ = std::exchange(other.w_, nullptr);
    rows_ = other.rows_;
    cols_ = other.cols_;
  }
  return *this;
}

rwkvrt_bk_weight_info PreparedWeight::info() const {
  rwkvrt_bk_weight_info info{};
  info.struct_size = sizeof(info);
  device_->check(device_->api().weight_info(w_, &info), "weight_info");
  return info;
}

Stream::Stream(std::shared_ptr<Device> device) : device_(std::move(device)), api_(&device_->api()) {
  device_->check(api_->stream_create(device_->context(), &s_), "stream_create");
}

Stream::~Stream() {
  if (s_) api_->stream_free(s_);
}

void Stream::synchronize() {
  device_->check(api_->stream_synchronize(s_), "synchronize");
}

bool Stream::can_capture() const {
  return api_->capture_begin && api_->capture_end && api_->graph_launch && api_->graph_free;
}

void Stream::capture_begin() {
  device_->check(api_->capture_begin(s_), "capture_begin");
}

CapturedGraph Stream::capture_end() {
  rwkvrt_bk_graph* g = nullptr;
  device_->check(api_->capture_end(s_, &g), "capture_end");
  return CapturedGraph(api_, g);
}

void Stream::launch(const CapturedGraph& graph) {
  device_->check(api_->graph_launch(s_, graph.get()), "graph_launch");
}

void Stream::upload(void* dst, const void* src, uint64_t bytes) {
  device_->check(api_->upload(s_, dst, src, bytes), "upload");
}

void Stream::download(void* dst, const void* src, uint64_t bytes) {
  device_->check(api_->download(s_, dst, src, bytes), "download");
}

void Stream::copy(void* dst, const void* src, uint64_t bytes) {
  device_->check(api_->copy(s_, dst, src, bytes), "copy");
}

void Stream::fill_zero(void* dst, uint64_t bytes) {
  device_->check(api_->fill_zero(s_, dst, bytes), "fill_zero");
}

void Stream::matmul(const float* x, uint64_t M, const PreparedWeight& w, float* y, bool accumulate,
                    uint64_t ldx, uint64_t ldy) {
  rwkvrt_bk_matmul_args a{x, M, ldx, w.get(), y, ldy, accumulate ? 1u : 0u};
  device_->check(api_->matmul(s_, &a), "matmul");
}

void Stream::matmul_act(const float* x, uint64_t M, const PreparedWeight& w, float* y,
                        const float* bias, int32_t act, uint64_t ldx) {
  if (RWKVRT_BACKEND_V1_HAS(api_, matmul_bias_act) && api_->matmul_bias_act) {
    rwkvrt_bk_matmul_args a{x, M, ldx, w.get(), y, 0, 0u};
    device_->check(api_->matmul_bias_act(s_, &a, bias, act), "matmul_bias_act");
    return;
  }
  matmul(x, M, w, y, false, ldx);
  if (bias) binary(RWKVRT_BK_ADD, y, bias, y, M, w.rows(), true);
  if (act != RWKVRT_BK_NO_ACTIVATION) unary(static_cast<rwkvrt_bk_unary>(act), y, y, M * w.rows());
}

namespace {

// A group's items as the ABI takes them (count ≤ RWKVRT_BK_MAX_GROUP).
void raw_items(const Stream::MatmulItem* items, size_t count, rwkvrt_bk_matmul_item* raw) {
  for (size_t i = 0; i < count; ++i) {
    const Stream::MatmulItem& it = items[i];
    raw[i] = {{static_cast<const float*>(it.x), it.M, it.ldx, it.w->get(), it.y, 0,
               it.accumulate ? 1u : 0u},
              it.bias,
              it.act};
  }
}

}  // namespace

void Stream::matmul_group(const MatmulItem* items, size_t count) {
  if (count <= RWKVRT_BK_MAX_GROUP && RWKVRT_BACKEND_V1_HAS(api_, matmul_group) &&
      api_->matmul_group) {
    rwkvrt_bk_matmul_item raw[RWKVRT_BK_MAX_GROUP];
    raw_items(items, count, raw);
    device_->check(api_->matmul_group(s_, raw, uint32_t(count)), "matmul_group");
    return;
  }
  for (size_t i = 0; i < count; ++i) {
    const MatmulItem& it = items[i];
    const float* x = static_cast<const float*>(it.x);
    if (it.bias || it.act != RWKVRT_BK_NO_ACTIVATION)
      matmul_act(x, it.M, *it.w, it.y, it.bias, it.act, it.ldx);
    else
      matmul(x, it.M, *it.w, it.y, it.accumulate, it.ldx);
  }
}

void Stream::require_half_activations() const {
  if (!device_->has_half_activations())
    fail(RWKVRT_ERR_UNSUPPORTED, "backend '{}' has no half-precision activations",
         device_->backend_name());
}

void Stream::matmul_group_half(const MatmulItem* items, size_t count, rwkvrt_bk_dtype half) {
  require_half_activations();
  for (size_t done = 0; done < count; done += RWKVRT_BK_MAX_GROUP) {
    const size_t n = std::min<size_t>(RWKVRT_BK_MAX_GROUP, count - done);
    rwkvrt_bk_matmul_item raw[RWKVRT_BK_MAX_GROUP];
    raw_items(items + done, n, raw);
    device_->check(api_->matmul_group_half(s_, raw, uint32_t(n), half), "matmul_group_half");
  }
}

void Stream::norm_shift_mix_half(const rwkvrt_bk_norm_shift_mix_args& a, rwkvrt_bk_dtype half) {
  require_half_activations();
  device_->check(api_->norm_shift_mix_half(s_, &a, half), "norm_shift_mix_half");
}

void Stream::v7_output_half(const rwkvrt_bk_v7_output_args& a, rwkvrt_bk_dtype half, void* out) {
  require_half_activations();
  device_->check(api_->v7_output_half(s_, &a, half, out), "v7_output_half");
}

void Stream::channel_mix_half(const void* x, uint64_t M, const PreparedWeight& key,
                              const PreparedWeight& value, float* hidden, float* y, bool accumulate,
                              rwkvrt_bk_dtype half) {
  require_half_activations();
  const rwkvrt_bk_channel_mix_args a{
      static_cast<const float*>(x), M, 0, key.get(), value.get(), hidden, y, 0,
      accumulate ? 1u : 0u};
  device_->check(api_->channel_mix_half(s_, &a, half), "channel_mix_half");
}

void Stream::norm_shift_mix(const rwkvrt_bk_norm_shift_mix_args& a, float* xhat, float* prev) {
  if (RWKVRT_BACKEND_V1_HAS(api_, norm_shift_mix) && api_->norm_shift_mix) {
    device_->check(api_->norm_shift_mix(s_, &a), "norm_shift_mix");
    return;
  }
  const uint64_t M = a.B * a.T;
  layer_norm(a.x, xhat, M, a.C, a.gamma, a.beta, a.eps);
  token_shift({xhat, prev, a.B, a.T, a.C, a.shift});
  mix({xhat, prev, M, a.C, a.n_out, a.mix, nullptr, a.out});
}

void Stream::v7_output(const rwkvrt_bk_v7_output_args& a) {
  if (RWKVRT_BACKEND_V1_HAS(api_, v7_output) && api_->v7_output) {
    device_->check(api_->v7_output(s_, &a), "v7_output");
    return;
  }
  const uint64_t C = a.H * a.N;
  group_norm(a.y, a.y, a.M, C, a.H, a.gamma, a.beta, a.eps);
  v7_bonus({a.M, a.H, a.N, a.y, a.r, a.ktilde, a.v, a.r_k});
  binary(RWKVRT_BK_MUL, a.y, a.g, a.y, a.M, C, false);
}

void Stream::channel_mix(const float* x, uint64_t M, const PreparedWeight& key,
                         const PreparedWeight& value, float* hidden, float* y, bool accumulate) {
  if (value.cols() != key.rows())
    fail(RWKVRT_ERR_INVALID_ARGUMENT,
         "channel_mix: the value matrix has {} columns but the key matrix {} rows", value.cols(),
         key.rows());
  if (RWKVRT_BACKEND_V1_HAS(api_, channel_mix) && api_->channel_mix) {
    const rwkvrt_bk_channel_mix_args a{x,      M, 0, key.get(),           value.get(),
                                       hidden, y, 0, accumulate ? 1u : 0u};
    device_->check(api_->channel_mix(s_, &a), "channel_mix");
    return;
  }
  matmul_act(x, M, key, hidden, nullptr, RWKVRT_BK_RELU_SQUARE);
  matmul(hidden, M, value, y, accumulate);
}

void Stream::v7_wkv(const rwkvrt_bk_v7_wkv_args& a, float* kappa) {
  // Checked here for the fallback's sake too (it would write v' through a null v_out).
  if ((a.v_first == nullptr) != (a.v_gate == nullptr) || (a.v_first && !a.v_out))
    fail(RWKVRT_ERR_INVALID_ARGUMENT,
         "v7_wkv: v_first and v_gate must both be set (with v_out) or both be null");
  if (RWKVRT_BACKEND_V1_HAS(api_, v7_wkv) && api_->v7_wkv) {
    device_->check(api_->v7_wkv(s_, &a), "v7_wkv");
    return;
  }
  const uint64_t M = a.B * a.T, C = a.H * a.N;
  v7_key_prep({M, a.H, a.N, a.k, a.a, a.k_k, a.k_a, kappa, a.ktilde});
  const float* v = a.v;
  if (a.v_first) {  // v' = v + (v_first − v)·gate
    binary(RWKVRT_BK_SUB, a.v_first, a.v, a.v_out, M, C, false);
    binary(RWKVRT_BK_MUL, a.v_out, a.v_gate, a.v_out, M, C, false);
    binary(RWKVRT_BK_ADD, a.v_out, a.v, a.v_out, M, C, false);
    v = a.v_out;
  }
  wkv7({a.B, a.T, a.H, a.N, a.r, a.log_decay, a.ktilde, v, kappa, a.a, a.y, a.state});
}

void Stream::gather_rows(const float* table, uint64_t C, const int32_t* ids, uint64_t M,
                         float* out) {
  device_->check(api_->gather_rows(s_, table, C, ids, M, out), "gather_rows");
}

void Stream::layer_norm(const float* x, float* y, uint64_t M, uint64_t C, const float* gamma,
                        const float* beta, float eps) {
  rwkvrt_bk_norm_args a{x, y, M, C, 1, gamma, beta, eps};
  device_->check(api_->layer_norm(s_, &a), "layer_norm");
}

void Stream::group_norm(const float* x, float* y, uint64_t M, uint64_t C, uint64_t groups,
                        const float* gamma, const float* beta, float eps) {
  rwkvrt_bk_norm_args a{x, y, M, C, groups, gamma, beta, eps};
  device_->check(api_->group_norm(s_, &a), "group_norm");
}

void Stream::token_shift(const rwkvrt_bk_token_shift_args& args) {
  device_->check(api_->token_shift(s_, &args), "token_shift");
}

void Stream::mix(const rwkvrt_bk_mix_args& args) {
  device_->check(api_->mix(s_, &args), "mix");
}

void Stream::unary(rwkvrt_bk_unary op, const float* x, float* y, uint64_t n) {
  device_->check(api_->unary(s_, op, x, y, n), "unary");
}

void Stream::binary(rwkvrt_bk_binary op, const float* a, const float* b, float* y, uint64_t M,
                    uint64_t C, bool b_is_row) {
  device_->check(api_->binary(s_, op, a, b, y, M, C, b_is_row ? 1u : 0u), "binary");
}

void Stream::wkv4(const rwkvrt_bk_wkv4_args& args) {
  device_->check(api_->wkv4(s_, &args), "wkv4");
}
void Stream::wkv5(const rwkvrt_bk_wkv5_args& args) {
  device_->check(api_->wkv5(s_, &args), "wkv5");
}
void Stream::wkv7(const rwkvrt_bk_wkv7_args& args) {
  device_->check(api_->wkv7(s_, &args), "wkv7");
}
void Stream::v7_key_prep(const rwkvrt_bk_v7_key_args& args) {
  device_->check(api_->v7_key_prep(s_, &args), "v7_key_prep");
}
void Stream::v7_bonus(const rwkvrt_bk_v7_bonus_args& args) {
  device_->check(api_->v7_bonus(s_, &args), "v7_bonus");
}

}  // namespace rwkvrt
