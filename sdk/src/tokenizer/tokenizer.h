// Tokenizers: text (or raw bytes) to token ids and back.  Three kinds exist, matching the
// vocabularies RWKV models are trained with:
//   "world"  the RWKV World vocabulary (rwkv_vocab_v20230424.txt): greedy longest match over bytes;
//   "bpe"    a Hugging Face tokenizer.json byte-level BPE (RWKV-4 "Pile" models:
//   20B_tokenizer.json); "byte"   one token per byte (rwkv.cpp's tiny test models).
// Every tokenizer is immutable once built, and all its methods are safe to call from several
// threads at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace rwkvrt {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // The ids of `text`.  World and byte tokenizers take arbitrary bytes; the BPE tokenizer takes
  // UTF-8 text only, like the library it reproduces.  Special tokens written in the text (NeoX
  // "<|endoftext|>") are recognised; World has none.  Throws Error(INVALID_ARGUMENT) for malformed
  // UTF-8 given to BPE, or a byte that starts no token (only with an incomplete World vocabulary).
  virtual std::vector<int32_t> encode(std::string_view text) const = 0;

  // The bytes of ids[0..n), concatenated.  They may be invalid UTF-8 (a token may hold part of a
  // character): stream them through Utf8Stream to display them.  Control tokens (World id 0, NeoX
  // special tokens) contribute nothing.  Throws Error(INVALID_ARGUMENT) for an id outside the
  // vocabulary, naming it.
  virtual std::string decode(const int32_t* ids, size_t n) const = 0;

  // The bytes one token contributes to decoded text (decode of that id alone).
  virtual std::string token_bytes(int32_t id) const = 0;

  // One more than the largest id the tokenizer knows.  A model's vocabulary may be larger (World
  // models have 65536 rows for 65530 ids); ids past this one are not text.
  virtual size_t vocab_size() const = 0;

  // The end-of-text id: 0 for World (id 0 is reserved for it) and for the byte tokenizer (where it
  // is also the NUL byte, which rwkv.cpp's byte-level models use as their only control value);
  // for BPE the id of the special token "<|endoftext|>", or -1 if the vocabulary has none.
  virtual int32_t eos_id() const = 0;

  // "world", "bpe" or "byte".  A static string.
  virtual const char* kind() const = 0;
};

// Loads the tokenizer stored at `path`, recognising its kind from the contents: a Hugging Face
// tokenizer.json (a JSON object) or a World vocabulary (lines `<id> <literal> <nbytes>`).
// Throws Error(IO) if the file cannot be read, Error(FORMAT) for malformed contents (naming the
// file and, for a vocabulary, the line), Error(UNSUPPORTED) for a tokenizer.json this library
// cannot reproduce exactly (another model type, normalizer or pre-tokenizer).
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path);

// A World tokenizer from the text of a vocabulary file.  `source` names it in error messages.
std::unique_ptr<Tokenizer> make_world_tokenizer_from_text(std::string_view vocab_text,
                                                          const std::string& source = "<vocab>");

// A BPE tokenizer from the text of a Hugging Face tokenizer.json.  `source` names it in errors.
std::unique_ptr<Tokenizer> make_bpe_tokenizer_from_json(std::string_view json_text,
                                                        const std::string& source = "<json>");

// The byte-level tokenizer: 256 ids, id = byte value, both ways, with no merges.  eos_id() is 0.
std::unique_ptr<Tokenizer> make_byte_tokenizer();

}  // namespace rwkvrt
