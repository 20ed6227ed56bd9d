// A session: one recurrent state of a model, the stream its work runs on, and the scratch memory
// to advance it.  Used by one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/device.h"
#include "model/graph.h"
#include "model/model.h"

namespace rwkvrt {

enum class LogitsMode { None, Last, All };

class Session {
 public:
  explicit Session(std::shared_ptr<const Model> model);

  const Model& model() const { return *model_; }
  const std::shared_ptr<const Model>& model_ptr() const { return model_; }

  // Returns to the initial state: the model's, or the one given to set_initial_state().
  void reset();
  // Makes `state` (canonical layout, state_floats() values) this session's initial state, for this
  // and every later reset().  Does not reset.  Throws Error(STATE_MISMATCH) for a wrong size.
  void set_initial_state(std::vector<float> state);
  // The initial state in use (shared, immutable), or null for the model's.
  const std::shared_ptr<const std::vector<float>>& initial_state_override() const {
    return initial_override_;
  }
  void set_initial_state_override(std::shared_ptr<const std::vector<float>> state) {
    initial_override_ = std::move(state);
  }

  // Feeds `n` tokens (sequence mode, split into passes of at most max_rows_per_pass).  `logits`
  // receives V floats (Last) or n·V floats (All) and may be null for None.  Validates every token
  // before any work, so a bad id leaves the state untouched (Error INVALID_ARGUMENT).
  void feed(const int32_t* tokens, size_t n, LogitsMode mode, float* logits);

  // Canonical fp32 state (Model::state_layout()).
  void export_state(float* dst);
  void import_state(const float* src);

  // Serialised state blob (session/state_blob.h).
  std::vector<uint8_t> save_state();
  void load_state(const void* blob, size_t size);

  // Device address of this session's state block (for batched passes over several sessions).
  void* state_address() const { return state_.get(); }
  Stream& stream() { return stream_; }

  // Throws Error(INVALID_ARGUMENT) unless every token is in [0, n_vocab).
  void validate_tokens(const int32_t* tokens, size_t n) const;

 private:
  Workspace& workspace(uint64_t rows);
  // One token through a captured graph (recorded on first use), when the backend can capture.
  bool step_with_graph(int32_t token, LogitRows rows, float* logits);

  std::shared_ptr<const Model> model_;
  std::shared_ptr<const std::vector<float>> initial_override_;
  Stream stream_;
  DeviceBuffer state_;
  std::unique_ptr<Workspace> ws_;
  // Single-token decode graphs, one per LogitRows value; valid while ws_ lives.
  CapturedGraph step_graphs_[3];
  bool graphs_enabled_ = true;
};

// Whether graph capture is allowed (it is unless RWKVRT_NO_GRAPHS is set to a non-empty value
// other than "0"); read once.
bool graphs_allowed();

}  // namespace rwkvrt
