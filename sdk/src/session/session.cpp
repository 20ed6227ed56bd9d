#include "session/session.h"

#include <algorithm>
#include <cstdlib>
#include <string>

#include "core/error.h"
#include "core/log.h"
#include "session/state_blob.h"

namespace rwkvrt {

bool graphs_allowed() {
  static const bool allowed = [] {
    const char* env = std::getenv("RWKVRT_NO_GRAPHS");
    return !env || !*env || std::string(env) == "0";
  }();
  return allowed;
}

Session::Session(std::shared_ptr<const Model> model)
    : model_(std::move(model)),
      stream_(model_->device()),
      state_(model_->device(), model_->state_floats() * sizeof(float)) {
  graphs_enabled_ = graphs_allowed() && stream_.can_capture();
  reset();
}

void Session::reset() {
  const std::vector<float>& init = initial_override_ ? *initial_override_ : model_->initial_state();
  stream_.upload(state_.get(), init.data(), init.size() * sizeof(float));
  stream_.synchronize();
}

void Session::set_initial_state(std::vector<float> state) {
  if (state.size() != model_->state_floats())
    fail(RWKVRT_ERR_STATE_MISMATCH, "initial state has {} floats, the model's state has {}",
         state.size(), model_->state_floats());
  initial_override_ = std::make_shared<const std::vector<float>>(std::move(state));
}

Workspace& Session::workspace(uint64_t rows) {
  // Grow in powers of two up to the pass limit, so short prompts stay cheap and long ones do not
  // reallocate per pass.
  if (!ws_ || ws_->rows() < rows) {
    uint64_t cap = 1;
    while (cap < rows) cap *= 2;
    cap = std::min<uint64_t>(cap, model_->max_rows_per_pass());
    for (CapturedGraph& g : step_graphs_) g = CapturedGraph();
    ws_.reset();
    ws_ = std::make_unique<Workspace>(model_->device(), model_->config(), std::max(cap, rows));
    // The pass reads this session's state address from device memory; it never changes.
    void* self = state_.get();
    stream_.upload(ws_->bases(1), &self, sizeof(void*));
    ws_->logits(1);
  }
  return *ws_;
}

bool Session::step_with_graph(int32_t token, LogitRows rows, float* logits) {
  Workspace& ws = workspace(1);
  CapturedGraph& g = step_graphs_[int(rows)];
  if (!g) {
    try {
      stream_.capture_begin();
      model_->forward(stream_, ws, 1, 1, ws.ids(), ws.bases(1), rows);
      g = stream_.capture_end();
    } catch (const Error& e) {
      // A backend that offers capture but cannot capture this pass: run eagerly from now on.
      log(RWKVRT_LOG_INFO, "graph capture unavailable, decoding eagerly: {}", e.what());
      graphs_enabled_ = false;
      return false;
    }
  }
  stream_.upload(ws.ids(), &token, sizeof(int32_t));
  stream_.launch(g);
  if (rows == LogitRows::LastOfEachSequence)
    stream_.download(logits, ws.logits(1), model_->config().n_vocab * sizeof(float));
  stream_.synchronize();
  return true;
}

void Session::validate_tokens(const int32_t* tokens, size_t n) const {
  const uint32_t V = model_->config().n_vocab;
  for (size_t i = 0; i < n; ++i)
    if (tokens[i] < 0 || uint32_t(tokens[i]) >= V)
      fail(RWKVRT_ERR_INVALID_ARGUMENT, "token {} at position {} is outside the vocabulary [0, {})",
           tokens[i], i, V);
}

void Session::feed(const int32_t* tokens, size_t n, LogitsMode mode, float* logits) {
  if (n == 0) fail(RWKVRT_ERR_INVALID_ARGUMENT, "no tokens to feed");
  if (!tokens) fail(RWKVRT_ERR_INVALID_ARGUMENT, "tokens is null");
  if (mode != LogitsMode::None && !logits)
    fail(RWKVRT_ERR_INVALID_ARGUMENT, "logits buffer is null");
  validate_tokens(tokens, n);
  if (n == 1 && graphs_enabled_ &&
      step_with_graph(tokens[0],
                      mode == LogitsMode::None ? LogitRows::None : LogitRows::LastOfEachSequence,
                      logits))
    return;
  const uint64_t V = model_->config().n_vocab;
  const uint64_t max_rows = model_->max_rows_per_pass();
  Workspace& ws = workspace(std::min<uint64_t>(n, max_rows));
  void** bases = ws.bases(1);
  for (size_t done = 0; done < n;) {
    const uint64_t T = std::min<uint64_t>(n - done, ws.rows());
    const bool last_pass = done + T == n;
    LogitRows rows = LogitRows::None;
    if (mode == LogitsMode::All) rows = LogitRows::All;
    if (mode == LogitsMode::Last && last_pass) rows = LogitRows::LastOfEachSequence;
    stream_.upload(ws.ids(), tokens + done, T * sizeof(int32_t));
    model_->forward(stream_, ws, 1, T, ws.ids(), bases, rows);
    if (rows == LogitRows::All)
      stream_.download(logits + done * V, ws.logits(T), T * V * sizeof(float));
    else if (rows == LogitRows::LastOfEachSequence)
      stream_.download(logits, ws.logits(1), V * sizeof(float));
    done += T;
  }
  stream_.synchronize();
}

void Session::export_state(float* dst) {
  stream_.download(dst, state_.get(), model_->state_floats() * sizeof(float));
}

void Session::import_state(const float* src) {
  stream_.upload(state_.get(), src, model_->state_floats() * sizeof(float));
  stream_.synchronize();
}

std::vector<uint8_t> Session::save_state() {
  std::vector<float> state(model_->state_floats());
  export_state(state.data());
  std::vector<uint8_t> blob(state_blob_size(*model_));
  write_state_blob(*model_, state.data(), blob.data());
  return blob;
}

void Session::load_state(const void* blob, size_t size) {
  const std::vector<float> state = read_state_blob(*model_, blob, size);
  import_state(state.data());
}

}  // namespace rwkvrt
