// Batched decode: one forward pass advances many sessions of the same model by one token each.
// The states stay where each session keeps them (the pass addresses them through a device array
// of state addresses), so sessions join and leave a batch between steps at no cost: the basis of
// continuous batching in the daemon.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "session/session.h"

namespace rwkvrt {

class BatchDecoder {
 public:
  // A decoder for batches of up to `max_batch` sessions of `model` (scratch grows to fit).
  explicit BatchDecoder(std::shared_ptr<const Model> model, size_t max_batch = 1);

  // Advances sessions[i] by tokens[i] for i < n and writes their logits as rows of `logits`
  // ([n][V] floats; null to skip the head).  Equal to stepping each session alone, up to fp32
  // rounding.  Every session must belong to this decoder's model, appear once, and not be used
  // by another thread during the call.  Validates everything before any state changes.
  void step(Session* const* sessions, const int32_t* tokens, size_t n, float* logits);

  // As step, with the logits downloaded into the decoder's own host buffer (page-locked where the
  // backend offers it, so a GPU copies them several times faster than into ordinary memory).
  // Returns its [n][V] rows, valid until the next call on this decoder.
  const float* step_logits(Session* const* sessions, const int32_t* tokens, size_t n);

 private:
  Workspace& workspace(size_t n);
  // Checks the call and enqueues the forward pass (no download, no synchronisation).
  void enqueue(Session* const* sessions, const int32_t* tokens, size_t n, bool with_logits);

  std::shared_ptr<const Model> model_;
  Stream stream_;
  std::unique_ptr<Workspace> ws_;
  std::vector<void*> bases_;
  HostBuffer logits_;  // step_logits' rows, grown to the largest batch
  // Captured passes keyed by (batch size, with logits); valid while ws_ lives.
  std::map<std::pair<size_t, bool>, CapturedGraph> graphs_;
  bool graphs_enabled_ = true;
};

}  // namespace rwkvrt
