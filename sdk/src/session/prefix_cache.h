// States after prompts, kept so that a prompt starting with a known token prefix resumes from the
// state after that prefix instead of feeding it again (chat system prompts, few-shot preambles).
// Shared by the sessions of one model; thread-safe.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <vector>

#include "model/model.h"

namespace rwkvrt {

class PrefixCache {
 public:
  struct Entry {
    // The state an entry starts from: null for the model's initial state, else the session's
    // initial state override (state tuning); entries of different origins never match.
    std::shared_ptr<const std::vector<float>> origin;
    std::vector<int32_t> tokens;  // every token fed since that initial state
    std::vector<float> state;     // canonical state after them
    std::vector<float> logits;    // logits after the last of them
    uint64_t bytes() const;
  };

  // Keeps at most max_bytes of entries (least recently used go first).
  PrefixCache(std::shared_ptr<const Model> model, uint64_t max_bytes);

  const std::shared_ptr<const Model>& model() const { return model_; }

  // The entry with the longest token list that is a prefix of `tokens`, from `origin`, and longer
  // than `min_length` tokens; null if none.  Marks it recently used.
  std::shared_ptr<const Entry> lookup(const std::shared_ptr<const std::vector<float>>& origin,
                                      const std::vector<int32_t>& tokens, size_t min_length);
  // Adds (or refreshes) an entry.  An entry larger than the whole budget is not kept.
  void insert(std::shared_ptr<const Entry> entry);

  size_t size() const;

 private:
  std::shared_ptr<const Model> model_;
  uint64_t max_bytes_;
  mutable std::mutex mutex_;
  std::list<std::shared_ptr<const Entry>> entries_;  // most recently used first
  uint64_t bytes_ = 0;
};

}  // namespace rwkvrt
