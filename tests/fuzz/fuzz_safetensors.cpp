// libFuzzer target: read_safetensors on a whole file (length prefix, JSON header, data block).
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "fuzz_support.h"
#include "loaders/checkpoint_readers.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const rwkvrt::TensorSet set =
        rwkvrt::read_safetensors(rwkvrt::fuzz::input_file().write(data, size));
    rwkvrt::fuzz::check_tensor_set(set, "read_safetensors");
  } catch (const rwkvrt::Error&) {
    // The documented way to refuse input.
  }
  return 0;
}
