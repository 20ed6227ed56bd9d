// libFuzzer target: the whole load path, Model::load on a file of any format: read_checkpoint's
// format detection, the three readers, detect_config on whatever tensor set they accept (hostile
// names, shapes and dtypes), graph building and weight preparation on the backend.  A model that
// loads must also run: one token is fed through a session and its state saved and restored, since
// a configuration that validation accepts but the graph cannot run is a finding too.
//
// Zip inputs with wrong CRCs also run with the CRCs repaired (see fuzz_pth.cpp).  Memory must stay
// bounded by the input's size: run with -malloc_limit_mb, so that a header making the loader
// allocate far more than the file holds is reported with its input.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/error.h"
#include "fuzz_support.h"
#include "model/model.h"
#include "session/session.h"

namespace {

void load(const uint8_t* data, size_t size) {
  try {
    rwkvrt::LoadOptions options;
    options.n_threads = 1;
    const std::shared_ptr<const rwkvrt::Model> model =
        rwkvrt::Model::load(rwkvrt::fuzz::input_file().write(data, size), options);
    rwkvrt::Session session(model);
    std::vector<float> logits(model->config().n_vocab);
    const int32_t token = int32_t(model->config().n_vocab - 1);
    session.feed(&token, 1, rwkvrt::LogitsMode::Last, logits.data());
    const std::vector<uint8_t> blob = session.save_state();
    session.load_state(blob.data(), blob.size());
  } catch (const rwkvrt::Error&) {
    // The documented way to refuse input.
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  load(data, size);
  std::vector<uint8_t> repaired(data, data + size);
  if (rwkvrt::fuzz::repair_zip_crcs(repaired)) load(repaired.data(), repaired.size());
  return 0;
}
