// Readers of checkpoint containers.  Each validates the container completely before returning
// (every offset and size inside the file) and throws Error(FORMAT) naming the file and the problem
// otherwise; tensor data stays in the memory-mapped file where the format allows.
#pragma once

#include <functional>
#include <string>

#include "loaders/tensor_set.h"

namespace rwkvrt {

// Reading progress in [0,1]; returns false to cancel (the reader then throws Error(CANCELLED)).
using ReadProgress = std::function<bool(float)>;

// PyTorch torch.save zip archive of a dict of tensors (zip and zip64), via a safe unpickler.
TensorSet read_pth(const std::string& path);
// safetensors: u64 header length, JSON header, data block.
TensorSet read_safetensors(const std::string& path);
// rwkv.cpp .bin (ggmf magic, versions 100/101), tensors as stored (rwkv.cpp's own layout).
TensorSet read_rwkvcpp(const std::string& path);

// Picks the reader from the file's first bytes (zip "PK", rwkv.cpp magic, safetensors header).
// Throws Error(FORMAT) for anything else, naming the bytes found.
TensorSet read_checkpoint(const std::string& path);

}  // namespace rwkvrt
