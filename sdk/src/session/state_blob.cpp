#include "session/state_blob.h"

#include <zlib.h>

#include <cstring>
#include <string>

#include "core/error.h"

namespace rwkvrt {
namespace {

constexpr char kMagic[8] = {'R', 'W', 'K', 'V', 'S', 'T', 'A', 'T'};

void put32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = uint8_t(v >> (8 * i));
}
void put64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = uint8_t(v >> (8 * i));
}
uint32_t get32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t(p[i]) << (8 * i);
  return v;
}
uint64_t get64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t(p[i]) << (8 * i);
  return v;
}

uint32_t crc32_of(const uint8_t* p, size_t n) {
  uLong crc = crc32(0L, Z_NULL, 0);
  while (n > 0) {  // zlib takes uInt lengths
    const uInt chunk = n > (1u << 30) ? (1u << 30) : uInt(n);
    crc = crc32(crc, p, chunk);
    p += chunk;
    n -= chunk;
  }
  return uint32_t(crc);
}

std::string describe(uint32_t version, uint32_t L, uint32_t C, uint32_t A, uint32_t H,
                     uint32_t N) {
  return fmt::format("RWKV {}.{} with {} layers, width {}, attention {}, {} heads of {}",
                     version / 10, version % 10, L, C, A, H, N);
}

}  // namespace

size_t state_blob_size(const Model& model) {
  return kStateBlobHeader + model.state_floats() * 4 + 4;
}

void write_state_blob(const Model& model, const float* state, uint8_t* out) {
  const ModelConfig& c = model.config();
  std::memset(out, 0, kStateBlobHeader);
  std::memcpy(out, kMagic, 8);
  put32(out + 8, kStateBlobVersion);
  put32(out + 12, uint32_t(kStateBlobHeader));
  put32(out + 16, uint32_t(c.version));
  put32(out + 20, c.n_layer);
  put32(out + 24, c.n_embd);
  put32(out + 28, c.n_att);
  put32(out + 32, c.n_head);
  put32(out + 36, c.head_size);
  put64(out + 40, model.fingerprint());
  const uint64_t n = model.state_floats();
  put64(out + 48, n);
  uint8_t* data = out + kStateBlobHeader;
  for (uint64_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, &state[i], 4);
    put32(data + 4 * i, bits);
  }
  const size_t body = kStateBlobHeader + 4 * n;
  put32(out + body, crc32_of(out, body));
}

std::vector<float> read_state_blob(const Model& model, const void* blob, size_t size) {
  const auto* p = static_cast<const uint8_t*>(blob);
  if (size < kStateBlobHeader + 4 || std::memcmp(p, kMagic, 8) != 0)
    fail(RWKVRT_ERR_FORMAT, "not an rwkvrt state blob ({} bytes; expected the 'RWKVSTAT' magic)",
         size);
  const uint32_t version = get32(p + 8);
  if (version != kStateBlobVersion)
    fail(RWKVRT_ERR_FORMAT, "state blob format version {} is not supported (this library reads {})",
         version, kStateBlobVersion);
  if (get32(p + 12) != kStateBlobHeader)
    fail(RWKVRT_ERR_FORMAT, "state blob header size {} is invalid", get32(p + 12));
  const uint64_t n = get64(p + 48);
  if (n > (size - kStateBlobHeader - 4) / 4 || kStateBlobHeader + 4 * n + 4 != size)
    fail(RWKVRT_ERR_FORMAT, "state blob is {} bytes but its header announces {} values ({} bytes)",
         size, n, n <= (uint64_t(1) << 60) ? kStateBlobHeader + 4 * n + 4 : 0);
  const size_t body = kStateBlobHeader + 4 * n;
  const uint32_t stored = get32(p + body), actual = crc32_of(p, body);
  if (stored != actual)
    fail(RWKVRT_ERR_CORRUPT, "state blob checksum mismatch (stored {:08x}, computed {:08x})",
         stored, actual);

  const ModelConfig& c = model.config();
  const uint32_t bv = get32(p + 16), bL = get32(p + 20), bC = get32(p + 24), bA = get32(p + 28),
                 bH = get32(p + 32), bN = get32(p + 36);
  if (bv != uint32_t(c.version) || bL != c.n_layer || bC != c.n_embd || bA != c.n_att ||
      bH != c.n_head || bN != c.head_size)
    fail(RWKVRT_ERR_STATE_MISMATCH, "the state is of a {} model, but this model is {}",
         describe(bv, bL, bC, bA, bH, bN),
         describe(uint32_t(c.version), c.n_layer, c.n_embd, c.n_att, c.n_head, c.head_size));
  if (get64(p + 40) != model.fingerprint())
    fail(RWKVRT_ERR_STATE_MISMATCH,
         "the state was saved from a different model of the same shape (fingerprint {:016x}, this "
         "model {:016x})",
         get64(p + 40), model.fingerprint());
  if (n != model.state_floats())
    fail(RWKVRT_ERR_STATE_MISMATCH, "the state holds {} values, this model needs {}", n,
         model.state_floats());
  std::vector<float> state(n);
  for (uint64_t i = 0; i < n; ++i) {
    const uint32_t bits = get32(p + kStateBlobHeader + 4 * i);
    std::memcpy(&state[i], &bits, 4);
  }
  return state;
}

}  // namespace rwkvrt
