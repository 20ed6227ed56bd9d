// libFuzzer target: read_rwkvcpp on a whole file (header, tensor records, and the rebuilding of
// the official layout: v4/v5 value transforms, v6/v7 transposes, v7's split token-shift mixes).
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "fuzz_support.h"
#include "loaders/checkpoint_readers.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const rwkvrt::TensorSet set =
        rwkvrt::read_rwkvcpp(rwkvrt::fuzz::input_file().write(data, size));
    rwkvrt::fuzz::check_tensor_set(set, "read_rwkvcpp");
  } catch (const rwkvrt::Error&) {
    // The documented way to refuse input.
  }
  return 0;
}
