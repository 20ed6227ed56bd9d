// Preparing weights: the stored precision and the row layout the matmul kernels read.
//
// Stored dtype (see README.md for the measurements behind it):
//   * F32, BF16, F16 sources are kept as they are: the GEMV widens bf16 (a shift) and fp16
//     (vcvtph2ps) exactly on the fly, so narrower storage only saves bandwidth, never accuracy.
//   * Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 sources keep their ggml blocks: the GEMV decodes a block into
//     the very floats the reference dequantisation produces, and the prefill path decodes panels
//     of rows into fp32 for oneDNN, so no type needs a dequantised copy in memory.
//   * want_dtype other than RWKVRT_BK_SAME converts through fp32 to the requested type (rounding
//     to nearest even for bf16/fp16, ggml rounding for the block types).
// Layout: row n starts at n·row_bytes, row_bytes = the row's encoded size rounded up to 64 bytes,
// the padding zeroed, the whole matrix in one 64-byte (huge-page for large ones) aligned block.
#include <cstring>
#include <string>
#include <vector>

#include "dtype_convert.h"
#include "kernels.h"

namespace rwkvrt::cpu {
namespace {

bool is_block_type(rwkvrt_bk_dtype t) {
  return quant_block_bytes(t) != 0;
}

bool is_known(rwkvrt_bk_dtype t) {
  return t == RWKVRT_BK_F32 || t == RWKVRT_BK_F16 || t == RWKVRT_BK_BF16 || is_block_type(t);
}

// Bytes of `cols` values of type t (cols a multiple of 32 for block types).
uint64_t encoded_bytes(rwkvrt_bk_dtype t, uint64_t cols) {
  if (t == RWKVRT_BK_F32) return cols * 4;
  if (t == RWKVRT_BK_F16 || t == RWKVRT_BK_BF16) return cols * 2;
  return cols / kQuantBlock * quant_block_bytes(t);
}

// Encodes one row of fp32 values as type t.
void encode_row(rwkvrt_bk_dtype t, const float* src, uint64_t cols, uint8_t* dst) {
  switch (t) {
    case RWKVRT_BK_F32:
      std::memcpy(dst, src, cols * 4);
      return;
    case RWKVRT_BK_F16:
    case RWKVRT_BK_BF16:
      for (uint64_t i = 0; i < cols; ++i) {
        const uint16_t h = t == RWKVRT_BK_F16 ? f32_to_f16(src[i]) : f32_to_bf16(src[i]);
        std::memcpy(dst + 2 * i, &h, 2);
      }
      return;
    default:
      quantize_from_f32(t, src, dst, cols);
  }
}

}  // namespace

int prepare_weight(const rwkvrt_bk_weight_desc& d, rwkvrt_bk_weight* w) {
  w->name = d.name ? d.name : "";
  w->rows = d.rows;
  w->cols = d.cols;
  if (d.rows == 0 || d.cols == 0)
    return set_error(RWKVRT_BK_INVALID, "weight '" + w->name + "' has an empty shape");
  if (!is_known(d.src_dtype))
    return set_error(RWKVRT_BK_UNSUPPORTED, "weight '" + w->name + "': unknown source dtype " +
                                                std::to_string(int(d.src_dtype)));
  const rwkvrt_bk_dtype stored = d.want_dtype == RWKVRT_BK_SAME ? d.src_dtype : d.want_dtype;
  if (!is_known(stored))
    return set_error(RWKVRT_BK_UNSUPPORTED, "weight '" + w->name + "': unknown requested dtype " +
                                                std::to_string(int(d.want_dtype)));
  if ((is_block_type(d.src_dtype) || is_block_type(stored)) && d.cols % kQuantBlock != 0)
    return set_error(RWKVRT_BK_INVALID, "weight '" + w->name + "': block types need a column " +
                                            "count that is a multiple of 32, got " +
                                            std::to_string(d.cols));
  const uint64_t row_used = encoded_bytes(stored, d.cols);
  w->dtype = stored;
  w->row_bytes = (row_used + 63) / 64 * 64;
  if (d.rows > UINT64_MAX / w->row_bytes)
    return set_error(RWKVRT_BK_INVALID, "weight '" + w->name + "' is too large");
  w->bytes = d.rows * w->row_bytes;
  w->data = aligned_alloc_bytes(w->bytes);
  if (!w->data)
    return set_error(RWKVRT_BK_OUT_OF_MEMORY, "cannot allocate " + std::to_string(w->bytes) +
                                                  " bytes for weight '" + w->name + "'");
  const auto* src = static_cast<const uint8_t*>(d.src);
  auto* dst = static_cast<uint8_t*>(w->data);
  const uint64_t src_row = encoded_bytes(d.src_dtype, d.cols);
  std::vector<float> values(stored == d.src_dtype ? 0 : d.cols);
  for (uint64_t n = 0; n < d.rows; ++n) {
    uint8_t* row = dst + n * w->row_bytes;
    if (stored == d.src_dtype) {
      std::memcpy(row, src + n * src_row, row_used);
    } else {
      convert_to_f32(d.src_dtype, src + n * src_row, values.data(), d.cols);
      encode_row(stored, values.data(), d.cols, row);
    }
    std::memset(row + row_used, 0, w->row_bytes - row_used);
  }
  return RWKVRT_BK_OK;
}

}  // namespace rwkvrt::cpu
