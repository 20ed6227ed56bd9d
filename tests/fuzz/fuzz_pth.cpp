// libFuzzer target: read_pth on a whole file (zip container, torch.save layout, pickle, storages).
//
// Every input runs twice when it is a zip archive whose CRCs do not match its entries: as is (the
// checksum checks themselves are under test) and with the CRCs repaired, so mutations of the
// pickle and of the byteorder entry reach the code behind read_pth's CRC check.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/error.h"
#include "fuzz_support.h"
#include "loaders/checkpoint_readers.h"

namespace {

void read(const uint8_t* data, size_t size) {
  try {
    const rwkvrt::TensorSet set = rwkvrt::read_pth(rwkvrt::fuzz::input_file().write(data, size));
    rwkvrt::fuzz::check_tensor_set(set, "read_pth");
  } catch (const rwkvrt::Error&) {
    // The documented way to refuse input.
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  read(data, size);
  std::vector<uint8_t> repaired(data, data + size);
  if (rwkvrt::fuzz::repair_zip_crcs(repaired)) read(repaired.data(), repaired.size());
  return 0;
}
