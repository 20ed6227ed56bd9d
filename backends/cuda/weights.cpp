// Preparing weights: the stored precision and the device layout the matmul paths read.
//
// Precision kept (the stored dtype is want_dtype, or the source dtype for RWKVRT_BK_SAME):
//   * F32 stays F32 (true fp32 compute), F16 and BF16 stay as they are.
//   * Conversions between types go through fp32 on the host with the rounding of
//     dtype_convert.h (nearest-even for f16/bf16, ggml's for the block types).
//   * Block types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) keep their exact values: each block of 32 is
//     stored as 32 int8 codes plus (d, m) in fp32, value = float(code)·d + m, which is the
//     reference dequantisation bit for bit (the product is exact, the offset rounds once).
//     1.25 bytes per value: less than f16 and exact, where an f16 copy would round d·q.
// Layout: dense rows padded with zeros to a multiple of 8 elements (16-byte vectors, and the
// leading dimension tensor cores want); codes [N][K] and scales [N][K/32] (K % 32 == 0).
#include "weights.h"

#include <cstddef>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "dtype_convert.h"

namespace rwkvrt::cuda {
namespace {

bool is_block(rwkvrt_bk_dtype t) {
  return quant_block_bytes(t) != 0;
}
bool is_known(rwkvrt_bk_dtype t) {
  return t == RWKVRT_BK_F32 || t == RWKVRT_BK_F16 || t == RWKVRT_BK_BF16 || is_block(t);
}

uint64_t encoded_bytes(rwkvrt_bk_dtype t, uint64_t cols) {
  if (t == RWKVRT_BK_F32) return cols * 4;
  if (t == RWKVRT_BK_F16 || t == RWKVRT_BK_BF16) return cols * 2;
  return cols / kQuantBlock * quant_block_bytes(t);
}

uint16_t rd16(const uint8_t* p) {
  return uint16_t(p[0] | (p[1] << 8));
}
uint32_t rd32(const uint8_t* p) {
  return uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24);
}

// One ggml block as 32 codes and (d, m) with value j = float(code j)·d + m.
void block_to_codes(rwkvrt_bk_dtype t, const uint8_t* b, int8_t* code, float2* dm) {
  const float d = f16_to_f32(rd16(b));
  float m = 0.0f;
  switch (t) {
    case RWKVRT_BK_Q4_0:
      for (int j = 0; j < 16; ++j) {
        code[j] = int8_t((b[2 + j] & 15) - 8);
        code[j + 16] = int8_t((b[2 + j] >> 4) - 8);
      }
      break;
    case RWKVRT_BK_Q4_1:
      m = f16_to_f32(rd16(b + 2));
      for (int j = 0; j < 16; ++j) {
        code[j] = int8_t(b[4 + j] & 15);
        code[j + 16] = int8_t(b[4 + j] >> 4);
      }
      break;
    case RWKVRT_BK_Q5_0:
    case RWKVRT_BK_Q5_1: {
      const bool one = t == RWKVRT_BK_Q5_1;
      if (one) m = f16_to_f32(rd16(b + 2));
      const uint32_t qh = rd32(b + (one ? 4 : 2));
      const uint8_t* qs = b + (one ? 8 : 6);
      const int bias = one ? 0 : 16;
      for (int j = 0; j < 16; ++j) {
        code[j] = int8_t(int((qs[j] & 15) | (((qh >> j) & 1u) << 4)) - bias);
        code[j + 16] = int8_t(int((qs[j] >> 4) | (((qh >> (j + 16)) & 1u) << 4)) - bias);
      }
      break;
    }
    case RWKVRT_BK_Q8_0:
      for (int j = 0; j < 32; ++j) code[j] = int8_t(b[2 + j]);
      break;
    default:
      break;
  }
  dm->x = d;
  dm->y = m;
}

WeightStorage storage_of(rwkvrt_bk_dtype t) {
  switch (t) {
    case RWKVRT_BK_F32:
      return WeightStorage::F32;
    case RWKVRT_BK_F16:
      return WeightStorage::F16;
    case RWKVRT_BK_BF16:
      return WeightStorage::BF16;
    default:
      return WeightStorage::Codes;
  }
}

// Encodes n fp32 values as f16/bf16/f32 (dense types only).
void encode_dense(rwkvrt_bk_dtype t, const float* src, uint64_t n, uint8_t* dst) {
  if (t == RWKVRT_BK_F32) {
    std::memcpy(dst, src, n * 4);
    return;
  }
  for (uint64_t i = 0; i < n; ++i) {
    const uint16_t h = t == RWKVRT_BK_F16 ? f32_to_f16(src[i]) : f32_to_bf16(src[i]);
    std::memcpy(dst + 2 * i, &h, 2);
  }
}

// Returns once the bytes are in device memory.  A copy from pageable memory may return while its
// DMA is still running on the legacy stream, which the plugin's non-blocking streams do not wait
// for; synchronising with that stream closes the window, so kernels may treat a prepared weight as
// immutable data that no stream is producing (the GEMV reads its first weights before waiting
// for the kernel it is chained behind).
int upload(void* dst, const void* src, uint64_t bytes, const std::string& name) {
  gpuError_t e = gpuMemcpy(dst, src, bytes, gpuMemcpyHostToDevice);
  if (e == gpuSuccess) e = gpuLegacyStreamSynchronize();
  if (e == gpuSuccess) return RWKVRT_BK_OK;
  return set_error(RWKVRT_BK_ERROR,
                   "weight '" + name + "': upload failed: " + gpuGetErrorString(e));
}

int alloc(void** p, uint64_t bytes, const std::string& name) {
  if (gpuMalloc(p, bytes) == gpuSuccess) return RWKVRT_BK_OK;
  (void)gpuGetLastError();
  *p = nullptr;
  return set_error(RWKVRT_BK_OUT_OF_MEMORY, "cannot allocate " + std::to_string(bytes) +
                                                " bytes of device memory for weight '" + name +
                                                "'");
}

int prepare_dense(const rwkvrt_bk_weight_desc& d, rwkvrt_bk_weight* w) {
  const uint64_t N = d.rows, K = d.cols;
  const uint64_t elem = w->storage == WeightStorage::F32 ? 4 : 2;
  w->kp = (K + 7) / 8 * 8;
  w->bytes = N * w->kp * elem;
  int rc = alloc(&w->data, w->bytes, w->name);
  if (rc != RWKVRT_BK_OK) return rc;
  if (d.src_dtype == w->dtype && w->kp == K)  // already in the device layout: no host copy
    return upload(w->data, d.src, w->bytes, w->name);
  const auto* src = static_cast<const uint8_t*>(d.src);
  const uint64_t src_row = encoded_bytes(d.src_dtype, K);
  std::vector<uint8_t> host(w->bytes, 0);
  std::vector<float> row(d.src_dtype == w->dtype ? 0 : K);
  for (uint64_t n = 0; n < N; ++n) {
    uint8_t* out = host.data() + n * w->kp * elem;
    if (d.src_dtype == w->dtype) {
      std::memcpy(out, src + n * src_row, K * elem);
    } else {
      convert_to_f32(d.src_dtype, src + n * src_row, row.data(), K);
      encode_dense(w->dtype, row.data(), K, out);
    }
  }
  return upload(w->data, host.data(), w->bytes, w->name);
}

int prepare_codes(const rwkvrt_bk_weight_desc& d, rwkvrt_bk_weight* w) {
  const uint64_t N = d.rows, K = d.cols, nb = K / kQuantBlock;
  const uint32_t bb = quant_block_bytes(w->dtype);
  w->kp = K;
  const uint64_t code_bytes = N * K, scale_bytes = N * nb * sizeof(float2);
  w->bytes = code_bytes + scale_bytes;
  std::vector<int8_t> codes(code_bytes);
  std::vector<float2> scales(N * nb);
  const auto* src = static_cast<const uint8_t*>(d.src);
  const uint64_t src_row = encoded_bytes(d.src_dtype, K);
  std::vector<float> row(d.src_dtype == w->dtype ? 0 : K);
  std::vector<uint8_t> blocks(d.src_dtype == w->dtype ? 0 : nb * bb);
  for (uint64_t n = 0; n < N; ++n) {
    const uint8_t* b = src + n * src_row;
    if (d.src_dtype != w->dtype) {  // requantise through fp32 with ggml's rounding
      convert_to_f32(d.src_dtype, b, row.data(), K);
      quantize_from_f32(w->dtype, row.data(), blocks.data(), K);
      b = blocks.data();
    }
    for (uint64_t j = 0; j < nb; ++j)
      block_to_codes(w->dtype, b + j * bb, codes.data() + n * K + j * kQuantBlock,
                     &scales[n * nb + j]);
  }
  int rc = alloc(&w->data, code_bytes, w->name);
  if (rc != RWKVRT_BK_OK) return rc;
  void* sp = nullptr;
  rc = alloc(&sp, scale_bytes, w->name);
  if (rc != RWKVRT_BK_OK) return rc;
  w->scales = static_cast<float2*>(sp);
  rc = upload(w->data, codes.data(), code_bytes, w->name);
  return rc != RWKVRT_BK_OK ? rc : upload(w->scales, scales.data(), scale_bytes, w->name);
}

}  // namespace

int weight_prepare(rwkvrt_bk_context* ctx, const rwkvrt_bk_weight_desc& d, rwkvrt_bk_weight** out) {
  const std::string name = d.name ? d.name : "";
  if (d.rows == 0 || d.cols == 0)
    return set_error(RWKVRT_BK_INVALID, "weight '" + name + "' has an empty shape");
  if (!is_known(d.src_dtype))
    return set_error(RWKVRT_BK_UNSUPPORTED, "weight '" + name + "': unknown source dtype " +
                                                std::to_string(int(d.src_dtype)));
  const rwkvrt_bk_dtype stored = d.want_dtype == RWKVRT_BK_SAME ? d.src_dtype : d.want_dtype;
  if (!is_known(stored))
    return set_error(RWKVRT_BK_UNSUPPORTED, "weight '" + name + "': unknown requested dtype " +
                                                std::to_string(int(d.want_dtype)));
  if ((is_block(d.src_dtype) || is_block(stored)) && d.cols % kQuantBlock != 0)
    return set_error(RWKVRT_BK_INVALID, "weight '" + name +
                                            "': block types need a column count that is a "
                                            "multiple of 32, got " +
                                            std::to_string(d.cols));
  // matmul_precision was appended in revision 2 of the ABI: older hosts pass shorter descriptors.
  const uint32_t precision =
      d.struct_size >= offsetof(rwkvrt_bk_weight_desc, matmul_precision) + sizeof(uint32_t)
          ? d.matmul_precision
          : uint32_t(RWKVRT_BK_MATMUL_EXACT);
  if (precision != RWKVRT_BK_MATMUL_EXACT &&
      d.matmul_precision != RWKVRT_BK_MATMUL_ROUNDED_ACTIVATIONS)
    return set_error(RWKVRT_BK_INVALID, "weight '" + name + "': unknown matmul precision " +
                                            std::to_string(precision));
  if (d.rows > (uint64_t(1) << 31) || d.cols > (uint64_t(1) << 31))
    return set_error(RWKVRT_BK_UNSUPPORTED, "weight '" + name + "' is too large for cuBLAS");
  const gpuError_t e = use_device(ctx->device);
  if (e != gpuSuccess) return check(e, "weight_prepare");

  auto* w = new (std::nothrow) rwkvrt_bk_weight();
  if (!w) return set_error(RWKVRT_BK_OUT_OF_MEMORY, "out of host memory");
  w->name = name;
  w->dtype = stored;
  w->storage = storage_of(stored);
  w->rows = d.rows;
  w->cols = d.cols;
  w->round_activations = precision == RWKVRT_BK_MATMUL_ROUNDED_ACTIVATIONS;
  int rc = RWKVRT_BK_OUT_OF_MEMORY;
  try {
    rc = w->storage == WeightStorage::Codes ? prepare_codes(d, w) : prepare_dense(d, w);
  } catch (const std::bad_alloc&) {
    rc = set_error(RWKVRT_BK_OUT_OF_MEMORY,
                   "out of host memory while converting weight '" + name + "'");
  }
  if (rc != RWKVRT_BK_OK) {
    weight_free(w);
    return rc;
  }
  *out = w;
  return RWKVRT_BK_OK;
}

void weight_free(rwkvrt_bk_weight* w) {
  if (!w) return;
  if (w->data) gpuFree(w->data);
  if (w->scales) gpuFree(w->scales);
  delete w;
}

}  // namespace rwkvrt::cuda
