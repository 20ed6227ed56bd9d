// The layouts written here follow PKWARE's APPNOTE and Python's pickle protocol 2, in the choices
// torch.save makes (miniz zip writer with data descriptors and 64-byte aligned data; the pickler's
// memoisation of globals and tuples, SETITEMS in batches of 1,000).
#include "support/pth_writer.h"

#include <algorithm>
#include <map>
#include <stdexcept>

#include "support/test_data.h"

namespace rwkvrt::test {
namespace {

struct DTypeInfo {
  const char* name;
  size_t size;
  const char* storage_class;  // null: only through torch.UntypedStorage
};

constexpr DTypeInfo kDTypes[] = {
    {"float32", 4, "FloatStorage"},
    {"float16", 2, "HalfStorage"},
    {"bfloat16", 2, "BFloat16Storage"},
    {"float64", 8, "DoubleStorage"},
    {"int64", 8, "LongStorage"},
    {"uint8", 1, "ByteStorage"},
    {"uint16", 2, nullptr},
};

const DTypeInfo& dtype_info(const std::string& name) {
  for (const DTypeInfo& d : kDTypes) {
    if (name == d.name) return d;
  }
  throw std::invalid_argument("pth_writer: unknown dtype " + name);
}

class Bytes {
 public:
  void u8(uint64_t v) { out_.push_back(uint8_t(v)); }
  void u16(uint64_t v) { le(v, 2); }
  void u32(uint64_t v) { le(v, 4); }
  void u64(uint64_t v) { le(v, 8); }
  void raw(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    out_.insert(out_.end(), b, b + n);
  }
  void raw(const std::string& s) { raw(s.data(), s.size()); }
  size_t size() const { return out_.size(); }
  std::vector<uint8_t>& bytes() { return out_; }

 private:
  void le(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out_.push_back(uint8_t(v >> (8 * i)));
  }
  std::vector<uint8_t> out_;
};

uint32_t crc32(const std::string& data) {
  static const auto table = [] {
    std::vector<uint32_t> t(256);
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t c = 0xffffffffu;
  for (unsigned char b : data) c = table[(c ^ b) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

// Deflate made of non-compressed blocks (BTYPE 00): header bits, LEN, ~LEN, the bytes.
std::string deflate_stored_blocks(const std::string& data) {
  std::string out;
  size_t pos = 0;
  do {
    const size_t n = std::min<size_t>(data.size() - pos, 0xffff);
    const bool last = pos + n == data.size();
    out += char(last ? 1 : 0);
    out += char(n & 0xff);
    out += char(n >> 8);
    out += char(~n & 0xff);
    out += char((~n >> 8) & 0xff);
    out.append(data, pos, n);
    pos += n;
  } while (pos < data.size());
  return out;
}

// Protocol-2 pickle opcodes and encodings as CPython's pickler emits them.
class PickleWriter {
 public:
  PickleWriter() { out_ += "\x80\x02"; }

  void op(char c) { out_ += c; }
  void integer(int64_t v) {
    if (v >= 0 && v <= 0xff) {
      out_ += 'K';
      out_ += char(v);
    } else if (v >= 0 && v <= 0xffff) {
      out_ += 'M';
      le(uint64_t(v), 2);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
      out_ += 'J';
      le(uint64_t(v), 4);
    } else {
      // LONG1: the shortest little-endian two's complement.
      int n = 8;
      while (n > 1 && ((v >> (8 * (n - 1) - 1)) == 0 || (v >> (8 * (n - 1) - 1)) == -1)) --n;
      out_ += '\x8a';
      out_ += char(n);
      le(uint64_t(v), n);
    }
  }
  void string(const std::string& s) {
    out_ += 'X';
    le(s.size(), 4);
    out_ += s;
  }
  // A GLOBAL, memoised on first use and fetched with BINGET afterwards.
  void global(const std::string& module, const std::string& name) {
    const std::string key = module + "\n" + name + "\n";
    const auto it = globals_.find(key);
    if (it != globals_.end()) {
      get(it->second);
      return;
    }
    out_ += 'c' + key;
    globals_[key] = put();
  }
  // Tuples of the items emitted by `items` (count of them: n).
  template <typename F>
  void tuple(size_t n, F&& items) {
    if (n == 0) {
      out_ += ')';
      return;
    }
    if (n > 3) out_ += '(';
    items();
    out_ += n > 3 ? 't' : char(0x85 + n - 1);
  }
  void int_tuple(const std::vector<int64_t>& v) {
    tuple(v.size(), [&] {
      for (int64_t x : v) integer(x);
    });
    put();
  }
  uint32_t put() {
    const uint32_t index = next_memo_++;
    if (index < 256) {
      out_ += 'q';
      out_ += char(index);
    } else {
      out_ += 'r';
      le(index, 4);
    }
    return index;
  }
  void get(uint32_t index) {
    if (index < 256) {
      out_ += 'h';
      out_ += char(index);
    } else {
      out_ += 'j';
      le(index, 4);
    }
  }
  const std::string& str() const { return out_; }

 private:
  void le(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out_ += char(v >> (8 * i));
  }
  std::string out_;
  std::map<std::string, uint32_t> globals_;
  uint32_t next_memo_ = 0;
};

std::vector<int64_t> contiguous_strides(const std::vector<int64_t>& shape) {
  std::vector<int64_t> stride(shape.size());
  int64_t s = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    stride[i] = s;
    s *= std::max<int64_t>(shape[i], 1);
  }
  return stride;
}

// Storage keys in tensor order; a tensor without its own key gets the next free number.
std::vector<std::string> storage_keys(const std::vector<PthTensor>& tensors) {
  std::vector<std::string> keys;
  size_t next = 0;
  for (const PthTensor& t : tensors) {
    keys.push_back(t.storage_key.empty() ? std::to_string(next++) : t.storage_key);
  }
  return keys;
}

}  // namespace

size_t torch_dtype_size(const std::string& dtype) {
  return dtype_info(dtype).size;
}

std::vector<uint8_t> zip_bytes(const std::vector<ZipEntrySpec>& entries,
                               const ZipWriteOptions& options) {
  constexpr uint32_t kMarker = 0xffffffff;
  const bool zip64 = options.zip64;
  const uint16_t version = zip64 ? 45 : 20;
  const uint16_t flags = uint16_t(0x0800 | (options.data_descriptor ? 0x0008 : 0));
  Bytes out;
  struct Written {
    uint64_t offset, compressed, uncompressed;
    uint32_t crc;
    uint16_t method;
  };
  std::vector<Written> written;
  for (const ZipEntrySpec& e : entries) {
    const std::string payload = e.deflate ? deflate_stored_blocks(e.data) : e.data;
    Written w{out.size(), uint64_t(int64_t(payload.size()) + e.size_delta),
              uint64_t(int64_t(e.data.size()) + e.size_delta), crc32(e.data),
              e.method ? *e.method : uint16_t(e.deflate ? 8 : 0)};
    written.push_back(w);
    const std::string local_name = e.local_name ? *e.local_name : e.name;

    Bytes extra;
    if (zip64 && !options.data_descriptor) {
      extra.u16(0x0001);
      extra.u16(16);
      extra.u64(w.uncompressed);
      extra.u64(w.compressed);
    }
    if (options.align64) {
      const size_t unpadded = out.size() + 30 + local_name.size() + extra.size() + 4;
      const size_t pad = (64 - unpadded % 64) % 64;
      extra.u16(0x4246);  // "FB", the padding field PyTorch uses
      extra.u16(pad);
      extra.raw(std::string(pad, 'Z'));
    }
    const bool sizes_here = !options.data_descriptor;
    out.u32(0x04034b50);
    out.u16(version);
    out.u16(flags);
    out.u16(w.method);
    out.u16(0);       // time
    out.u16(0x0021);  // date: 1980-01-01
    out.u32(sizes_here ? w.crc : 0);
    out.u32(sizes_here ? (zip64 ? kMarker : w.compressed) : 0);
    out.u32(sizes_here ? (zip64 ? kMarker : w.uncompressed) : 0);
    out.u16(local_name.size());
    out.u16(extra.size());
    out.raw(local_name);
    out.raw(extra.bytes().data(), extra.size());
    out.raw(payload);
    if (options.data_descriptor) {
      out.u32(0x08074b50);
      out.u32(w.crc);
      if (zip64) {
        out.u64(w.compressed);
        out.u64(w.uncompressed);
      } else {
        out.u32(w.compressed);
        out.u32(w.uncompressed);
      }
    }
  }

  const uint64_t directory_offset = out.size();
  for (size_t i = 0; i < entries.size(); ++i) {
    const Written& w = written[i];
    out.u32(0x02014b50);
    out.u16(0x0300 | version);  // made by: Unix
    out.u16(version);
    out.u16(flags);
    out.u16(w.method);
    out.u16(0);
    out.u16(0x0021);
    out.u32(w.crc);
    out.u32(zip64 ? kMarker : w.compressed);
    out.u32(zip64 ? kMarker : w.uncompressed);
    out.u16(entries[i].name.size());
    out.u16(zip64 ? 28 : 0);
    out.u16(0);  // comment
    out.u16(0);  // disk
    out.u16(0);  // internal attributes
    out.u32(0);  // external attributes
    out.u32(zip64 ? kMarker : w.offset);
    out.raw(entries[i].name);
    if (zip64) {
      out.u16(0x0001);
      out.u16(24);
      out.u64(w.uncompressed);
      out.u64(w.compressed);
      out.u64(w.offset);
    }
  }
  const uint64_t directory_size = out.size() - directory_offset;
  if (zip64) {
    const uint64_t record = out.size();
    out.u32(0x06064b50);
    out.u64(44);  // size of the rest of the record
    out.u16(0x0300 | version);
    out.u16(version);
    out.u32(0);
    out.u32(0);
    out.u64(entries.size());
    out.u64(entries.size());
    out.u64(directory_size);
    out.u64(directory_offset);
    out.u32(0x07064b50);
    out.u32(0);
    out.u64(record);
    out.u32(1);
  }
  out.u32(0x06054b50);
  out.u16(0);
  out.u16(0);
  out.u16(zip64 ? 0xffff : entries.size());
  out.u16(zip64 ? 0xffff : entries.size());
  out.u32(zip64 ? kMarker : directory_size);
  out.u32(zip64 ? kMarker : directory_offset);
  out.u16(options.comment.size());
  out.raw(options.comment);
  return std::move(out.bytes());
}

std::string pth_pickle(const std::vector<PthTensor>& tensors, const PthOptions& options) {
  const std::vector<std::string> keys = storage_keys(tensors);
  PickleWriter p;
  if (options.ordered_dict) {
    p.global("collections", "OrderedDict");
    p.op(')');
    p.op('R');
  } else {
    p.op('}');
  }
  p.put();

  constexpr size_t kBatch = 1000;  // the pickler's SETITEMS batch size
  for (size_t begin = 0; begin < tensors.size(); begin += kBatch) {
    const size_t end = std::min(tensors.size(), begin + kBatch);
    if (end - begin > 1) p.op('(');
    for (size_t i = begin; i < end; ++i) {
      const PthTensor& t = tensors[i];
      const DTypeInfo& d = dtype_info(t.dtype);
      if (!d.storage_class && !options.untyped_v3) {
        throw std::invalid_argument("pth_writer: dtype " + t.dtype + " needs untyped_v3");
      }
      p.string(t.name);
      p.put();
      if (options.parameters) p.global("torch._utils", "_rebuild_parameter");
      p.global("torch._utils", options.untyped_v3 ? "_rebuild_tensor_v3" : "_rebuild_tensor_v2");
      p.op('(');
      // The persistent id ('storage', class, key, location, numel).
      p.tuple(5, [&] {
        p.string("storage");
        if (options.untyped_v3) {
          p.global("torch", "UntypedStorage");
        } else {
          p.global("torch", d.storage_class);
        }
        p.string(keys[i]);
        p.string("cpu");
        const int64_t element = options.untyped_v3 ? 1 : int64_t(d.size);
        p.integer(t.declared_numel >= 0 ? t.declared_numel : int64_t(t.data.size()) / element);
      });
      p.put();
      p.op('Q');
      p.integer(t.storage_offset);
      p.int_tuple(t.shape);
      p.int_tuple(t.stride.empty() ? contiguous_strides(t.shape) : t.stride);
      p.op('\x89');  // requires_grad False
      p.global("collections", "OrderedDict");
      p.op(')');
      p.op('R');
      if (options.untyped_v3) p.global("torch", t.dtype);
      p.op('t');
      p.op('R');
      if (options.parameters) {
        p.op('\x89');
        p.global("collections", "OrderedDict");
        p.op(')');
        p.op('R');
        p.op('\x87');
        p.op('R');
      }
      p.put();
    }
    p.op(end - begin > 1 ? 'u' : 's');
  }
  p.op('.');
  return p.str();
}

std::vector<uint8_t> pth_bytes(const std::vector<PthTensor>& tensors, const PthOptions& options) {
  const std::string dir = options.prefix + "/";
  std::vector<ZipEntrySpec> entries;
  if (options.write_pickle) {
    ZipEntrySpec pickle{dir + "data.pkl",
                        options.raw_pickle ? *options.raw_pickle : pth_pickle(tensors, options)};
    pickle.deflate = options.deflate_pickle;
    entries.push_back(pickle);
  }
  if (options.byteorder) entries.push_back({dir + "byteorder", *options.byteorder});
  const std::vector<std::string> keys = storage_keys(tensors);
  for (size_t i = 0; i < tensors.size(); ++i) {
    const std::string name = dir + "data/" + keys[i];
    const bool omitted =
        std::count(options.omit_storages.begin(), options.omit_storages.end(), keys[i]) > 0;
    const bool seen = std::any_of(entries.begin(), entries.end(),
                                  [&](const ZipEntrySpec& e) { return e.name == name; });
    if (omitted || seen) continue;
    entries.push_back({name, std::string(tensors[i].data.begin(), tensors[i].data.end())});
  }
  entries.push_back({dir + "version", "3\n"});
  return zip_bytes(entries, options.zip);
}

void write_pth(const std::string& path, const std::vector<PthTensor>& tensors,
               const PthOptions& options) {
  write_file(path, pth_bytes(tensors, options));
}

}  // namespace rwkvrt::test
