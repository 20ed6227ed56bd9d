// torch.save's zip layout: <prefix>/data.pkl is a pickle of the dict of tensors, in which every
// storage is a persistent id whose key names the entry <prefix>/data/<key> holding the storage's
// raw little-endian elements.  <prefix> is "archive" or the stem of the file torch.save wrote, so
// the pickle is found by its suffix.  Tensors point into the mapped file; nothing is copied unless
// an entry is compressed.
#include <map>
#include <optional>
#include <string_view>

#include "core/error.h"
#include "core/mapped_file.h"
#include "loaders/checkpoint_readers.h"
#include "loaders/pickle_reader.h"
#include "loaders/zip_archive.h"

namespace rwkvrt {
namespace {

constexpr std::string_view kPickleName = "data.pkl";

std::optional<DType> to_dtype(const TorchScalarType& t) {
  const std::string_view name = t.name;
  if (name == "float32") return DType::F32;
  if (name == "float16") return DType::F16;
  if (name == "bfloat16") return DType::BF16;
  return std::nullopt;
}

// torch's definition: strides of size-1 dimensions do not matter, and an empty tensor is
// contiguous whatever its strides.  The caller has checked that the element count fits 64 bits.
bool is_contiguous(const std::vector<int64_t>& shape, const std::vector<int64_t>& stride) {
  for (int64_t d : shape) {
    if (d == 0) return true;
  }
  uint64_t expected = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    if (shape[i] == 1) continue;
    if (uint64_t(stride[i]) != expected) return false;
    expected *= uint64_t(shape[i]);
  }
  return true;
}

std::string join(const std::vector<int64_t>& v) {
  std::string s = "(";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + (v.size() == 1 ? ",)" : ")");
}

// The zip entry named `<dir>/data.pkl` with `<dir>` a single path component.
const ZipEntry& find_pickle(const ZipArchive& zip) {
  const ZipEntry* found = nullptr;
  for (const ZipEntry& e : zip.entries()) {
    const std::string& n = e.name;
    if (n.size() <= kPickleName.size() + 1 ||
        n.compare(n.size() - kPickleName.size(), kPickleName.size(), kPickleName) != 0) {
      continue;
    }
    const size_t slash = n.find('/');
    if (slash != n.size() - kPickleName.size() - 1) continue;
    if (found) {
      fail(RWKVRT_ERR_FORMAT, "'{}' holds two pickles, {:?} and {:?}: not one torch.save archive",
           zip.path(), found->name, n);
    }
    found = &e;
  }
  if (!found) {
    fail(RWKVRT_ERR_FORMAT,
         "'{}' is a zip archive without a <prefix>/data.pkl entry: not a PyTorch checkpoint",
         zip.path());
  }
  return *found;
}

void check_byte_order(const ZipArchive& zip, const std::string& prefix) {
  const ZipEntry* entry = zip.find(prefix + "byteorder");
  if (!entry) return;  // files older than the entry are little-endian
  const ZipBytes bytes = zip.read(*entry, /*verify_crc=*/true);
  std::string_view order(reinterpret_cast<const char*>(bytes.data), bytes.size);
  while (!order.empty() && (order.back() == '\n' || order.back() == '\r')) order.remove_suffix(1);
  if (order == "little") return;
  if (order == "big") {
    fail(RWKVRT_ERR_FORMAT,
         "'{}' holds big-endian tensor data (byteorder entry says \"big\"); rwkvrt reads "
         "little-endian checkpoints only",
         zip.path());
  }
  fail(RWKVRT_ERR_FORMAT, "'{}': byteorder entry holds {:?}, expected \"little\"", zip.path(),
       std::string(order));
}

// A storage's entry, read once even when several tensors view it.
struct StorageData {
  PickledStorage declared;
  ZipBytes bytes;
  uint64_t nbytes;  // numel x element size, at most bytes.size
};

}  // namespace

TensorSet read_pth(const std::string& path) {
  const std::shared_ptr<const MappedFile> file = MappedFile::open(path);
  const ZipArchive zip(file);
  const ZipEntry& pickle = find_pickle(zip);
  const std::string prefix = pickle.name.substr(0, pickle.name.size() - kPickleName.size());
  check_byte_order(zip, prefix);

  // The pickle is small and parsed whole, so checking its CRC costs nothing.
  const ZipBytes pickle_bytes = zip.read(pickle, /*verify_crc=*/true);
  std::vector<PickledTensor> pickled;
  try {
    pickled = unpickle_tensor_dict(pickle_bytes.data, pickle_bytes.size);
  } catch (const Error& e) {
    fail(e.status(), "'{}': {}: {}", path, pickle.name, e.what());
  }

  TensorSet set;
  set.metadata["format"] = "pth";
  set.keep_alive(file);
  std::map<std::string, StorageData> storages;
  for (const PickledTensor& p : pickled) {
    const std::optional<DType> dtype = to_dtype(*p.dtype);
    if (!dtype) {
      fail(RWKVRT_ERR_FORMAT,
           "'{}': tensor {:?} has dtype {}; rwkvrt reads float32, float16 and bfloat16 "
           "checkpoints",
           path, p.name, p.dtype->name);
    }

    auto it = storages.find(p.storage.key);
    if (it == storages.end()) {
      const std::string entry_name = prefix + "data/" + p.storage.key;
      const ZipEntry* entry = zip.find(entry_name);
      if (!entry) {
        fail(RWKVRT_ERR_FORMAT, "'{}': tensor {:?}: its storage entry {:?} is missing", path,
             p.name, entry_name);
      }
      StorageData s{p.storage, zip.read(*entry, /*verify_crc=*/false), 0};
      if (__builtin_mul_overflow(s.declared.numel, uint64_t(s.declared.type->size), &s.nbytes) ||
          s.nbytes > s.bytes.size) {
        fail(RWKVRT_ERR_FORMAT,
             "'{}': storage {:?} declares {} elements of {} but its entry {:?} holds {} bytes",
             path, p.storage.key, s.declared.numel, s.declared.type->name, entry_name,
             s.bytes.size);
      }
      if (s.bytes.owner != file) set.keep_alive(s.bytes.owner);
      it = storages.emplace(p.storage.key, std::move(s)).first;
    } else {
      const PickledStorage& first = it->second.declared;
      if (first.type != p.storage.type || first.untyped != p.storage.untyped ||
          first.numel != p.storage.numel) {
        fail(RWKVRT_ERR_FORMAT,
             "'{}': tensor {:?} declares storage {:?} as {} elements of {}, an earlier tensor as "
             "{} elements of {}",
             path, p.name, p.storage.key, p.storage.numel, p.storage.type->name, first.numel,
             first.type->name);
      }
    }
    const StorageData& storage = it->second;

    // Bytes [begin, begin + nbytes) of the storage; every product and sum is checked.
    uint64_t numel = 1;
    uint64_t begin = 0;
    uint64_t nbytes = 0;
    bool overflow = false;
    for (int64_t d : p.shape) overflow |= __builtin_mul_overflow(numel, uint64_t(d), &numel);
    overflow |= __builtin_mul_overflow(numel, uint64_t(p.dtype->size), &nbytes);
    overflow |= __builtin_mul_overflow(p.storage_offset, uint64_t(p.dtype->size), &begin);
    if (overflow || begin > storage.nbytes || nbytes > storage.nbytes - begin) {
      fail(RWKVRT_ERR_FORMAT,
           "'{}': tensor {:?} of shape {} at storage offset {} is out of range of its storage "
           "{:?} ({} bytes)",
           path, p.name, join(p.shape), p.storage_offset, p.storage.key, storage.nbytes);
    }
    if (!is_contiguous(p.shape, p.stride)) {
      fail(RWKVRT_ERR_FORMAT,
           "'{}': tensor {:?} of shape {} is not contiguous (strides {}); rwkvrt reads "
           "contiguous tensors only",
           path, p.name, join(p.shape), join(p.stride));
    }

    Tensor t;
    t.name = p.name;
    t.dtype = *dtype;
    t.shape = p.shape;
    t.data = storage.bytes.data + begin;
    t.nbytes = size_t(nbytes);
    set.add(std::move(t));
  }
  return set;
}

}  // namespace rwkvrt
