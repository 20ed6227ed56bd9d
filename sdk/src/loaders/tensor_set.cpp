#include "loaders/tensor_set.h"

#include "core/error.h"

namespace rwkvrt {

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::Q4_0: return "Q4_0";
    case DType::Q4_1: return "Q4_1";
    case DType::Q5_0: return "Q5_0";
    case DType::Q5_1: return "Q5_1";
    case DType::Q8_0: return "Q8_0";
  }
  return "?";
}

size_t dtype_block_values(DType t) {
  switch (t) {
    case DType::F32:
    case DType::F16:
    case DType::BF16: return 1;
    default: return 32;
  }
}

size_t dtype_block_bytes(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::F16:
    case DType::BF16: return 2;
    case DType::Q4_0: return 18;
    case DType::Q4_1: return 20;
    case DType::Q5_0: return 22;
    case DType::Q5_1: return 24;
    case DType::Q8_0: return 34;
  }
  return 0;
}

size_t dtype_bytes_for(DType t, uint64_t n) {
  return static_cast<size_t>(n / dtype_block_values(t) * dtype_block_bytes(t));
}

uint64_t Tensor::numel() const {
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

std::string Tensor::shape_string() const {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1) s += ",";
  return s + ")";
}

void TensorSet::add(Tensor t) {
  if (index_.count(t.name)) fail(RWKVRT_ERR_FORMAT, "tensor '{}' appears twice", t.name);
  index_.emplace(t.name, tensors_.size());
  tensors_.push_back(std::move(t));
}

uint8_t* TensorSet::allocate(size_t bytes) {
  auto buf = std::shared_ptr<uint8_t[]>(new uint8_t[bytes > 0 ? bytes : 1]);
  uint8_t* p = buf.get();
  owners_.push_back(std::shared_ptr<const void>(buf, p));
  return p;
}

const Tensor* TensorSet::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace rwkvrt
