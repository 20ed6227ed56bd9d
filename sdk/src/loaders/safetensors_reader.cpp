// safetensors reader: u64 little-endian header length N, N bytes of JSON
//   {"<name>": {"dtype": ..., "shape": [...], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"<key>": "<string>", ...}}
// then the data block, to which the offsets are relative.  Tensor data stays in the mapping.
//
// Accepted dtypes: F32, F16, BF16, and rwkvrt's extension Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 (ggml block
// quantisation; the shape is the logical one, its last dimension a multiple of 32, and the byte
// size numel / 32 × the block size; see safetensors_writer.h).  Gaps between tensors and bytes
// after the last one are allowed (rwkvrt's writer aligns offsets to 8); overlaps are not.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <limits>
#include <set>
#include <vector>

#include "core/error.h"
#include "core/mapped_file.h"
#include "loaders/checkpoint_readers.h"

namespace rwkvrt {
namespace {

// Real headers are a few hundred bytes per tensor; 100 MB is far beyond any model and keeps a
// hostile length from making the parser allocate without bound.
constexpr uint64_t kMaxHeaderBytes = 100u * 1000 * 1000;
constexpr const char* kMetadataKey = "__metadata__";

using json = nlohmann::json;

struct Entry {
  Tensor tensor;
  uint64_t begin = 0, end = 0;
};

class Parser {
 public:
  Parser(const std::string& path, uint64_t data_size) : path_(path), data_size_(data_size) {}

  Entry entry(const std::string& name, const json& j) const {
    if (name.empty()) fail(RWKVRT_ERR_FORMAT, "'{}': a tensor has an empty name", path_);
    if (!j.is_object())
      fail(RWKVRT_ERR_FORMAT, "'{}': the header entry of tensor '{}' is not a JSON object", path_,
           name);
    Entry e;
    e.tensor.name = name;
    e.tensor.dtype = dtype(name, field(name, j, "dtype"));

    const json& shape = field(name, j, "shape");
    if (!shape.is_array())
      fail(RWKVRT_ERR_FORMAT, "'{}': tensor '{}': \"shape\" is not an array", path_, name);
    uint64_t numel = 1;
    for (const json& d : shape) {
      const uint64_t n = count(name, d, "shape");
      if (n > uint64_t(std::numeric_limits<int64_t>::max()) ||
          __builtin_mul_overflow(numel, n, &numel))
        fail(RWKVRT_ERR_FORMAT, "'{}': tensor '{}' has an impossibly large shape {}", path_, name,
             shape.dump());
      e.tensor.shape.push_back(int64_t(n));
    }

    const size_t block = dtype_block_values(e.tensor.dtype);
    if (block > 1 && (e.tensor.shape.empty() || e.tensor.shape.back() % int64_t(block) != 0))
      fail(RWKVRT_ERR_FORMAT,
           "'{}': tensor '{}' is {} with shape {}; its last dimension must be a multiple of {}",
           path_, name, dtype_name(e.tensor.dtype), e.tensor.shape_string(), block);
    uint64_t expected = 0;
    if (__builtin_mul_overflow(numel / block, uint64_t(dtype_block_bytes(e.tensor.dtype)),
                               &expected))
      fail(RWKVRT_ERR_FORMAT, "'{}': tensor '{}' has an impossibly large shape {}", path_, name,
           e.tensor.shape_string());

    const json& offsets = field(name, j, "data_offsets");
    if (!offsets.is_array() || offsets.size() != 2)
      fail(RWKVRT_ERR_FORMAT, "'{}': tensor '{}': \"data_offsets\" is not a [begin, end] pair",
           path_, name);
    e.begin = count(name, offsets[0], "data_offsets");
    e.end = count(name, offsets[1], "data_offsets");
    if (e.end < e.begin)
      fail(RWKVRT_ERR_FORMAT,
           "'{}': tensor '{}' has data_offsets [{}, {}] that end before they begin", path_, name,
           e.begin, e.end);
    if (e.end > data_size_)
      fail(RWKVRT_ERR_FORMAT,
           "'{}': tensor '{}' has data_offsets [{}, {}] past the end of the data ({} bytes): "
           "the file is truncated or corrupt",
           path_, name, e.begin, e.end, data_size_);
    if (e.end - e.begin != expected)
      fail(RWKVRT_ERR_FORMAT,
           "'{}': tensor '{}' occupies {} bytes, but shape {} of {} needs {} bytes", path_, name,
           e.end - e.begin, e.tensor.shape_string(), dtype_name(e.tensor.dtype), expected);
    e.tensor.nbytes = static_cast<size_t>(expected);
    return e;
  }

 private:
  const json& field(const std::string& name, const json& j, const char* key) const {
    auto it = j.find(key);
    if (it == j.end()) fail(RWKVRT_ERR_FORMAT, "'{}': tensor '{}' has no \"{}\"", path_, name, key);
    return *it;
  }

  uint64_t count(const std::string& name, const json& v, const char* what) const {
    if (!v.is_number_unsigned())
      fail(RWKVRT_ERR_FORMAT, "'{}': tensor '{}': \"{}\" holds {}, not a non-negative integer",
           path_, name, what, v.dump());
    return v.get<uint64_t>();
  }

  DType dtype(const std::string& name, const json& v) const {
    if (!v.is_string())
      fail(RWKVRT_ERR_FORMAT, "'{}': tensor '{}': \"dtype\" is not a string", path_, name);
    const std::string s = v.get<std::string>();
    for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q4_0, DType::Q4_1, DType::Q5_0,
                    DType::Q5_1, DType::Q8_0})
      if (s == dtype_name(t)) return t;
    // Standard safetensors dtypes that no RWKV checkpoint uses for its weights.
    static const std::set<std::string> kStandard = {
        "BOOL", "U8",      "I8",      "I16",     "U16", "I32",     "I64",     "U32", "U64",
        "F64",  "F8_E4M3", "F8_E5M2", "F8_E8M0", "F4",  "F6_E2M3", "F6_E3M2", "C64"};
    if (kStandard.count(s))
      fail(RWKVRT_ERR_UNSUPPORTED,
           "'{}': tensor '{}' has dtype {}, which rwkvrt does not read (F32, F16, BF16, or "
           "rwkvrt's Q4_0, Q4_1, Q5_0, Q5_1, Q8_0)",
           path_, name, s);
    fail(RWKVRT_ERR_FORMAT, "'{}': tensor '{}' has unknown dtype \"{}\"", path_, name, s);
  }

  const std::string& path_;
  uint64_t data_size_;
};

// Parses the header, reporting a key that appears twice in one object (JSON allows it, but
// which of the two entries is meant would be ambiguous).
json parse_header(const std::string& path, const char* begin, const char* end) {
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  auto check = [&](int, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) {
      open_objects.emplace_back();
    } else if (event == json::parse_event_t::object_end) {
      open_objects.pop_back();
    } else if (event == json::parse_event_t::key && duplicate.empty() &&
               !open_objects.back().insert(parsed.get<std::string>()).second) {
      duplicate = parsed.get<std::string>();
    }
    return true;
  };
  json header;
  try {
    header = json::parse(begin, end, check);
  } catch (const json::exception& e) {
    fail(RWKVRT_ERR_FORMAT, "'{}': the safetensors header is not valid JSON: {}", path, e.what());
  }
  if (!duplicate.empty())
    fail(RWKVRT_ERR_FORMAT, "'{}': the safetensors header has the key \"{}\" twice", path,
         duplicate);
  if (!header.is_object())
    fail(RWKVRT_ERR_FORMAT, "'{}': the safetensors header must be a JSON object, found {}", path,
         header.type_name());
  return header;
}

}  // namespace

TensorSet read_safetensors(const std::string& path) {
  const auto file = MappedFile::open(path);
  const uint64_t size = file->size();
  if (size < 8)
    fail(RWKVRT_ERR_FORMAT,
         "'{}' is truncated: {} bytes, but a safetensors file starts with an 8-byte header length",
         path, size);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | file->data()[i];
  if (header_len > kMaxHeaderBytes)
    fail(RWKVRT_ERR_FORMAT, "'{}': safetensors header length {} is absurd (limit {} bytes)", path,
         header_len, kMaxHeaderBytes);
  if (header_len > size - 8)
    fail(RWKVRT_ERR_FORMAT,
         "'{}': safetensors header length {} runs past the end of the file ({} bytes): truncated?",
         path, header_len, size);

  const char* text = reinterpret_cast<const char*>(file->data()) + 8;
  const json header = parse_header(path, text, text + header_len);
  const uint8_t* data = file->data() + 8 + header_len;
  const uint64_t data_size = size - 8 - header_len;

  TensorSet set;
  std::vector<Entry> entries;
  Parser parser(path, data_size);
  for (const auto& [key, value] : header.items()) {
    if (key != kMetadataKey) {
      entries.push_back(parser.entry(key, value));
      continue;
    }
    if (!value.is_object())
      fail(RWKVRT_ERR_FORMAT, "'{}': \"__metadata__\" is not a JSON object", path);
    for (const auto& [mkey, mvalue] : value.items()) {
      if (!mvalue.is_string())
        fail(RWKVRT_ERR_FORMAT, "'{}': metadata \"{}\" is not a string: {}", path, mkey,
             mvalue.dump());
      set.metadata[mkey] = mvalue.get<std::string>();
    }
  }

  // File order; each tensor must end before the next begins (empty tensors occupy nothing).
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  const Entry* previous = nullptr;
  for (const Entry& e : entries) {
    if (e.begin == e.end) continue;
    if (previous && e.begin < previous->end)
      fail(RWKVRT_ERR_FORMAT,
           "'{}': tensors '{}' [{}, {}] and '{}' [{}, {}] overlap in the data block", path,
           previous->tensor.name, previous->begin, previous->end, e.tensor.name, e.begin, e.end);
    previous = &e;
  }

  set.keep_alive(file);
  for (Entry& e : entries) {
    e.tensor.data = data + e.begin;
    set.add(std::move(e.tensor));
  }
  // Set last: it names the container, whatever the file's own metadata says ("format": "pt" is
  // common in files written by PyTorch tools).
  set.metadata["format"] = "safetensors";
  return set;
}

}  // namespace rwkvrt
