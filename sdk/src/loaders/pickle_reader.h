// A safe reader for the pickle torch.save writes for a dict of tensors (data.pkl in a .pth zip).
// It is a small stack machine over the protocol-2 opcodes such pickles use, not a Python
// unpickler: it never imports or calls anything.  GLOBAL may only name the few torch and
// collections objects a tensor dict refers to, and REDUCE of one of them builds a plain record of
// what the call would have built.  Everything else (other globals, other opcodes, malformed
// arguments) is refused with an error naming it and its byte offset.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace rwkvrt {

// An element type as torch names it.  The pickle reader knows every type torch can store; which
// ones rwkvrt can use is the caller's decision.
struct TorchScalarType {
  const char* name;  // torch dtype name: "float32", "bfloat16", "float16", "float64", ...
  size_t size;       // bytes per element
};

// A storage, from the persistent id ('storage', <storage class>, key, location, numel).
struct PickledStorage {
  std::string key;                        // its bytes are the zip entry <prefix>/data/<key>
  const TorchScalarType* type = nullptr;  // element type (uint8 for torch.UntypedStorage)
  bool untyped = false;                   // torch.UntypedStorage: numel counts bytes
  uint64_t numel = 0;                     // elements of `type` the storage holds
  std::string location;                   // "cpu", "cuda:0", ...; informative only
};

// One tensor of the dict: a view of a storage, as torch._utils._rebuild_tensor_v2 (or _v3, which
// passes the dtype explicitly for an untyped storage) describes it.
struct PickledTensor {
  std::string name;  // the dict key
  PickledStorage storage;
  const TorchScalarType* dtype = nullptr;  // the tensor's element type
  uint64_t storage_offset = 0;             // in elements of dtype
  std::vector<int64_t> shape;              // outermost first; every entry >= 0
  std::vector<int64_t> stride;             // in elements of dtype; same length as shape, >= 0
};

// Interprets the `size` bytes at `data` as a torch.save pickle (protocol 2 or 3) of a dict or
// OrderedDict mapping names to tensors, and returns the tensors in dict order.  Names are unique.
// Throws Error(FORMAT) with a message "pickle <problem> (at offset N)", the problem being for
// example a GLOBAL outside the whitelist ("pickle GLOBAL 'os system' is not allowed in a
// checkpoint"), an unsupported opcode, truncation, a value of the wrong kind, a non-tensor in the
// dict.  Memory and recursion stay bounded (stack, memo and nesting limits) for any input.  Shapes
// and strides are not checked against storages here; that needs the archive.
std::vector<PickledTensor> unpickle_tensor_dict(const uint8_t* data, size_t size);

}  // namespace rwkvrt
