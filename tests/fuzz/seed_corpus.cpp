// rwkvrt_fuzz_seeds <out_dir>: writes the seed corpus of every fuzz target, one directory per
// target under <out_dir> (pth, safetensors, rwkvcpp, pickle, zip, state_blob, model_load).
//
// Every seed is made here from the project's own writers (pth_writer, write_safetensors,
// Session::save_state) or, for rwkv.cpp files, by a converter following docs/FORMATS.md; nothing
// is copied from test data.  The seeds are small valid files covering each format's variants
// (zip64, alignment, data descriptors, deflate, typed and untyped storages, every dtype, every
// RWKV version's rwkv.cpp transforms), whole tiny models of RWKV 4, 5.2, 6 and 7 that load and
// run, and truncated copies, which start the fuzzer on the error paths.  Seeds are deterministic:
// the same build writes the same bytes.  Existing files of the same name are overwritten.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "dtype_convert.h"
#include "fuzz_support.h"
#include "loaders/safetensors_writer.h"
#include "loaders/tensor_set.h"
#include "model/model.h"
#include "model/synthetic_model.h"
#include "session/session.h"
#include "support/pth_writer.h"
#include "support/test_data.h"

namespace rwkvrt::fuzz {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

class Corpus {
 public:
  explicit Corpus(fs::path root) : root_(std::move(root)) {}

  void add(const std::string& target, const std::string& name, const Bytes& bytes) {
    const fs::path dir = root_ / target;
    fs::create_directories(dir);
    test::write_file((dir / name).string(), bytes);
    ++count_[target];
  }
  void add(const std::string& target, const std::string& name, const std::string& bytes) {
    add(target, name, Bytes(bytes.begin(), bytes.end()));
  }
  // The file and copies cut short at a few places, down to a bare header.
  void add_truncated(const std::string& target, const std::string& name, const Bytes& bytes) {
    add(target, name, bytes);
    if (bytes.empty()) return;
    for (size_t cut : {bytes.size() - 1, bytes.size() * 3 / 4, bytes.size() / 2, size_t(30)}) {
      if (cut == 0 || cut >= bytes.size()) continue;
      add(target, name + ".cut" + std::to_string(cut), Bytes(bytes.begin(), bytes.begin() + cut));
    }
  }
  void report() const {
    for (const auto& [target, n] : count_) std::printf("%-12s %zu seeds\n", target.c_str(), n);
  }

 private:
  fs::path root_;
  std::map<std::string, size_t> count_;
};

// splitmix64, as in the synthetic model: deterministic values, no std::random distributions
// (whose output differs between standard libraries).
struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  float uniform(float lo, float hi) { return lo + (hi - lo) * float(next() >> 40) * 0x1p-24f; }
};

uint64_t numel_of(const std::vector<int64_t>& shape) {
  uint64_t n = 1;
  for (int64_t d : shape) n *= uint64_t(d);
  return n;
}

// Encodes fp32 values as `dtype` (for block types, n must be a multiple of 32).
Bytes encode(DType dtype, const std::vector<float>& v) {
  Bytes out(dtype_bytes_for(dtype, v.size()));
  switch (dtype) {
    case DType::F32:
      if (!v.empty()) std::memcpy(out.data(), v.data(), out.size());
      break;
    case DType::F16:
    case DType::BF16:
      for (size_t i = 0; i < v.size(); ++i) {
        const uint16_t h = dtype == DType::F16 ? f32_to_f16(v[i]) : f32_to_bf16(v[i]);
        std::memcpy(out.data() + 2 * i, &h, 2);
      }
      break;
    default:
      quantize_from_f32(static_cast<rwkvrt_bk_dtype>(dtype), v.data(), out.data(), v.size());
  }
  return out;
}

std::vector<float> decode(const Tensor& t) {
  std::vector<float> v(t.numel());
  convert_to_f32(static_cast<rwkvrt_bk_dtype>(t.dtype), t.data, v.data(), v.size());
  return v;
}

void add_tensor(TensorSet& set, const std::string& name, DType dtype, std::vector<int64_t> shape,
                const std::vector<float>& values) {
  const Bytes bytes = encode(dtype, values);
  Tensor t;
  t.name = name;
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.nbytes = bytes.size();
  uint8_t* data = set.allocate(bytes.size());
  if (!bytes.empty()) std::memcpy(data, bytes.data(), bytes.size());
  t.data = data;
  set.add(std::move(t));
}

// Official-layout checkpoints of RWKV 4, 5.2 and 6 with random weights (make_synthetic_v7 covers
// 7), in the shapes detect_config checks, small enough to fuzz whole: width 4, two heads of 2,
// FFN width 32 (so that rwkv.cpp files can quantise one matrix along a 32-value row).
class OfficialBuilder {
 public:
  static constexpr int64_t C = 4, A = 4, H = 2, N = 2, F = 32, V = 8, Dm = 2, Dd = 2;

  explicit OfficialBuilder(uint64_t seed) : rng_{seed} {}

  TensorSet build(int version, uint32_t layers, DType matrix_dtype) {
    TensorSet set;
    set.metadata["format"] = "synthetic";
    matrix_ = matrix_dtype;
    mat(set, "emb.weight", {V, C});
    vec(set, "blocks.0.ln0.weight", {C}, 0.8f, 1.2f);
    vec(set, "blocks.0.ln0.bias", {C}, -0.1f, 0.1f);
    for (uint32_t i = 0; i < layers; ++i) {
      const std::string b = "blocks." + std::to_string(i) + ".";
      const std::string at = b + "att.", ff = b + "ffn.";
      for (const char* ln : {"ln1", "ln2"}) {
        vec(set, b + ln + ".weight", {C}, 0.8f, 1.2f);
        vec(set, b + ln + ".bias", {C}, -0.1f, 0.1f);
      }
      if (version == 6) {
        for (const char* m :
             {"time_maa_x", "time_maa_w", "time_maa_k", "time_maa_v", "time_maa_r", "time_maa_g"})
          vec(set, at + m, {1, 1, C}, 0.0f, 1.0f);
        vec(set, at + "time_maa_w1", {C, 5 * Dm}, -0.1f, 0.1f);
        vec(set, at + "time_maa_w2", {5, Dm, C}, -0.1f, 0.1f);
        vec(set, at + "time_decay", {1, 1, A}, -3.0f, 1.0f);
        vec(set, at + "time_decay_w1", {C, Dd}, -0.1f, 0.1f);
        vec(set, at + "time_decay_w2", {Dd, A}, -0.1f, 0.1f);
        vec(set, at + "time_faaaa", {H, N}, -0.5f, 0.5f);
      } else {
        for (const char* m : {"time_mix_k", "time_mix_v", "time_mix_r"})
          vec(set, at + m, {1, 1, C}, 0.0f, 1.0f);
        if (version == 5) {
          vec(set, at + "time_mix_g", {1, 1, C}, 0.0f, 1.0f);
          vec(set, at + "time_decay", {H, N}, -3.0f, 1.0f);
          vec(set, at + "time_faaaa", {H, N}, -0.5f, 0.5f);
        } else {
          vec(set, at + "time_decay", {A}, -3.0f, 1.0f);
          vec(set, at + "time_first", {A}, -0.5f, 0.5f);
        }
      }
      if (version != 4) {
        vec(set, at + "ln_x.weight", {A}, 0.8f, 1.2f);
        vec(set, at + "ln_x.bias", {A}, -0.1f, 0.1f);
        mat(set, at + "gate.weight", {A, C});
      }
      for (const char* w : {"key.weight", "value.weight", "receptance.weight"})
        mat(set, at + w, {A, C});
      mat(set, at + "output.weight", {C, A});
      const char* mix = version == 6 ? "time_maa_" : "time_mix_";
      vec(set, ff + mix + "k", {1, 1, C}, 0.0f, 1.0f);
      vec(set, ff + mix + "r", {1, 1, C}, 0.0f, 1.0f);
      mat(set, ff + "key.weight", {F, C});
      mat(set, ff + "receptance.weight", {C, C});
      mat(set, ff + "value.weight", {C, F});
    }
    vec(set, "ln_out.weight", {C}, 0.8f, 1.2f);
    vec(set, "ln_out.bias", {C}, -0.1f, 0.1f);
    mat(set, "head.weight", {V, C});
    return set;
  }

 private:
  std::vector<float> values(uint64_t n, float lo, float hi) {
    std::vector<float> v(n);
    for (float& x : v) x = rng_.uniform(lo, hi);
    return v;
  }
  void vec(TensorSet& set, const std::string& name, std::vector<int64_t> shape, float lo,
           float hi) {
    add_tensor(set, name, DType::F32, shape, values(numel_of(shape), lo, hi));
  }
  void mat(TensorSet& set, const std::string& name, std::vector<int64_t> shape) {
    add_tensor(set, name, matrix_, shape, values(numel_of(shape), -0.5f, 0.5f));
  }

  Rng rng_;
  DType matrix_ = DType::F32;
};

SyntheticShape small_v7(DType matrix_dtype) {
  SyntheticShape s;
  s.n_layer = 2;
  s.n_embd = 4;
  s.n_vocab = 8;
  s.head_size = 2;
  s.matrix_dtype = matrix_dtype;
  s.seed = 7;
  return s;
}

// ---- .pth ---------------------------------------------------------------------------------------

const char* torch_dtype(DType t) {
  switch (t) {
    case DType::F16:
      return "float16";
    case DType::BF16:
      return "bfloat16";
    default:
      return "float32";
  }
}

std::vector<test::PthTensor> pth_tensors(const TensorSet& set) {
  std::vector<test::PthTensor> out;
  for (const Tensor& t : set.tensors()) {
    test::PthTensor p;
    p.name = t.name;
    p.dtype = torch_dtype(t.dtype);
    p.shape = t.shape;
    p.data.assign(t.data, t.data + t.nbytes);
    out.push_back(std::move(p));
  }
  return out;
}

Bytes f32_data(std::vector<float> v) {
  return encode(DType::F32, v);
}

// A few tensors of every kind the reader distinguishes.
std::vector<test::PthTensor> small_pth() {
  std::vector<test::PthTensor> v(3);
  v[0].name = "emb.weight";
  v[0].shape = {2, 3};
  v[0].data = f32_data({1, 2, 3, 4, 5, 6});
  v[1].name = "blocks.0.ln1.weight";
  v[1].dtype = "float16";
  v[1].shape = {3};
  v[1].data = {0x00, 0x3c, 0x00, 0x40, 0x00, 0x42};
  v[2].name = "head.weight";
  v[2].dtype = "bfloat16";
  v[2].shape = {2, 2};
  v[2].data = {0x80, 0x3f, 0x00, 0x40, 0x40, 0x40, 0x80, 0x40};
  return v;
}

void pth_seeds(Corpus& corpus) {
  struct Variant {
    const char* name;
    std::vector<test::PthTensor> tensors;
    test::PthOptions options;
  };
  std::vector<Variant> variants;
  variants.push_back({"default", small_pth(), {}});
  {
    test::PthOptions o;
    o.ordered_dict = false;
    o.prefix = "tiny_model";
    variants.push_back({"plain_dict", small_pth(), o});
  }
  {
    test::PthOptions o;
    o.parameters = true;
    variants.push_back({"parameters", small_pth(), o});
  }
  {
    test::PthOptions o;
    o.untyped_v3 = true;
    variants.push_back({"untyped_v3", small_pth(), o});
  }
  {
    test::PthOptions o;
    o.zip.zip64 = true;
    variants.push_back({"zip64", small_pth(), o});
  }
  {
    test::PthOptions o;
    o.zip.align64 = false;
    o.zip.data_descriptor = false;
    o.zip.comment = "rwkvrt fuzz seed";
    variants.push_back({"unaligned_no_descriptor", small_pth(), o});
  }
  {
    test::PthOptions o;
    o.deflate_pickle = true;
    o.byteorder = "little";
    variants.push_back({"deflate_pickle", small_pth(), o});
  }
  {
    test::PthOptions o;
    o.byteorder = "big";
    variants.push_back({"big_endian", small_pth(), o});
  }
  {
    test::PthOptions o;
    o.omit_storages = {"1"};
    variants.push_back({"missing_storage", small_pth(), o});
  }
  {
    // Two views of one storage (the second at an offset), a strided view, an empty tensor, a
    // scalar and an element type rwkvrt refuses.
    std::vector<test::PthTensor> v = small_pth();
    test::PthTensor view = v[0];
    view.name = "blocks.0.att.key.weight";
    view.shape = {3};
    view.storage_offset = 3;
    view.storage_key = "0";
    v[0].storage_key = "0";
    v.push_back(view);
    test::PthTensor strided = v[0];
    strided.name = "strided";
    strided.shape = {3, 2};
    strided.stride = {1, 3};
    v.push_back(strided);
    test::PthTensor empty;
    empty.name = "empty";
    empty.shape = {0, 4};
    v.push_back(empty);
    test::PthTensor scalar;
    scalar.name = "scalar";
    scalar.data = f32_data({0.5f});
    v.push_back(scalar);
    test::PthTensor wide;
    wide.name = "int64";
    wide.dtype = "int64";
    wide.shape = {1};
    wide.data = Bytes(8, 1);
    v.push_back(wide);
    variants.push_back({"views", v, {}});
  }
  {
    std::vector<test::PthTensor> v = small_pth();
    v[2].declared_numel = 1000;  // more elements than the storage entry holds
    variants.push_back({"short_storage", v, {}});
  }
  variants.push_back({"empty_dict", {}, {}});

  for (const Variant& v : variants) {
    const Bytes file = test::pth_bytes(v.tensors, v.options);
    corpus.add_truncated("pth", std::string(v.name) + ".pth", file);
    corpus.add("zip", std::string(v.name) + ".pth", file);
    corpus.add("pickle", std::string(v.name) + ".pkl", test::pth_pickle(v.tensors, v.options));
  }
  const std::string pickle = test::pth_pickle(small_pth());
  for (size_t cut : {size_t(2), pickle.size() / 3, pickle.size() / 2, pickle.size() - 1})
    corpus.add("pickle", "default.pkl.cut" + std::to_string(cut), pickle.substr(0, cut));

  // Plain archives for the zip reader: deflated and stored entries, zip64, a comment.
  std::vector<test::ZipEntrySpec> entries = {{"a/stored.bin", std::string(100, 'x')},
                                             {"a/deflated.txt", "hello, deflate"},
                                             {"a/empty", ""}};
  entries[1].deflate = true;
  test::ZipWriteOptions plain;
  plain.align64 = false;
  plain.data_descriptor = false;
  corpus.add_truncated("zip", "plain.zip", test::zip_bytes(entries, plain));
  test::ZipWriteOptions z64;
  z64.zip64 = true;
  z64.comment = "zip64 with a comment";
  corpus.add_truncated("zip", "zip64.zip", test::zip_bytes(entries, z64));
}

// ---- safetensors --------------------------------------------------------------------------------

Bytes safetensors_file(const fs::path& scratch, const TensorSet& set,
                       const std::map<std::string, std::string>& metadata = {}) {
  const std::string path = (scratch / "seed.safetensors").string();
  write_safetensors(path, set, metadata, {});
  Bytes bytes = test::read_file(path);
  fs::remove(path);
  return bytes;
}

// A file with a hand-written header, for layouts the writer never produces.
Bytes safetensors_raw(const std::string& header, size_t data_bytes) {
  Bytes out(8 + header.size() + data_bytes, 0);
  for (int i = 0; i < 8; ++i) out[size_t(i)] = uint8_t(uint64_t(header.size()) >> (8 * i));
  std::memcpy(out.data() + 8, header.data(), header.size());
  return out;
}

void safetensors_seeds(Corpus& corpus, const fs::path& scratch) {
  Rng rng{11};
  auto random = [&](size_t n) {
    std::vector<float> v(n);
    for (float& x : v) x = rng.uniform(-1.0f, 1.0f);
    return v;
  };
  TensorSet set;
  add_tensor(set, "emb.weight", DType::F32, {2, 3}, random(6));
  add_tensor(set, "blocks.0.ln1.weight", DType::F16, {3}, random(3));
  add_tensor(set, "head.weight", DType::BF16, {1, 1, 3}, random(3));
  add_tensor(set, "empty", DType::F32, {0, 5}, {});
  add_tensor(set, "scalar", DType::F32, {}, random(1));
  for (DType q : {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0})
    add_tensor(set, std::string("quantised.") + dtype_name(q), q, {2, 32}, random(64));
  corpus.add_truncated(
      "safetensors", "dtypes.safetensors",
      safetensors_file(scratch, set, {{"rwkvrt.group_norm_eps", "1e-05"}, {"format", "pt"}}));

  corpus.add("safetensors", "overlap.safetensors",
             safetensors_raw(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                             R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                             16));
  corpus.add("safetensors", "duplicate.safetensors",
             safetensors_raw(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                             R"("a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                             4));
  corpus.add("safetensors", "other_dtype.safetensors",
             safetensors_raw(R"({"__metadata__":{"k":"v"},)"
                             R"("i":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})",
                             8));
  corpus.add("safetensors", "huge_shape.safetensors",
             safetensors_raw(R"({"z":{"dtype":"F32","shape":[0,9223372036854775807,2],)"
                             R"("data_offsets":[0,0]}})",
                             0));
}

// ---- rwkv.cpp .bin ------------------------------------------------------------------------------

enum class Arch { v4, v5, v6, v7 };

struct BinTensor {
  std::string name;
  std::vector<int64_t> shape;  // PyTorch order
  std::vector<float> values;
};

std::vector<float> transpose_last2(const std::vector<float>& v, const std::vector<int64_t>& shape) {
  const size_t rows = size_t(shape[shape.size() - 2]), cols = size_t(shape.back());
  const size_t batch = v.size() / (rows * cols);
  std::vector<float> out(v.size());
  for (size_t b = 0; b < batch; ++b)
    for (size_t i = 0; i < rows; ++i)
      for (size_t j = 0; j < cols; ++j)
        out[b * rows * cols + j * rows + i] = v[b * rows * cols + i * cols + j];
  return out;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The tensors rwkv.cpp's converter writes for an official checkpoint (docs/FORMATS.md): squeezed
// time vectors, v4/v5 decays stored as −exp(w) and exp(−exp(w)), per-head (H, S, 1) layouts,
// transposed LoRA matrices, and v7's six token-shift mixes concatenated into att.x_rwkvag.
std::vector<BinTensor> rwkvcpp_layout(const TensorSet& official, Arch arch) {
  std::vector<BinTensor> out;
  std::map<std::string, std::vector<float>> v7_mixes;
  for (const Tensor& t : official.tensors()) {
    BinTensor b{t.name, t.shape, decode(t)};
    const std::string& n = t.name;
    const int64_t last = t.shape.empty() ? 1 : t.shape.back();
    if (arch == Arch::v7) {
      if (n.rfind("blocks.0.att.v", 0) == 0 && n.size() == std::string("blocks.0.att.v0").size())
        continue;  // layer 0 has no v0/v1/v2
      bool mix = false;
      for (const char* m : {".att.x_r", ".att.x_w", ".att.x_k", ".att.x_v", ".att.x_a", ".att.x_g"})
        mix |= ends_with(n, m);
      if (mix) {
        const std::string key = n.substr(0, n.size() - 1) + "rwkvag";
        auto& all = v7_mixes[key];
        all.insert(all.end(), b.values.begin(), b.values.end());
        if (all.size() == 6 * size_t(last)) out.push_back({key, {6, 1, last}, all});
        continue;
      }
      for (const char* l :
           {".att.w1", ".att.w2", ".att.a1", ".att.a2", ".att.v1", ".att.v2", ".att.g1", ".att.g2"})
        if (ends_with(n, l)) {
          b.values = transpose_last2(b.values, b.shape);
          std::swap(b.shape[0], b.shape[1]);
        }
      out.push_back(std::move(b));
      continue;
    }
    const int64_t H = OfficialBuilder::H, N = OfficialBuilder::N;
    if (arch == Arch::v4 && ends_with(n, ".att.time_decay")) {
      for (float& x : b.values) x = -std::exp(x);
    } else if (arch == Arch::v5 && ends_with(n, ".att.time_decay")) {
      for (float& x : b.values) x = std::exp(-std::exp(x));
      b.shape = {H, N, 1};
    } else if ((arch == Arch::v5 || arch == Arch::v6) &&
               (ends_with(n, ".att.time_faaaa") || ends_with(n, ".att.time_decay"))) {
      b.shape = {H, N, 1};
    } else if (arch == Arch::v6 &&
               (ends_with(n, ".att.time_maa_w1") || ends_with(n, ".att.time_decay_w1") ||
                ends_with(n, ".att.time_decay_w2") || ends_with(n, ".att.time_maa_w2"))) {
      b.values = transpose_last2(b.values, b.shape);
      std::swap(b.shape[b.shape.size() - 2], b.shape[b.shape.size() - 1]);
    } else if (n.find(".time_") != std::string::npos && b.shape.size() == 3) {
      b.shape = {last};
    }
    out.push_back(std::move(b));
  }
  return out;
}

void put32(Bytes& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(uint8_t(v >> (8 * i)));
}

uint32_t rwkvcpp_code(DType t) {
  switch (t) {
    case DType::F32:
      return 0;
    case DType::F16:
      return 1;
    case DType::Q4_0:
      return 2;
    case DType::Q4_1:
      return 3;
    case DType::Q5_0:
      return 7;
    case DType::Q5_1:
      return 8;
    case DType::Q8_0:
      return 9;
    default:
      return 0;
  }
}

// Writes an rwkv.cpp file: 2-D matrices in `matrices` (quantised along rows of 32 when the type is
// a block type and the row fits, else FP16), everything else FP32.
Bytes rwkvcpp_file(const std::vector<BinTensor>& tensors, uint32_t version, DType matrices,
                   uint32_t n_vocab, uint32_t n_embd, uint32_t n_layer) {
  Bytes out;
  for (uint32_t v : {0x67676d66u, version, n_vocab, n_embd, n_layer, rwkvcpp_code(matrices)})
    put32(out, v);
  for (const BinTensor& t : tensors) {
    DType dtype = DType::F32;
    if (t.shape.size() == 2 && matrices != DType::F32) {
      dtype = matrices;
      if (dtype_block_values(dtype) > 1 && (t.shape[1] % 32 != 0 || !ends_with(t.name, ".weight") ||
                                            t.name == "emb.weight" || t.name == "head.weight"))
        dtype = DType::F16;
    }
    put32(out, uint32_t(t.shape.size()));
    put32(out, uint32_t(t.name.size()));
    put32(out, rwkvcpp_code(dtype));
    for (size_t d = t.shape.size(); d-- > 0;) put32(out, uint32_t(t.shape[d]));  // ggml order
    out.insert(out.end(), t.name.begin(), t.name.end());
    const Bytes data = encode(dtype, t.values);
    out.insert(out.end(), data.begin(), data.end());
  }
  return out;
}

void rwkvcpp_seeds(Corpus& corpus) {
  Rng rng{5};
  auto random = [&](size_t n, float lo, float hi) {
    std::vector<float> v(n);
    for (float& x : v) x = rng.uniform(lo, hi);
    return v;
  };
  // Every data type, in both file versions (version 100 refuses the quantised ones).
  std::vector<BinTensor> mixed = {{"emb.weight", {2, 3}, random(6, -1, 1)},
                                  {"blocks.0.ln1.weight", {3}, random(3, -1, 1)},
                                  {"blocks.0.att.key.weight", {2, 32}, random(64, -1, 1)}};
  for (DType q : {DType::F16, DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0})
    corpus.add_truncated("rwkvcpp", std::string("types_") + dtype_name(q) + ".bin",
                         rwkvcpp_file(mixed, 101, q, 2, 3, 1));
  corpus.add("rwkvcpp", "version100_F32.bin", rwkvcpp_file(mixed, 100, DType::F32, 2, 3, 1));
  corpus.add("rwkvcpp", "version100_Q8_0.bin", rwkvcpp_file(mixed, 100, DType::Q8_0, 2, 3, 1));
  Bytes header_only = rwkvcpp_file({}, 101, DType::F32, 0, 0, 0);
  corpus.add("rwkvcpp", "header_only.bin", header_only);
}

// ---- models -------------------------------------------------------------------------------------

// The tiny checkpoints of every version in every format, for the model target, and each file also
// as a seed of its own reader's target.
void model_seeds(Corpus& corpus, const fs::path& scratch) {
  struct Checkpoint {
    std::string name;
    Arch arch;
    TensorSet set;
  };
  std::vector<Checkpoint> models;
  const struct {
    const char* name;
    int version;
    Arch arch;
  } versions[] = {{"v4", 4, Arch::v4}, {"v5_2", 5, Arch::v5}, {"v6", 6, Arch::v6}};
  uint64_t seed = 100;
  for (const auto& v : versions) {
    models.push_back({std::string(v.name) + "_f32", v.arch,
                      OfficialBuilder(seed++).build(v.version, 1, DType::F32)});
    models.push_back({std::string(v.name) + "_bf16_2layers", v.arch,
                      OfficialBuilder(seed++).build(v.version, 2, DType::BF16)});
  }
  models.push_back({"v7_f32", Arch::v7, make_synthetic_v7(small_v7(DType::F32))});
  models.push_back({"v7_f16", Arch::v7, make_synthetic_v7(small_v7(DType::F16))});

  for (const Checkpoint& m : models) {
    const Bytes st = safetensors_file(scratch, m.set);
    corpus.add("model_load", m.name + ".safetensors", st);
    corpus.add("safetensors", m.name + ".safetensors", st);
    const Bytes pth = test::pth_bytes(pth_tensors(m.set));
    corpus.add("model_load", m.name + ".pth", pth);
    corpus.add("pth", m.name + ".pth", pth);

    const Tensor& emb = *m.set.find("emb.weight");
    uint32_t layers = 0;
    while (m.set.find("blocks." + std::to_string(layers) + ".ln1.weight")) ++layers;
    const std::vector<BinTensor> bin = rwkvcpp_layout(m.set, m.arch);
    for (DType d : {DType::F32, DType::F16, DType::Q8_0, DType::Q5_1}) {
      const Bytes file =
          rwkvcpp_file(bin, 101, d, uint32_t(emb.shape[0]), uint32_t(emb.shape[1]), layers);
      const std::string name = m.name + "_" + dtype_name(d) + ".bin";
      corpus.add("model_load", name, file);
      corpus.add("rwkvcpp", name, file);
    }
  }
  // Truncated models reach the loader's checks of a half-read file through every reader.
  const Bytes v7 = safetensors_file(scratch, models.back().set);
  corpus.add_truncated("model_load", "v7_cut.safetensors", v7);
}

// ---- state blobs --------------------------------------------------------------------------------

void state_seeds(Corpus& corpus) {
  LoadOptions options;
  options.n_threads = 1;
  const std::shared_ptr<const rwkvrt::Model> model =
      rwkvrt::Model::from_tensors(make_synthetic_v7(tiny_v7_shape()), options);
  Session session(model);
  corpus.add_truncated("state_blob", "initial.state", session.save_state());
  const int32_t tokens[] = {3, 1, 4, 1, 5, 9, 2, 6};
  session.feed(tokens, 8, LogitsMode::None, nullptr);
  const Bytes fed = session.save_state();
  corpus.add("state_blob", "fed.state", fed);
  Bytes future = fed;
  future[8] = 2;  // format version 2
  corpus.add("state_blob", "version2.state", future);

  // The same shape with other weights (fingerprint mismatch) and another shape (dims mismatch).
  SyntheticShape other = tiny_v7_shape();
  other.seed += 1;
  corpus.add("state_blob", "other_weights.state",
             Session(rwkvrt::Model::from_tensors(make_synthetic_v7(other), options)).save_state());
  other.n_layer = 1;
  corpus.add("state_blob", "other_shape.state",
             Session(rwkvrt::Model::from_tensors(make_synthetic_v7(other), options)).save_state());
}

}  // namespace
}  // namespace rwkvrt::fuzz

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <output directory>\n", argv[0]);
    return 2;
  }
  namespace fs = std::filesystem;
  try {
    const fs::path root = argv[1];
    const fs::path scratch = root / ".scratch";
    fs::create_directories(scratch);
    rwkvrt::fuzz::Corpus corpus(root);
    rwkvrt::fuzz::pth_seeds(corpus);
    rwkvrt::fuzz::safetensors_seeds(corpus, scratch);
    rwkvrt::fuzz::rwkvcpp_seeds(corpus);
    rwkvrt::fuzz::model_seeds(corpus, scratch);
    rwkvrt::fuzz::state_seeds(corpus);
    fs::remove_all(scratch);
    corpus.report();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rwkvrt_fuzz_seeds: %s\n", e.what());
    return 1;
  }
  return 0;
}
