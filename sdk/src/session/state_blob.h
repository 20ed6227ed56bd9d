// The serialised state: a self-describing, checksummed, little-endian blob that any backend on any
// machine can load into a session of the same model.
//
//   offset  size  field
//        0     8  magic "RWKVSTAT"
//        8     4  format version (1)
//       12     4  header size in bytes (64)
//       16     4  RWKV version x 10 (40, 50, 51, 52, 60, 70)
//       20     4  n_layer        24  4  n_embd      28  4  n_att
//       32     4  n_head         36  4  head_size
//       40     8  model fingerprint (Model::fingerprint)
//       48     8  number of fp32 values that follow (the canonical state)
//       56     8  reserved, zero
//       64  4·n  the canonical state, fp32
//   64+4·n     4  CRC-32 (zlib polynomial) of every byte before it
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "model/model.h"

namespace rwkvrt {

constexpr uint32_t kStateBlobVersion = 1;
constexpr size_t kStateBlobHeader = 64;

// Size in bytes of the blob of `model`'s state.
size_t state_blob_size(const Model& model);

// Writes the blob of `state` (model.state_floats() values) into `out` (state_blob_size bytes).
void write_state_blob(const Model& model, const float* state, uint8_t* out);

// Validates `blob` completely against `model` and returns the canonical state it holds.
// Throws Error: FORMAT (not a state blob, truncated, unknown version), CORRUPT (checksum),
// STATE_MISMATCH (saved from another model: the message says which dims or the fingerprint differ).
std::vector<float> read_state_blob(const Model& model, const void* blob, size_t size);

}  // namespace rwkvrt
