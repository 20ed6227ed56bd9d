// Writers of zip archives and PyTorch .pth checkpoints for tests, laid out as torch.save lays them
// out (stored entries, protocol-2 pickle of a dict of tensors through _rebuild_tensor_v2 and
// persistent storage ids), with knobs that produce the broken and hostile variants a reader must
// refuse.  Test code only: inputs are trusted, misuse throws std::invalid_argument.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace rwkvrt::test {

// One file of a zip archive.
struct ZipEntrySpec {
  ZipEntrySpec(std::string entry_name, std::string content)
      : name(std::move(entry_name)), data(std::move(content)) {}
  std::string name;
  std::string data;
  // Method 8, written as non-compressed deflate blocks (valid deflate that any inflater reads).
  bool deflate = false;
  // Knobs for damaged archives:
  std::optional<std::string> local_name;  // the name the local header gives (default: name)
  std::optional<uint16_t> method;         // the method both headers give, data written as is
  int64_t size_delta = 0;                 // added to both sizes every header declares
};

struct ZipWriteOptions {
  // Zip64 everywhere: every size and offset through zip64 extra fields (central, and local unless
  // data_descriptor), a zip64 end-of-central-directory record and its locator.
  bool zip64 = false;
  // Pad local headers with an extra field so data starts on a 64-byte boundary (as PyTorch does).
  // Without it entry data follows the local header directly, at arbitrary alignment.
  bool align64 = true;
  // Flag bit 3 as PyTorch writes it: zero sizes and CRC in the local header, a data descriptor
  // after the data.
  bool data_descriptor = true;
  std::string comment;  // archive comment after the end-of-central-directory record
};

std::vector<uint8_t> zip_bytes(const std::vector<ZipEntrySpec>& entries,
                               const ZipWriteOptions& options = {});

// One tensor of a checkpoint, with the bytes of its storage.
struct PthTensor {
  std::string name;
  std::string dtype = "float32";  // torch dtype: float32, float16, bfloat16, float64, int64, ...
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;  // the storage's raw little-endian elements
  // Knobs (defaults give a contiguous tensor over its own storage of exactly `data`):
  std::vector<int64_t> stride;  // empty: contiguous strides
  int64_t storage_offset = 0;
  // Storage key; tensors with the same key share one storage (the first one's data is written).
  // Empty: a key of its own ("0", "1", ... in order).
  std::string storage_key;
  int64_t declared_numel = -1;  // numel in the persistent id; -1: data.size() / element size
};

struct PthOptions {
  std::string prefix = "archive";  // entries are <prefix>/data.pkl, <prefix>/data/<key>, ...
  ZipWriteOptions zip;
  bool ordered_dict = true;  // top level collections.OrderedDict(); else a plain dict
  bool parameters = false;   // every tensor wrapped in torch._utils._rebuild_parameter
  // torch.UntypedStorage storages (numel in bytes) and _rebuild_tensor_v3 with a dtype global.
  bool untyped_v3 = false;
  std::optional<std::string> raw_pickle;   // data.pkl content instead of the generated pickle
  bool write_pickle = true;                // false: no data.pkl entry at all
  bool deflate_pickle = false;             // data.pkl compressed with method 8
  std::optional<std::string> byteorder;    // content of a <prefix>/byteorder entry
  std::vector<std::string> omit_storages;  // storage keys whose data entry is left out
};

// The data.pkl that pth_bytes writes for `tensors`.
std::string pth_pickle(const std::vector<PthTensor>& tensors, const PthOptions& options = {});
// A whole .pth archive.
std::vector<uint8_t> pth_bytes(const std::vector<PthTensor>& tensors,
                               const PthOptions& options = {});
// pth_bytes written to `path`.
void write_pth(const std::string& path, const std::vector<PthTensor>& tensors,
               const PthOptions& options = {});

// Bytes per element of a torch dtype name understood by the writer.
size_t torch_dtype_size(const std::string& dtype);

}  // namespace rwkvrt::test
