#include "session/batch_decoder.h"

#include <algorithm>
#include <unordered_set>

#include "core/error.h"
#include "core/log.h"

namespace rwkvrt {

BatchDecoder::BatchDecoder(std::shared_ptr<const Model> model, size_t max_batch)
    : model_(std::move(model)), stream_(model_->device()) {
  graphs_enabled_ = graphs_allowed() && stream_.can_capture();
  workspace(std::max<size_t>(max_batch, 1));
}

Workspace& BatchDecoder::workspace(size_t n) {
  if (!ws_ || ws_->rows() < n) {
    size_t cap = 1;
    while (cap < n) cap *= 2;
    graphs_.clear();
    ws_.reset();
    ws_ = std::make_unique<Workspace>(model_->device(), model_->config(), cap);
    ws_->bases(cap);
    ws_->logits(cap);
  }
  return *ws_;
}

void BatchDecoder::step(Session* const* sessions, const int32_t* tokens, size_t n, float* logits) {
  if (n == 0) return;
  enqueue(sessions, tokens, n, logits != nullptr);
  if (logits)
    stream_.download(logits, ws_->logits(n), n * model_->config().n_vocab * sizeof(float));
  stream_.synchronize();
}

const float* BatchDecoder::step_logits(Session* const* sessions, const int32_t* tokens, size_t n) {
  if (n == 0) fail(RWKVRT_ERR_INVALID_ARGUMENT, "the batch is empty");
  const uint64_t row_bytes = model_->config().n_vocab * sizeof(float), bytes = n * row_bytes;
  if (logits_.bytes() < bytes) {
    // Before any state changes (an allocation failure leaves every session as it was).  Sized
    // for the workspace's capacity too, so a batch that grows within it allocates nothing.
    logits_ = HostBuffer();
    logits_ = HostBuffer(model_->device(), std::max<uint64_t>(bytes, ws_->rows() * row_bytes));
  }
  enqueue(sessions, tokens, n, true);
  stream_.download(logits_.f32(), ws_->logits(n), bytes);
  stream_.synchronize();
  return logits_.f32();
}

void BatchDecoder::enqueue(Session* const* sessions, const int32_t* tokens, size_t n,
                           bool with_logits) {
  if (!sessions || !tokens) fail(RWKVRT_ERR_INVALID_ARGUMENT, "sessions or tokens is null");
  std::unordered_set<const Session*> seen;
  for (size_t i = 0; i < n; ++i) {
    if (!sessions[i]) fail(RWKVRT_ERR_INVALID_ARGUMENT, "session {} of the batch is null", i);
    if (sessions[i]->model_ptr() != model_)
      fail(RWKVRT_ERR_INVALID_ARGUMENT, "session {} of the batch belongs to another model", i);
    if (!seen.insert(sessions[i]).second)
      fail(RWKVRT_ERR_INVALID_ARGUMENT, "session {} appears twice in the batch", i);
    sessions[i]->validate_tokens(&tokens[i], 1);
  }
  Workspace& ws = workspace(n);
  bases_.resize(n);
  for (size_t i = 0; i < n; ++i) bases_[i] = sessions[i]->state_address();
  void** bases = ws.bases(n);
  stream_.upload(bases, bases_.data(), n * sizeof(void*));
  stream_.upload(ws.ids(), tokens, n * sizeof(int32_t));
  const LogitRows rows = with_logits ? LogitRows::LastOfEachSequence : LogitRows::None;
  bool done = false;
  if (graphs_enabled_) {
    CapturedGraph& g = graphs_[{n, with_logits}];
    if (!g) {
      try {
        stream_.capture_begin();
        model_->forward(stream_, ws, n, 1, ws.ids(), bases, rows);
        g = stream_.capture_end();
      } catch (const Error& e) {
        log(RWKVRT_LOG_INFO, "graph capture unavailable for batches, decoding eagerly: {}",
            e.what());
        graphs_enabled_ = false;
      }
    }
    if (g) {
      stream_.launch(g);
      done = true;
    }
  }
  if (!done) model_->forward(stream_, ws, n, 1, ws.ids(), bases, rows);
}

}  // namespace rwkvrt
