#include "fuzz_support.h"

#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <limits>

namespace rwkvrt::fuzz {

MemoryFile::MemoryFile() {
  fd_ = ::memfd_create("rwkvrt-fuzz-input", MFD_CLOEXEC);
  if (fd_ < 0) {
    std::perror("rwkvrt fuzz harness: memfd_create");
    std::abort();
  }
  path_ = "/proc/self/fd/" + std::to_string(fd_);
}

MemoryFile::~MemoryFile() {
  if (fd_ >= 0) ::close(fd_);
}

const std::string& MemoryFile::write(const uint8_t* data, size_t size) {
  if (::ftruncate(fd_, 0) != 0 || ::ftruncate(fd_, off_t(size)) != 0) {
    std::perror("rwkvrt fuzz harness: ftruncate");
    std::abort();
  }
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::pwrite(fd_, data + done, size - done, off_t(done));
    if (n <= 0) {
      std::perror("rwkvrt fuzz harness: pwrite");
      std::abort();
    }
    done += size_t(n);
  }
  return path_;
}

MemoryFile& input_file() {
  static MemoryFile file;
  return file;
}

void contract_violation(const char* where, const std::string& what) {
  std::fprintf(stderr, "rwkvrt fuzz: contract violated (%s): %s\n", where, what.c_str());
  std::abort();
}

void check_tensor_set(const TensorSet& set, const char* reader) {
  // The sum is observable (volatile), so the compiler cannot drop the reads.
  volatile uint8_t sink = 0;
  uint8_t sum = 0;
  for (const Tensor& t : set.tensors()) {
    const std::string where = "tensor '" + t.name + "' " + t.shape_string();
    if (set.find(t.name) != &t) contract_violation(reader, where + ": find() returns another");
    uint64_t numel = 1;
    bool overflow = false;
    for (int64_t d : t.shape) {
      if (d < 0) contract_violation(reader, where + ": negative dimension");
      overflow |= __builtin_mul_overflow(numel, uint64_t(d), &numel);
    }
    const uint64_t block = dtype_block_values(t.dtype);
    uint64_t expected = 0;
    if (overflow || __builtin_mul_overflow(numel / block, dtype_block_bytes(t.dtype), &expected) ||
        numel % block != 0 ||
        (block > 1 && (t.shape.empty() || uint64_t(t.shape.back()) % block != 0)) ||
        expected != t.nbytes) {
      contract_violation(reader, where + " of " + dtype_name(t.dtype) + ": " +
                                     std::to_string(t.nbytes) + " bytes do not match the shape");
    }
    if (t.nbytes > 0 && !t.data) contract_violation(reader, where + ": null data");
    for (size_t i = 0; i < t.nbytes; ++i) sum = uint8_t(sum + t.data[i]);
  }
  sink = sum;
  (void)sink;
}

namespace {

uint16_t le16(const uint8_t* p) {
  return uint16_t(p[0] | p[1] << 8);
}
uint32_t le32(const uint8_t* p) {
  return uint32_t(le16(p)) | uint32_t(le16(p + 2)) << 16;
}
uint64_t le64(const uint8_t* p) {
  return uint64_t(le32(p)) | uint64_t(le32(p + 4)) << 32;
}
void put32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = uint8_t(v >> (8 * i));
}

bool fits(uint64_t offset, uint64_t length, uint64_t limit) {
  return offset <= limit && length <= limit - offset;
}

// CRC-32 of the raw-deflate stream [src, src + n) once inflated, or false when it is not a
// complete stream of at most kMaxInflate bytes.
bool inflated_crc(const uint8_t* src, uint64_t n, uint32_t* crc) {
  constexpr size_t kMaxInflate = size_t(16) << 20;
  if (n > std::numeric_limits<uInt>::max()) return false;
  z_stream z{};
  if (inflateInit2(&z, -MAX_WBITS) != Z_OK) return false;
  std::vector<uint8_t> out(64 * 1024);
  uLong c = crc32(0L, Z_NULL, 0);
  size_t total = 0;
  z.next_in = const_cast<Bytef*>(src);
  z.avail_in = uInt(n);
  int rc = Z_OK;
  while (rc == Z_OK && total <= kMaxInflate) {
    z.next_out = out.data();
    z.avail_out = uInt(out.size());
    rc = inflate(&z, Z_NO_FLUSH);
    const size_t produced = out.size() - z.avail_out;
    c = crc32(c, out.data(), uInt(produced));
    total += produced;
    if (rc == Z_OK && produced == 0 && z.avail_in == 0) break;  // truncated stream
  }
  inflateEnd(&z);
  *crc = uint32_t(c);
  return rc == Z_STREAM_END;
}

}  // namespace

bool repair_zip_crcs(std::vector<uint8_t>& bytes) {
  const uint64_t size = bytes.size();
  uint8_t* data = bytes.data();
  constexpr uint64_t kEocd = 22;
  if (size < kEocd) return false;
  // The same rule as the reader: the last signature whose comment reaches the end of the file.
  uint64_t eocd = UINT64_MAX;
  const uint64_t lowest = size - kEocd > 0xffff ? size - kEocd - 0xffff : 0;
  for (uint64_t pos = size - kEocd;; --pos) {
    if (le32(data + pos) == 0x06054b50 && pos + kEocd + le16(data + pos + 20) == size) {
      eocd = pos;
      break;
    }
    if (pos == lowest) break;
  }
  if (eocd == UINT64_MAX) return false;
  uint64_t count = le16(data + eocd + 10);
  uint64_t offset = le32(data + eocd + 16);
  if (eocd >= 20 && le32(data + eocd - 20) == 0x07064b50) {
    const uint64_t record = le64(data + eocd - 20 + 8);
    if (fits(record, 56, size) && le32(data + record) == 0x06064b50) {
      count = le64(data + record + 32);
      offset = le64(data + record + 48);
    }
  }

  bool changed = false;
  uint64_t pos = offset;
  for (uint64_t i = 0; i < count && fits(pos, 46, size); ++i) {
    uint8_t* h = data + pos;
    if (le32(h) != 0x02014b50) break;
    const uint64_t name = le16(h + 28), extra = le16(h + 30), comment = le16(h + 32);
    if (!fits(pos + 46, name + extra + comment, size)) break;
    const uint16_t method = le16(h + 10);
    uint64_t fields[3] = {le32(h + 24), le32(h + 20), le32(h + 42)};  // usize, csize, local
    // The zip64 extra field replaces, in this order, the fields that hold 0xffffffff.
    for (uint64_t e = 0; e + 4 <= extra;) {
      const uint8_t* f = h + 46 + name + e;
      const uint64_t id = le16(f), len = le16(f + 2);
      if (e + 4 + len > extra) break;
      if (id == 1) {
        uint64_t used = 0;
        for (uint64_t& v : fields) {
          if (v != 0xffffffff || used + 8 > len) continue;
          v = le64(f + 4 + used);
          used += 8;
        }
      }
      e += 4 + len;
    }
    const uint64_t compressed = fields[1], local = fields[2];
    pos += 46 + name + extra + comment;
    if (!fits(local, 30, size) || le32(data + local) != 0x04034b50) continue;
    const uint64_t start = local + 30 + le16(data + local + 26) + le16(data + local + 28);
    if (!fits(start, compressed, size)) continue;
    uint32_t crc = 0;
    if (method == 0) {
      crc = uint32_t(crc32_z(crc32_z(0, nullptr, 0), data + start, size_t(compressed)));
    } else if (method != 8 || !inflated_crc(data + start, compressed, &crc)) {
      continue;
    }
    if (le32(h + 16) != crc) {
      put32(h + 16, crc);
      changed = true;
    }
    // Flag bit 3: the local header defers its CRC to a data descriptor and must keep zero.
    if (!(le16(data + local + 6) & 0x0008) && le32(data + local + 14) != crc) {
      put32(data + local + 14, crc);
      changed = true;
    }
  }
  return changed;
}

SyntheticShape tiny_v7_shape() {
  SyntheticShape s;
  s.n_layer = 2;
  s.n_embd = 16;
  s.n_vocab = 16;
  s.head_size = 8;
  s.matrix_dtype = DType::F32;
  s.seed = 20240901;
  return s;
}

}  // namespace rwkvrt::fuzz
