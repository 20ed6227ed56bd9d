// Writes a TensorSet as a safetensors file (the reader is read_safetensors in
// checkpoint_readers.h).
//
// Layout: u64 little-endian header length N, N bytes of JSON (padded with spaces so the data block
// starts on an 8-byte boundary), then the data block.  Every tensor's data offset is a multiple of
// 8; when a tensor's size is not, zero bytes fill the gap to the next one.  (Files whose tensor
// sizes are all multiples of 8, as real models' are, are therefore gap-free and readable by the
// reference safetensors library too.)
//
// rwkvrt's extension: besides the standard "F32", "F16" and "BF16", the dtypes "Q4_0", "Q4_1",
// "Q5_0", "Q5_1" and "Q8_0" hold ggml block-quantised matrices (blocks of 32 values along the last
// dimension, layouts in backends/reference/dtype_convert.h).  "shape" is the logical shape, whose
// last dimension must be a multiple of 32; the byte size is numel / 32 × the block size (18, 20,
// 22, 24, 34 bytes).  Other safetensors readers reject these dtypes.
#pragma once

#include <functional>
#include <map>
#include <string>

#include "loaders/tensor_set.h"

namespace rwkvrt {

// Writes every tensor of `tensors` (in their order, as their stored bytes) and `metadata` as the
// header's "__metadata__" object (omitted when empty; tensors.metadata is not written).
//
// The file is written to `path + ".tmp"`, flushed to disk and renamed to `path`, so `path` never
// holds a half-written file.  `progress` (may be empty) receives the fraction written in [0, 1];
// returning false cancels: the temporary file is removed and Error(CANCELLED) thrown.
// Throws Error(INVALID_ARGUMENT) for a tensor whose byte size does not match its shape and dtype
// (or a quantised one whose last dimension is not a multiple of 32, or a reserved or empty name),
// and Error(IO) naming the path when the file cannot be written; the temporary file is removed on
// every failure.
void write_safetensors(const std::string& path, const TensorSet& tensors,
                       const std::map<std::string, std::string>& metadata,
                       const std::function<bool(float)>& progress);

}  // namespace rwkvrt
