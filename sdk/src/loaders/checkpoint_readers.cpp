#include "loaders/checkpoint_readers.h"

#include <cstdio>
#include <cstring>

#include "core/error.h"
#include "core/mapped_file.h"

namespace rwkvrt {

TensorSet read_checkpoint(const std::string& path) {
  uint8_t head[16] = {0};
  size_t got = 0;
  {
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) fail(RWKVRT_ERR_IO, "cannot open '{}': {}", path, std::strerror(errno));
    got = std::fread(head, 1, sizeof(head), f);
    std::fclose(f);
  }
  if (got >= 4 && head[0] == 'P' && head[1] == 'K' && head[2] == 3 && head[3] == 4)
    return read_pth(path);
  if (got >= 4 && head[0] == 0x66 && head[1] == 0x6d && head[2] == 0x67 && head[3] == 0x67)
    return read_rwkvcpp(path);
  // safetensors: u64 little-endian header length, then a JSON object.
  if (got >= 9 && head[8] == '{') return read_safetensors(path);
  std::string hex;
  for (size_t i = 0; i < got && i < 8; ++i) hex += fmt::format("{:02x} ", head[i]);
  fail(RWKVRT_ERR_FORMAT,
       "'{}' is not a model file rwkvrt can read (first bytes: {}); expected a PyTorch .pth "
       "(zip), a .safetensors file or an rwkv.cpp .bin",
       path, got ? hex : std::string("none, the file is empty"));
}

}  // namespace rwkvrt
