// libFuzzer target: the state blob reader, against the tiny RWKV-7 model of tiny_v7_shape() (its
// blobs from the seed generator pass every check).  Each input is tried twice:
//   * as is, with read_state_blob (the checksum check itself is under test);
//   * with its last 4 bytes replaced by the CRC-32 of the bytes before them, through
//     Session::load_state, so that mutated headers get past the checksum and reach the dimension,
//     fingerprint and size checks behind it, and accepted states are imported.
// The model needs a backend plugin: RWKVRT_BACKEND_PATH, else the build tree's lib/ beside bin/.
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "core/error.h"
#include "fuzz_support.h"
#include "model/model.h"
#include "model/synthetic_model.h"
#include "session/session.h"
#include "session/state_blob.h"

namespace {

std::shared_ptr<const rwkvrt::Model> g_model;
std::unique_ptr<rwkvrt::Session> g_session;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  try {
    rwkvrt::LoadOptions options;
    options.n_threads = 1;
    g_model = rwkvrt::Model::from_tensors(rwkvrt::make_synthetic_v7(rwkvrt::fuzz::tiny_v7_shape()),
                                          options);
    g_session = std::make_unique<rwkvrt::Session>(g_model);
  } catch (const rwkvrt::Error& e) {
    std::fprintf(stderr, "rwkvrt fuzz harness: cannot build the tiny model: %s\n", e.what());
    std::exit(1);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const std::vector<float> state = rwkvrt::read_state_blob(*g_model, data, size);
    if (state.size() != g_model->state_floats())
      rwkvrt::fuzz::contract_violation("read_state_blob", "state of the wrong size accepted");
  } catch (const rwkvrt::Error&) {
    // The documented way to refuse input.
  }

  if (size < 4) return 0;
  std::vector<uint8_t> fixed(data, data + size);
  const size_t body = size - 4;
  const uLong crc = crc32_z(crc32_z(0, nullptr, 0), fixed.data(), body);
  for (int i = 0; i < 4; ++i) fixed[body + size_t(i)] = uint8_t(crc >> (8 * i));
  try {
    g_session->load_state(fixed.data(), fixed.size());
  } catch (const rwkvrt::Error&) {
    // The documented way to refuse input.
  }
  return 0;
}
