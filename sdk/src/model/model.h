// A loaded model: its configuration, its weights prepared on one backend device, the graph that
// advances a batch of states by a sequence of tokens, and what sessions need to know about the
// state (initial values, canonical layout, fingerprint).  Immutable after load; shared by threads.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/device.h"
#include "loaders/tensor_set.h"
#include "model/model_config.h"

namespace rwkvrt {

struct LoadOptions {
  std::string backend;          // empty or "auto": best usable backend
  int32_t device = 0;
  int32_t n_threads = 0;        // 0: backend default
  rwkvrt_bk_dtype weight_dtype = RWKVRT_BK_SAME;  // matrices: keep the file's precision
  // RWKVRT_BK_MATMUL_ROUNDED_ACTIVATIONS lets a backend round large matmuls' activations to the
  // f16/bf16 weight type (the public RWKVRT_MATMUL_FAST).
  rwkvrt_bk_matmul_precision matmul_precision = RWKVRT_BK_MATMUL_EXACT;
  float group_norm_eps = 0.0f;  // 0: the file format's default
  // Progress in [0,1] with a stage name; returns false to cancel.
  std::function<bool(float, const char*)> progress;
};

// One tensor of the canonical state.
struct StateTensor {
  std::string name;
  uint64_t offset = 0;  // floats
  std::vector<uint64_t> shape;
  uint64_t numel() const;
};

class Workspace;
class Graph;

// Rows of logits the head computes after a forward pass.
enum class LogitRows { None, LastOfEachSequence, All };

class Model {
 public:
  // Reads a checkpoint (any supported format) and prepares it.  Throws Error.
  static std::shared_ptr<Model> load(const std::string& path, const LoadOptions& options);
  // Prepares an in-memory official-layout tensor set (used by the benchmark's random models).
  static std::shared_ptr<Model> from_tensors(const TensorSet& tensors, const LoadOptions& options);
  ~Model();

  const ModelConfig& config() const { return config_; }
  const std::shared_ptr<Device>& device() const { return device_; }
  const std::string& file_format() const { return file_format_; }
  DType file_dtype() const { return config_.matrix_dtype; }
  rwkvrt_bk_dtype weight_dtype() const { return weight_dtype_; }
  // The type in which a pass of `rows` rows hands the matmuls their inputs (Graph).
  rwkvrt_bk_dtype activation_dtype(uint64_t rows) const;
  uint64_t weight_bytes() const { return weight_bytes_; }
  // Bytes of prepared weights one decode step streams (every matrix once, plus one embedding row).
  uint64_t bytes_per_token() const { return bytes_per_token_; }

  // Canonical fp32 state: initial values (zeros, v4's pp = -1e30, or time_state) and layout.
  const std::vector<float>& initial_state() const { return initial_state_; }
  const std::vector<StateTensor>& state_layout() const { return state_layout_; }
  uint64_t state_floats() const { return config_.state_floats(); }
  // Identifies the weights: a hash of the configuration, every tensor's name and shape, and
  // samples of the tensor data.  State blobs carry it, so a state is never loaded into another
  // model.
  uint64_t fingerprint() const { return fingerprint_; }
  // The checkpoint's string metadata (safetensors __metadata__, "format", ...).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // The canonical state a state-tuning file describes: its blocks.<i>.att.time_state tensors
  // (transposed to the state's orientation), zero token shifts.  Throws Error(UNSUPPORTED) for
  // v4 and v7, Error(FORMAT) for a missing tensor, Error(STATE_MISMATCH) for a wrong size.
  std::vector<float> state_from_time_state(const TensorSet& tensors) const;

  // Advances B sequences of T tokens each.  `ids` is a device int32 [B*T] array, `bases` a device
  // array of B state-block addresses.  Writes logits rows (fp32 [rows][V]) to ws.logits().
  void forward(Stream& stream, Workspace& ws, uint64_t B, uint64_t T, const int32_t* ids,
               void* const* bases, LogitRows rows) const;

  // Largest number of rows (B*T) one forward pass handles; callers split longer sequences.
  uint64_t max_rows_per_pass() const { return max_rows_; }

 private:
  Model() = default;
  void prepare(const TensorSet& tensors, const LoadOptions& options);
  // Writes the time_state tensors of `tensors` into the wkv blocks of the canonical `state`.
  void copy_time_state(const TensorSet& tensors, std::vector<float>& state) const;

  ModelConfig config_;
  std::shared_ptr<Device> device_;
  std::string file_format_;
  rwkvrt_bk_dtype weight_dtype_ = RWKVRT_BK_F32;
  uint64_t weight_bytes_ = 0;
  uint64_t bytes_per_token_ = 0;
  std::vector<float> initial_state_;
  std::vector<StateTensor> state_layout_;
  uint64_t fingerprint_ = 0;
  std::map<std::string, std::string> metadata_;
  uint64_t max_rows_ = 256;
  std::unique_ptr<Graph> graph_;

  friend class Workspace;
};

}  // namespace rwkvrt
