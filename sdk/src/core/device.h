// C++ handles over a backend plugin's C table: a Device (one context), device buffers, prepared
// weights and a Stream whose methods enqueue ops.  Every plugin failure becomes Error(BACKEND or
// OUT_OF_MEMORY) carrying the plugin's message and the op that failed.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/backend_registry.h"
#include "rwkvrt/backend.h"

namespace rwkvrt {

class Device {
 public:
  // Creates a context on `device` of `backend`.  Throws Error on failure.
  Device(const BackendEntry& backend, int32_t device, int32_t n_threads);
  ~Device();
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  const rwkvrt_backend_v1& api() const { return *api_; }
  rwkvrt_bk_context* context() const { return ctx_; }
  const std::string& backend_name() const { return backend_name_; }
  int32_t index() const { return device_; }

  // Throws when rc is not RWKVRT_BK_OK, naming `what` and the plugin's message.
  void check(int rc, const char* what) const;

  // Whether the backend has the *_half entries of revision 4 (Stream's *_half calls).
  bool has_half_activations() const { return has_half_activations_; }
  // Rows from which the matmuls of weights prepared with RWKVRT_BK_MATMUL_ROUNDED_ACTIVATIONS
  // may be handed activations already rounded, through Stream's *_half calls
  // (rwkvrt_bk_device_desc.half_activation_rows); 0 when the backend lacks those entries or
  // advises against them.
  uint32_t half_activation_rows() const { return half_activation_rows_; }

 private:
  const rwkvrt_backend_v1* api_;
  rwkvrt_bk_context* ctx_ = nullptr;
  bool has_half_activations_ = false;
  uint32_t half_activation_rows_ = 0;
  std::string backend_name_;
  int32_t device_;
};

// An owned device allocation.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(std::shared_ptr<Device> device, uint64_t bytes);
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& other) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* get() const { return ptr_; }
  float* f32(uint64_t offset_floats = 0) const { return static_cast<float*>(ptr_) + offset_floats; }
  uint64_t bytes() const { return bytes_; }

 private:
  void release();
  std::shared_ptr<Device> device_;
  void* ptr_ = nullptr;
  uint64_t bytes_ = 0;
};

// Host memory for large downloads: page-locked through the backend's host_alloc where it offers
// one (a GPU copies into it at the interconnect's speed), else ordinary heap memory.  Contents
// are uninitialised.
class HostBuffer {
 public:
  HostBuffer() = default;
  HostBuffer(std::shared_ptr<Device> device, uint64_t bytes);
  ~HostBuffer();
  HostBuffer(HostBuffer&& other) noexcept;
  HostBuffer& operator=(HostBuffer&& other) noexcept;
  HostBuffer(const HostBuffer&) = delete;
  HostBuffer& operator=(const HostBuffer&) = delete;

  float* f32() const { return static_cast<float*>(ptr_); }
  uint64_t bytes() const { return bytes_; }
  bool page_locked() const { return page_locked_; }

 private:
  void release();
  std::shared_ptr<Device> device_;
  void* ptr_ = nullptr;
  uint64_t bytes_ = 0;
  bool page_locked_ = false;
};

// A matrix prepared by the backend ([N][K], used as y = x·Wᵀ).
class PreparedWeight {
 public:
  PreparedWeight() = default;
  PreparedWeight(std::shared_ptr<Device> device, const rwkvrt_bk_weight_desc& desc);
  ~PreparedWeight();
  PreparedWeight(PreparedWeight&& other) noexcept;
  PreparedWeight& operator=(PreparedWeight&& other) noexcept;
  PreparedWeight(const PreparedWeight&) = delete;
  PreparedWeight& operator=(const PreparedWeight&) = delete;

  const rwkvrt_bk_weight* get() const { return w_; }
  explicit operator bool() const { return w_ != nullptr; }
  uint64_t rows() const { return rows_; }
  uint64_t cols() const { return cols_; }
  rwkvrt_bk_weight_info info() const;

 private:
  void release();
  std::shared_ptr<Device> device_;
  rwkvrt_bk_weight* w_ = nullptr;
  uint64_t rows_ = 0, cols_ = 0;
};

// A recorded sequence of ops (a CUDA graph, for instance), replayed on the same addresses.
class CapturedGraph {
 public:
  CapturedGraph() = default;
  CapturedGraph(const rwkvrt_backend_v1* api, rwkvrt_bk_graph* g) : api_(api), g_(g) {}
  ~CapturedGraph() {
    if (g_) api_->graph_free(g_);
  }
  CapturedGraph(CapturedGraph&& o) noexcept : api_(o.api_), g_(std::exchange(o.g_, nullptr)) {}
  CapturedGraph& operator=(CapturedGraph&& o) noexcept {
    if (this != &o) {
      if (g_) api_->graph_free(g_);
      api_ = o.api_;
      g_ = std::exchange(o.g_, nullptr);
    }
    return *this;
  }
  CapturedGraph(const CapturedGraph&) = delete;
  CapturedGraph& operator=(const CapturedGraph&) = delete;
  rwkvrt_bk_graph* get() const { return g_; }
  explicit operator bool() const { return g_ != nullptr; }

 private:
  const rwkvrt_backend_v1* api_ = nullptr;
  rwkvrt_bk_graph* g_ = nullptr;
};

// An ordered queue of device work.  One host thread at a time.
class Stream {
 public:
  explicit Stream(std::shared_ptr<Device> device);
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  Device& device() const { return *device_; }
  rwkvrt_bk_stream* raw() const { return s_; }

  void synchronize();
  // Graph capture (optional in the plugin ABI): whether the backend offers it, and the calls.
  bool can_capture() const;
  void capture_begin();
  CapturedGraph capture_end();
  void launch(const CapturedGraph& graph);
  void upload(void* dst, const void* src, uint64_t bytes);
  void download(void* dst, const void* src, uint64_t bytes);
  void copy(void* dst, const void* src, uint64_t bytes);
  void fill_zero(void* dst, uint64_t bytes);

  void matmul(const float* x, uint64_t M, const PreparedWeight& w, float* y,
              bool accumulate = false, uint64_t ldx = 0, uint64_t ldy = 0);
  // y = act(x·Wᵀ + bias): bias [N] or null, act a rwkvrt_bk_unary or RWKVRT_BK_NO_ACTIVATION.
  // One op where the backend offers matmul_bias_act, else matmul, binary ADD and unary.
  void matmul_act(const float* x, uint64_t M, const PreparedWeight& w, float* y, const float* bias,
                  int32_t act, uint64_t ldx = 0);
  // One of a group of independent matmuls: y = act(x·Wᵀ + bias), rows contiguous.
  struct MatmulItem {
    const void* x;  // fp32 values (for matmul_group_half, values of its half type)
    uint64_t M;
    const PreparedWeight* w;
    float* y;
    const float* bias = nullptr;
    int32_t act = RWKVRT_BK_NO_ACTIVATION;
    uint64_t ldx = 0;         // values between rows of x; 0 = K
    bool accumulate = false;  // y += x·Wᵀ (no bias or act then)
  };
  // Independent matmuls (no output overlaps another item's input or output; at most
  // RWKVRT_BK_MAX_GROUP) as one op where the backend offers matmul_group, else one op each.
  void matmul_group(const MatmulItem* items, size_t n);
  void matmul_group(std::initializer_list<MatmulItem> items) {
    matmul_group(items.begin(), items.size());
  }

  // Half-precision activations (backend ABI revision 4), for hosts that checked
  // Device::half_activation_rows(): `half` is RWKVRT_BK_F16 or RWKVRT_BK_BF16, and the buffers
  // named hold values of that type.  Throws when the backend lacks the entries
  // (Device::has_half_activations()).
  //   norm_shift_mix_half: args.out;  v7_output_half: `out` instead of args.y (only read);
  //   matmul_group_half: every item's x, each weight stored as `half`;  channel_mix_half: x.
  void norm_shift_mix_half(const rwkvrt_bk_norm_shift_mix_args& args, rwkvrt_bk_dtype half);
  void v7_output_half(const rwkvrt_bk_v7_output_args& args, rwkvrt_bk_dtype half, void* out);
  void matmul_group_half(const MatmulItem* items, size_t n, rwkvrt_bk_dtype half);
  void channel_mix_half(const void* x, uint64_t M, const PreparedWeight& key,
                        const PreparedWeight& value, float* hidden, float* y, bool accumulate,
                        rwkvrt_bk_dtype half);
  // LayerNorm, token shift and mixes as one op where the backend offers norm_shift_mix, else as
  // the three ops through `xhat` and `prev` ([B·T][C] each, scratch of the caller).
  void norm_shift_mix(const rwkvrt_bk_norm_shift_mix_args& args, float* xhat, float* prev);
  // GroupNorm + v7 bonus + gate as one op where the backend offers v7_output, else three ops.
  void v7_output(const rwkvrt_bk_v7_output_args& args);
  // The channel mix's matmuls, y (+)= W_value · relu(W_key · x)², as one op where the backend
  // offers channel_mix, else matmul_act (ReLU²) into `hidden` and matmul.  `hidden` ([M][rows of
  // W_key]) is scratch either way: its contents afterwards are unspecified.
  void channel_mix(const float* x, uint64_t M, const PreparedWeight& key,
                   const PreparedWeight& value, float* hidden, float* y, bool accumulate);
  // Key preparation, value residual and WKV-7 as one op where the backend offers v7_wkv, else
  // as v7_key_prep, three binaries and wkv7 with κ in `kappa` ([B·T][C], scratch of the caller).
  // Throws INVALID_ARGUMENT unless v_first and v_gate are both null or both set with v_out.
  void v7_wkv(const rwkvrt_bk_v7_wkv_args& args, float* kappa);
  void gather_rows(const float* table, uint64_t C, const int32_t* ids, uint64_t M, float* out);
  void layer_norm(const float* x, float* y, uint64_t M, uint64_t C, const float* gamma,
                  const float* beta, float eps);
  void group_norm(const float* x, float* y, uint64_t M, uint64_t C, uint64_t groups,
                  const float* gamma, const float* beta, float eps);
  void token_shift(const rwkvrt_bk_token_shift_args& args);
  void mix(const rwkvrt_bk_mix_args& args);
  void unary(rwkvrt_bk_unary op, const float* x, float* y, uint64_t n);
  void binary(rwkvrt_bk_binary op, const float* a, const float* b, float* y, uint64_t M, uint64_t C,
              bool b_is_row);
  void wkv4(const rwkvrt_bk_wkv4_args& args);
  void wkv5(const rwkvrt_bk_wkv5_args& args);
  void wkv7(const rwkvrt_bk_wkv7_args& args);
  void v7_key_prep(const rwkvrt_bk_v7_key_args& args);
  void v7_bonus(const rwkvrt_bk_v7_bonus_args& args);

 private:
  void require_half_activations() const;  // throws UNSUPPORTED without the *_half entries

  std::shared_ptr<Device> device_;
  const rwkvrt_backend_v1* api_;
  rwkvrt_bk_stream* s_ = nullptr;
};

}  // namespace rwkvrt
