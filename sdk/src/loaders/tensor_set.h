// The common result of every checkpoint reader: named tensors pointing into memory that the set
// keeps alive (a file mapping, or buffers a reader had to materialise).  Readers only parse and
// validate the container; what the tensors mean is decided by model/ (version detection, shapes).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "rwkvrt/backend.h"

namespace rwkvrt {

enum class DType : uint8_t {
  F32 = RWKVRT_BK_F32,
  F16 = RWKVRT_BK_F16,
  BF16 = RWKVRT_BK_BF16,
  Q4_0 = RWKVRT_BK_Q4_0,
  Q4_1 = RWKVRT_BK_Q4_1,
  Q5_0 = RWKVRT_BK_Q5_0,
  Q5_1 = RWKVRT_BK_Q5_1,
  Q8_0 = RWKVRT_BK_Q8_0,
};

const char* dtype_name(DType t);
// For block-quantised types: values per block and bytes per block; {1, element size} otherwise.
size_t dtype_block_values(DType t);
size_t dtype_block_bytes(DType t);
// Bytes occupied by `n` values (n must be a multiple of the block size for block types).
size_t dtype_bytes_for(DType t, uint64_t n);

struct Tensor {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;  // PyTorch order (outermost first)
  const uint8_t* data = nullptr;
  size_t nbytes = 0;

  uint64_t numel() const;
  std::string shape_string() const;  // "(768, 65536)"
};

class TensorSet {
 public:
  // Adds a tensor; throws Error(FORMAT) if the name is already present.
  void add(Tensor t);
  // Keeps `owner` alive as long as the set (a mapping or a materialised buffer).
  void keep_alive(std::shared_ptr<const void> owner) { owners_.push_back(std::move(owner)); }
  // Allocates a buffer owned by the set, for tensors a reader has to convert.
  uint8_t* allocate(size_t bytes);

  const Tensor* find(const std::string& name) const;
  const std::vector<Tensor>& tensors() const { return tensors_; }
  size_t size() const { return tensors_.size(); }

  // Container-level facts: "format" ("pth", "safetensors", "rwkvcpp"), and for safetensors the
  // __metadata__ entries (rwkvrt writes "rwkvrt.version", "rwkvrt.group_norm_eps", ...).
  std::map<std::string, std::string> metadata;

 private:
  std::vector<Tensor> tensors_;
  std::map<std::string, size_t, std::less<>> index_;
  std::vector<std::shared_ptr<const void>> owners_;
};

}  // namespace rwkvrt
