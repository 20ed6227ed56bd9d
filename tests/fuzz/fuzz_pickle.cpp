// libFuzzer target: unpickle_tensor_dict straight from memory (the data.pkl of a .pth), without
// the zip layer around it.  libFuzzer's buffer is a heap block of exactly `size` bytes, so ASan
// reports any read past the pickle's end.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "fuzz_support.h"
#include "loaders/pickle_reader.h"

namespace {

// The result contract of pickle_reader.h: unique names, known element types, shape and stride of
// equal length with every entry >= 0.
void check(const std::vector<rwkvrt::PickledTensor>& tensors) {
  std::set<std::string> names;
  for (const rwkvrt::PickledTensor& t : tensors) {
    const char* where = "unpickle_tensor_dict";
    if (!names.insert(t.name).second) rwkvrt::fuzz::contract_violation(where, "duplicate name");
    if (!t.dtype || !t.storage.type) rwkvrt::fuzz::contract_violation(where, "null element type");
    if (t.shape.size() != t.stride.size())
      rwkvrt::fuzz::contract_violation(where, "shape and stride lengths differ");
    for (size_t i = 0; i < t.shape.size(); ++i)
      if (t.shape[i] < 0 || t.stride[i] < 0)
        rwkvrt::fuzz::contract_violation(where, "negative size or stride");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    check(rwkvrt::unpickle_tensor_dict(data, size));
  } catch (const rwkvrt::Error&) {
    // The documented way to refuse input.
  }
  return 0;
}
