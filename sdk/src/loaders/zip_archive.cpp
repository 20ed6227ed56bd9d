// Zip structures (PKWARE APPNOTE 6.3): the archive ends with an end-of-central-directory record
// (EOCD), preceded for zip64 archives by a zip64 EOCD record and a locator pointing at it.  The
// EOCD gives the position of the central directory, one entry per file, each pointing at the file's
// local header, which is followed by the data.  Every number is little-endian.
#include "loaders/zip_archive.h"

#include <zlib.h>

#include <algorithm>
#include <climits>
#include <utility>

#include "core/error.h"

namespace rwkvrt {
namespace {

constexpr uint32_t kEocdSignature = 0x06054b50;
constexpr uint64_t kEocdSize = 22;
constexpr uint64_t kMaxCommentSize = 0xffff;
constexpr uint32_t kZip64LocatorSignature = 0x07064b50;
constexpr uint64_t kZip64LocatorSize = 20;
constexpr uint32_t kZip64EocdSignature = 0x06064b50;
constexpr uint64_t kZip64EocdSize = 56;
constexpr uint32_t kCentralSignature = 0x02014b50;
constexpr uint64_t kCentralSize = 46;
constexpr uint32_t kLocalSignature = 0x04034b50;
constexpr uint64_t kLocalSize = 30;
constexpr uint16_t kZip64ExtraId = 0x0001;
// A 32-bit (or 16-bit) field holding this value has its real value in a zip64 record or field.
constexpr uint32_t kZip64Marker32 = 0xffffffff;
constexpr uint16_t kZip64Marker16 = 0xffff;

constexpr uint16_t kFlagEncrypted = 0x0001;
constexpr uint16_t kFlagDataDescriptor = 0x0008;  // local header sizes and CRC are zero
constexpr uint16_t kFlagStrongEncryption = 0x0040;

constexpr uint16_t kMethodStored = 0;
constexpr uint16_t kMethodDeflate = 8;
// Deflate cannot expand data by more than this factor (258-byte matches coded in 2 bits, rounded
// up): a larger declared size is a lie, refused before allocating for it.
constexpr uint64_t kMaxDeflateRatio = 1032;

uint16_t le16(const uint8_t* p) {
  return uint16_t(p[0] | p[1] << 8);
}
uint32_t le32(const uint8_t* p) {
  return uint32_t(le16(p)) | uint32_t(le16(p + 2)) << 16;
}
uint64_t le64(const uint8_t* p) {
  return uint64_t(le32(p)) | uint64_t(le32(p + 4)) << 32;
}

// Whether [offset, offset + length) lies within [0, limit), without overflowing.
bool range_fits(uint64_t offset, uint64_t length, uint64_t limit) {
  return offset <= limit && length <= limit - offset;
}

template <typename... Args>
[[noreturn]] void zip_fail(const std::string& path, fmt::format_string<Args...> format,
                           Args&&... args) {
  fail(RWKVRT_ERR_FORMAT, "'{}': {}", path, fmt::format(format, std::forward<Args>(args)...));
}

const char* method_name(uint16_t method) {
  switch (method) {
    case 1:
      return "shrink";
    case 6:
      return "implode";
    case 9:
      return "deflate64";
    case 12:
      return "bzip2";
    case 14:
      return "LZMA";
    case 93:
      return "zstd";
    case 95:
      return "xz";
    case 99:
      return "AES encryption";
    default:
      return "unknown";
  }
}

// The fields a zip64 extra field (0x0001) may replace, each only when its header field holds the
// zip64 marker, always in this order.  Pointers to fields that cannot be replaced are null.
struct Zip64Targets {
  uint64_t* uncompressed_size;
  uint64_t* compressed_size;
  uint64_t* local_header_offset;
};

// Walks the extra fields in [extra, extra + length) and applies the zip64 field to `targets`.
// Every field must fit in the block.  Throws naming `where` (the header being read).
void apply_zip64_extra(const std::string& path, const std::string& where, const uint8_t* extra,
                       uint64_t length, Zip64Targets targets) {
  bool replaced[3] = {false, false, false};
  uint64_t* fields[3] = {targets.uncompressed_size, targets.compressed_size,
                         targets.local_header_offset};
  uint64_t pos = 0;
  while (pos < length) {
    if (length - pos < 4) zip_fail(path, "{}: extra field block ends in a partial field", where);
    const uint16_t id = le16(extra + pos);
    const uint16_t size = le16(extra + pos + 2);
    pos += 4;
    if (size > length - pos) {
      zip_fail(path, "{}: extra field 0x{:04x} ({} bytes) runs past the end of its block", where,
               id, size);
    }
    if (id == kZip64ExtraId) {
      uint64_t used = 0;
      for (int i = 0; i < 3; ++i) {
        if (!fields[i] || *fields[i] != kZip64Marker32) continue;
        if (size - used < 8) zip_fail(path, "{}: zip64 extra field is too short", where);
        *fields[i] = le64(extra + pos + used);
        replaced[i] = true;
        used += 8;
      }
    }
    pos += size;
  }
  for (int i = 0; i < 3; ++i) {
    if (fields[i] && *fields[i] == kZip64Marker32 && !replaced[i]) {
      zip_fail(path, "{}: a size or offset needs a zip64 extra field, and there is none", where);
    }
  }
}

}  // namespace

ZipArchive::ZipArchive(std::shared_ptr<const MappedFile> file) : file_(std::move(file)) {
  parse();
}

const ZipEntry* ZipArchive::find(std::string_view name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

void ZipArchive::parse() {
  const std::string& file_path = path();
  const uint8_t* data = file_->data();
  const uint64_t size = file_->size();
  if (size == 0) zip_fail(file_path, "the file is empty, not a zip archive");

  // The EOCD is the last 22 bytes plus a comment of up to 64 KiB; its comment length must reach
  // exactly the end of the file, which rules out signatures that happen to occur in the comment.
  uint64_t eocd = UINT64_MAX;
  if (size >= kEocdSize) {
    const uint64_t lowest =
        size - kEocdSize > kMaxCommentSize ? size - kEocdSize - kMaxCommentSize : 0;
    for (uint64_t pos = size - kEocdSize;; --pos) {
      if (le32(data + pos) == kEocdSignature && pos + kEocdSize + le16(data + pos + 20) == size) {
        eocd = pos;
        break;
      }
      if (pos == lowest) break;
    }
  }
  if (eocd == UINT64_MAX) {
    zip_fail(file_path,
             "no end-of-central-directory record in the last {} bytes of the {}-byte file: not a "
             "zip archive, or the archive is truncated",
             std::min(size, kEocdSize + kMaxCommentSize), size);
  }

  uint64_t disk = le16(data + eocd + 4);
  uint64_t directory_disk = le16(data + eocd + 6);
  uint64_t entries_on_disk = le16(data + eocd + 8);
  uint64_t entry_count = le16(data + eocd + 10);
  uint64_t directory_size = le32(data + eocd + 12);
  uint64_t directory_offset = le32(data + eocd + 16);
  // Where the central directory must end: the first record that follows it.
  uint64_t directory_limit = eocd;

  if (eocd >= kZip64LocatorSize &&
      le32(data + eocd - kZip64LocatorSize) == kZip64LocatorSignature) {
    const uint8_t* locator = data + eocd - kZip64LocatorSize;
    const uint64_t record = le64(locator + 8);
    if (le32(locator + 4) != 0 || le32(locator + 16) > 1) {
      zip_fail(file_path, "multi-disk (spanned) zip archives are not supported");
    }
    if (!range_fits(record, kZip64EocdSize, eocd - kZip64LocatorSize)) {
      zip_fail(file_path,
               "archive truncated: zip64 end-of-central-directory record at offset {} lies past "
               "its locator at offset {}",
               record, eocd - kZip64LocatorSize);
    }
    const uint8_t* r = data + record;
    if (le32(r) != kZip64EocdSignature) {
      zip_fail(file_path, "no zip64 end-of-central-directory record at offset {}", record);
    }
    disk = le32(r + 16);
    directory_disk = le32(r + 20);
    entries_on_disk = le64(r + 24);
    entry_count = le64(r + 32);
    directory_size = le64(r + 40);
    directory_offset = le64(r + 48);
    directory_limit = record;
  } else if (entry_count == kZip64Marker16 || directory_size == kZip64Marker32 ||
             directory_offset == kZip64Marker32) {
    zip_fail(file_path,
             "the end-of-central-directory record defers to a zip64 record, but there is no "
             "zip64 locator before it");
  }
  if (disk != 0 || directory_disk != 0 || entries_on_disk != entry_count) {
    zip_fail(file_path, "multi-disk (spanned) zip archives are not supported");
  }
  if (!range_fits(directory_offset, directory_size, size)) {
    zip_fail(file_path,
             "archive truncated: central directory at offset {} ({} bytes) extends past the end "
             "of the {}-byte file",
             directory_offset, directory_size, size);
  }
  if (directory_offset + directory_size > directory_limit) {
    zip_fail(file_path,
             "archive damaged: central directory at offset {} ({} bytes) overlaps the "
             "end-of-central-directory records at offset {}",
             directory_offset, directory_size, directory_limit);
  }
  if (entry_count > directory_size / kCentralSize) {
    zip_fail(file_path, "central directory of {} bytes cannot hold the {} entries it claims",
             directory_size, entry_count);
  }

  const uint64_t directory_end = directory_offset + directory_size;
  entries_.reserve(entry_count);
  uint64_t pos = directory_offset;
  for (uint64_t i = 0; i < entry_count; ++i) {
    const std::string where = fmt::format("central directory entry {} at offset {}", i, pos);
    if (!range_fits(pos, kCentralSize, directory_end)) {
      zip_fail(file_path, "{} runs past the end of the central directory", where);
    }
    const uint8_t* h = data + pos;
    if (le32(h) != kCentralSignature) zip_fail(file_path, "{} has no entry signature", where);
    const uint64_t name_size = le16(h + 28);
    const uint64_t extra_size = le16(h + 30);
    const uint64_t comment_size = le16(h + 32);
    if (!range_fits(pos + kCentralSize, name_size + extra_size + comment_size, directory_end)) {
      zip_fail(file_path, "{}: name, extra field and comment run past the central directory",
               where);
    }
    ZipEntry e;
    e.name.assign(reinterpret_cast<const char*>(h + kCentralSize), name_size);
    e.flags = le16(h + 8);
    e.method = le16(h + 10);
    e.crc32 = le32(h + 16);
    e.compressed_size = le32(h + 20);
    e.uncompressed_size = le32(h + 24);
    e.local_header_offset = le32(h + 42);
    const std::string entry_where = fmt::format("entry {:?}", e.name);
    apply_zip64_extra(file_path, entry_where, h + kCentralSize + name_size, extra_size,
                      {&e.uncompressed_size, &e.compressed_size, &e.local_header_offset});
    if (le16(h + 34) != 0) zip_fail(file_path, "{} starts on another disk", entry_where);
    if (e.flags & (kFlagEncrypted | kFlagStrongEncryption)) {
      zip_fail(file_path, "{} is encrypted", entry_where);
    }
    read_local_header(e, directory_offset);
    if (!index_.emplace(e.name, entries_.size()).second) {
      zip_fail(file_path, "{} appears twice in the central directory", entry_where);
    }
    entries_.push_back(std::move(e));
    pos += kCentralSize + name_size + extra_size + comment_size;
  }
  if (pos != directory_end) {
    zip_fail(file_path, "central directory has {} bytes after its {} entries", directory_end - pos,
             entry_count);
  }
}

// Fills entry.data_offset from the local header, which must lie with its data before the central
// directory, carry the same name and method, and (unless sizes are deferred to a data descriptor)
// the same sizes and CRC.  Local extra fields differ from the central ones (PyTorch pads them to
// align data to 64 bytes), so the data start is computed from the local header's own lengths.
void ZipArchive::read_local_header(ZipEntry& entry, uint64_t central_directory_offset) const {
  const std::string& file_path = path();
  const std::string where = fmt::format("entry {:?}", entry.name);
  const uint64_t offset = entry.local_header_offset;
  if (!range_fits(offset, kLocalSize, central_directory_offset)) {
    zip_fail(file_path,
             "{}: local header at offset {} lies past the start of the central directory at "
             "offset {}",
             where, offset, central_directory_offset);
  }
  const uint8_t* h = file_->data() + offset;
  if (le32(h) != kLocalSignature) {
    zip_fail(file_path, "{}: no local header signature at offset {}", where, offset);
  }
  const uint16_t flags = le16(h + 6);
  const uint16_t method = le16(h + 8);
  const uint32_t crc = le32(h + 14);
  uint64_t compressed_size = le32(h + 18);
  uint64_t uncompressed_size = le32(h + 22);
  const uint64_t name_size = le16(h + 26);
  const uint64_t extra_size = le16(h + 28);
  if (!range_fits(offset + kLocalSize, name_size + extra_size, central_directory_offset)) {
    zip_fail(file_path, "{}: local header at offset {} runs into the central directory", where,
             offset);
  }
  const std::string_view local_name(reinterpret_cast<const char*>(h + kLocalSize), name_size);
  if (local_name != entry.name) {
    zip_fail(file_path, "{}: its local header at offset {} names it {:?}", where, offset,
             local_name);
  }
  if (method != entry.method) {
    zip_fail(file_path, "{}: local header says compression method {}, central directory says {}",
             where, method, entry.method);
  }
  if (!(flags & kFlagDataDescriptor)) {
    apply_zip64_extra(file_path, where + " (local header)", h + kLocalSize + name_size, extra_size,
                      {&uncompressed_size, &compressed_size, nullptr});
    if (crc != entry.crc32 || compressed_size != entry.compressed_size ||
        uncompressed_size != entry.uncompressed_size) {
      zip_fail(file_path,
               "{}: local header (size {}, compressed {}, CRC {:08x}) disagrees with the central "
               "directory (size {}, compressed {}, CRC {:08x})",
               where, uncompressed_size, compressed_size, crc, entry.uncompressed_size,
               entry.compressed_size, entry.crc32);
    }
  }
  entry.data_offset = offset + kLocalSize + name_size + extra_size;
  if (!range_fits(entry.data_offset, entry.compressed_size, central_directory_offset)) {
    zip_fail(file_path,
             "archive truncated or damaged: {}: {} bytes of data at offset {} run past the start "
             "of the central directory at offset {}",
             where, entry.compressed_size, entry.data_offset, central_directory_offset);
  }
}

ZipBytes ZipArchive::read(const ZipEntry& entry, bool verify_crc) const {
  const std::string& file_path = path();
  const uint8_t* src = file_->data() + entry.data_offset;
  ZipBytes out;
  if (entry.method == kMethodStored) {
    if (entry.compressed_size != entry.uncompressed_size) {
      zip_fail(file_path, "stored entry {:?} has {} bytes but declares {} uncompressed", entry.name,
               entry.compressed_size, entry.uncompressed_size);
    }
    out.data = src;
    out.size = entry.uncompressed_size;
    out.owner = file_;
  } else if (entry.method == kMethodDeflate) {
    if (entry.uncompressed_size / kMaxDeflateRatio > entry.compressed_size) {
      zip_fail(file_path,
               "entry {:?} declares {} bytes from {} compressed bytes, more than "
               "deflate can produce",
               entry.name, entry.uncompressed_size, entry.compressed_size);
    }
    const size_t n = entry.uncompressed_size;
    std::shared_ptr<uint8_t[]> buffer(new uint8_t[n > 0 ? n : 1]);
    z_stream z{};
    if (inflateInit2(&z, -MAX_WBITS) != Z_OK) {  // raw deflate: zip has no zlib header
      fail(RWKVRT_ERR_INTERNAL, "zlib inflateInit2 failed");
    }
    // zlib counts in 32-bit uInt: feed input and output space in chunks for entries past 4 GiB.
    uint64_t in_left = entry.compressed_size;
    uint64_t out_left = n;
    z.next_in = const_cast<Bytef*>(src);
    z.next_out = buffer.get();
    int rc = Z_OK;
    while (rc == Z_OK) {
      if (z.avail_in == 0 && in_left > 0) {
        z.avail_in = uInt(std::min<uint64_t>(in_left, UINT_MAX));
        in_left -= z.avail_in;
      }
      if (z.avail_out == 0 && out_left > 0) {
        z.avail_out = uInt(std::min<uint64_t>(out_left, UINT_MAX));
        out_left -= z.avail_out;
      }
      rc = inflate(&z, Z_NO_FLUSH);
    }
    const uint64_t produced = n - out_left - z.avail_out;
    const std::string zlib_message = z.msg ? z.msg : "";
    inflateEnd(&z);
    if (rc != Z_STREAM_END || produced != n) {
      zip_fail(file_path,
               "entry {:?}: deflate data is corrupt or does not match its declared size of {} "
               "bytes{}{}",
               entry.name, n, zlib_message.empty() ? "" : ": zlib says ", zlib_message);
    }
    out.data = buffer.get();
    out.size = n;
    out.owner = std::shared_ptr<const void>(buffer, buffer.get());
  } else {
    zip_fail(file_path,
             "entry {:?} uses compression method {} ({}); only stored (0) and deflate (8) entries "
             "can be read",
             entry.name, entry.method, method_name(entry.method));
  }
  if (verify_crc || entry.method == kMethodDeflate) {
    const uint32_t crc = uint32_t(crc32_z(crc32_z(0, nullptr, 0), out.data, out.size));
    if (crc != entry.crc32) {
      zip_fail(file_path, "entry {:?} is corrupt: CRC-32 {:08x}, expected {:08x}", entry.name, crc,
               entry.crc32);
    }
  }
  return out;
}

}  // namespace rwkvrt
