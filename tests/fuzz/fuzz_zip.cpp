// libFuzzer target: the zip archive reader alone.  ZipArchive reads a MappedFile, which only comes
// from a path, so the input goes through the in-memory file.  Every entry is then read with CRC
// verification, which read_pth never does for storages and never does at all for deflated entries
// other than the pickle: this target is where inflation and its size limits are exercised.  As in
// the pth target, archives with wrong CRCs also run once with the CRCs repaired.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/mapped_file.h"
#include "fuzz_support.h"
#include "loaders/zip_archive.h"

namespace {

void read(const uint8_t* data, size_t size) {
  try {
    const rwkvrt::ZipArchive zip(
        rwkvrt::MappedFile::open(rwkvrt::fuzz::input_file().write(data, size)));
    for (const rwkvrt::ZipEntry& e : zip.entries()) {
      if (zip.find(e.name) != &e)
        rwkvrt::fuzz::contract_violation("ZipArchive", "find() misses entry '" + e.name + "'");
      if (e.data_offset > size || e.compressed_size > size - e.data_offset)
        rwkvrt::fuzz::contract_violation("ZipArchive", "entry '" + e.name + "' lies past the file");
      try {
        const rwkvrt::ZipBytes bytes = zip.read(e, /*verify_crc=*/true);
        if (bytes.size != e.uncompressed_size || (bytes.size > 0 && !bytes.data))
          rwkvrt::fuzz::contract_violation("ZipArchive::read", "entry '" + e.name + "' size");
      } catch (const rwkvrt::Error&) {
        // One unreadable entry does not stop the others from being tried.
      }
    }
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
