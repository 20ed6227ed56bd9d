// A read-only zip archive over a memory-mapped file, as PyTorch's torch.save writes it: stored
// (uncompressed) entries whose bytes can be used in place, zip64 for archives past 4 GiB.
// Constructing a ZipArchive validates the whole directory structure (end-of-central-directory
// record, zip64 locator and record, every central directory entry and every local header), so no
// later access can read outside the file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/mapped_file.h"

namespace rwkvrt {

// One file in the archive, as its central directory entry describes it, with the data position
// taken from its local header.
struct ZipEntry {
  std::string name;
  uint16_t method = 0;  // 0 stored, 8 deflate (the only two read() accepts)
  uint16_t flags = 0;   // general purpose bit flags
  uint32_t crc32 = 0;
  uint64_t compressed_size = 0;    // bytes at data_offset
  uint64_t uncompressed_size = 0;  // bytes read() returns
  uint64_t local_header_offset = 0;
  uint64_t data_offset = 0;  // first byte of the (compressed) data, inside the file
};

// The bytes of one entry, and what keeps them alive: the mapping for stored entries, an owned
// buffer for inflated ones.  `data` stays valid as long as `owner` (or a copy of it) lives.
struct ZipBytes {
  const uint8_t* data = nullptr;
  size_t size = 0;
  std::shared_ptr<const void> owner;
};

class ZipArchive {
 public:
  // Parses and validates the archive in `file`.  Throws Error(FORMAT) with a message naming the
  // file and the problem (truncation, an offset or size outside the file, a multi-disk or
  // encrypted archive, names that differ between local and central headers, duplicate names).
  // Compression methods are not checked here: an archive may hold entries nobody reads.
  explicit ZipArchive(std::shared_ptr<const MappedFile> file);

  const std::string& path() const { return file_->path(); }
  // Entries in central directory order.
  const std::vector<ZipEntry>& entries() const { return entries_; }
  // The entry named exactly `name`, or nullptr.
  const ZipEntry* find(std::string_view name) const;

  // The uncompressed bytes of `entry` (which must come from entries()).  Stored entries point into
  // the mapping; deflated ones are inflated into a new buffer and always checked against their
  // CRC-32.  Stored entries are checked only when `verify_crc` is set, because checking reads every
  // page of what may be gigabytes the caller wants to map lazily.  Throws Error(FORMAT) naming the
  // file and the entry for another compression method, corrupt deflate data or a CRC mismatch.
  ZipBytes read(const ZipEntry& entry, bool verify_crc) const;

 private:
  void parse();
  void read_local_header(ZipEntry& entry, uint64_t central_directory_offset) const;

  std::shared_ptr<const MappedFile> file_;
  std::vector<ZipEntry> entries_;
  std::map<std::string, size_t, std::less<>> index_;  // name -> position in entries_
};

}  // namespace rwkvrt
