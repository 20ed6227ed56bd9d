// The byte-level tokenizer of rwkv.cpp's tiny models: a vocabulary of 256 where id = byte value.
#include "core/error.h"
#include "tokenizer/tokenizer.h"

namespace rwkvrt {
namespace {

class ByteTokenizer final : public Tokenizer {
 public:
  std::vector<int32_t> encode(std::string_view text) const override {
    std::vector<int32_t> ids(text.size());
    for (size_t i = 0; i < text.size(); ++i) ids[i] = static_cast<uint8_t>(text[i]);
    return ids;
  }

  std::string decode(const int32_t* ids, size_t n) const override {
    std::string out(n, '\0');
    for (size_t i = 0; i < n; ++i) out[i] = static_cast<char>(checked(ids[i]));
    return out;
  }

  std::string token_bytes(int32_t id) const override {
    return std::string(1, static_cast<char>(checked(id)));
  }

  size_t vocab_size() const override { return 256; }
  int32_t eos_id() const override { return 0; }
  const char* kind() const override { return "byte"; }

 private:
  static int32_t checked(int32_t id) {
    if (id < 0 || id > 255) {
      fail(RWKVRT_ERR_INVALID_ARGUMENT, "token id {} is outside the byte vocabulary (0..255)", id);
    }
    return id;
  }
};

}  // namespace

std::unique_ptr<Tokenizer> make_byte_tokenizer() {
  return std::make_unique<ByteTokenizer>();
}

}  // namespace rwkvrt
