#include "session/prefix_cache.h"

#include <algorithm>

namespace rwkvrt {

uint64_t PrefixCache::Entry::bytes() const {
  return tokens.size() * sizeof(int32_t) + (state.size() + logits.size()) * sizeof(float) +
         sizeof(Entry);
}

PrefixCache::PrefixCache(std::shared_ptr<const Model> model, uint64_t max_bytes)
    : model_(std::move(model)), max_bytes_(max_bytes) {}

std::shared_ptr<const PrefixCache::Entry> PrefixCache::lookup(
    const std::shared_ptr<const std::vector<float>>& origin, const std::vector<int32_t>& tokens,
    size_t min_length) {
  std::lock_guard lock(mutex_);
  auto best = entries_.end();
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    const Entry& e = **it;
    if (e.origin != origin || e.tokens.size() <= min_length || e.tokens.size() > tokens.size())
      continue;
    if (best != entries_.end() && (*best)->tokens.size() >= e.tokens.size()) continue;
    if (std::equal(e.tokens.begin(), e.tokens.end(), tokens.begin())) best = it;
  }
  if (best == entries_.end()) return nullptr;
  entries_.splice(entries_.begin(), entries_, best);
  return entries_.front();
}

void PrefixCache::insert(std::shared_ptr<const Entry> entry) {
  std::lock_guard lock(mutex_);
  for (auto it = entries_.begin(); it != entries_.end(); ++it)
    if ((*it)->origin == entry->origin && (*it)->tokens == entry->tokens) {
      bytes_ -= (*it)->bytes();
      entries_.erase(it);
      break;
    }
  if (entry->bytes() > max_bytes_) return;
  bytes_ += entry->bytes();
  entries_.push_front(std::move(entry));
  while (bytes_ > max_bytes_) {
    bytes_ -= entries_.back()->bytes();
    entries_.pop_back();
  }
}

size_t PrefixCache::size() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

}  // namespace rwkvrt
