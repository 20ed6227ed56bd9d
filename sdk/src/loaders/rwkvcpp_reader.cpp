// rwkv.cpp `.bin` reader (ggmf magic, file versions 100 and 101).
//
// Container (all integers u32 little-endian): a 24-byte header {magic, version, n_vocab, n_embed,
// n_layer, data type}, then tensor records until the end of the file:
//   n_dims (1..3), name_length, data_type, ne[n_dims] (ggml order: ne[0] is PyTorch's last dim),
//   name bytes, data bytes (row-major; quantised blocks of 32 run along ne[0]).
// The format has no tensor count, so a file cut exactly at a record boundary reads as a valid file
// with fewer tensors; the model's tensor checks report what is missing.
//
// rwkv.cpp's converter does not store the checkpoint as is: it squeezes, reshapes, transposes and
// pre-computes some tensors (docs/FORMATS.md lists them).  This reader undoes all of that, so the
// result has the official names, shapes and values of RWKV-MATH.md §1 and the model code needs no
// rwkv.cpp special case.  Tensors it rebuilds live in TensorSet buffers; all others (and pure
// reshapes) point into the file mapping.
#include <cmath>
#include <cstring>
#include <set>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/mapped_file.h"
#include "dtype_convert.h"
#include "loaders/checkpoint_readers.h"

namespace rwkvrt {
namespace {

constexpr uint32_t kMagic = 0x67676d66;  // bytes 66 6d 67 67 on disk
constexpr size_t kHeaderBytes = 24;
// Longest tensor name accepted: real names are under 40 bytes; this only stops absurd lengths.
constexpr uint32_t kMaxNameLength = 1024;

uint32_t le32(const uint8_t* p) {
  return uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24);
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Sequential reads from the mapping; every read is bounds-checked and a short read is reported as
// truncation, naming what was being read and where.
class Cursor {
 public:
  explicit Cursor(const MappedFile& file) : file_(file) {}

  size_t offset() const { return pos_; }
  bool at_end() const { return pos_ == file_.size(); }

  const uint8_t* take(uint64_t n, std::string_view what) {
    const size_t left = file_.size() - pos_;
    if (n > left)
      fail(RWKVRT_ERR_FORMAT, "'{}' is truncated: {} at offset {} needs {} bytes, {} left",
           file_.path(), what, pos_, n, left);
    const uint8_t* p = file_.data() + pos_;
    pos_ += static_cast<size_t>(n);
    return p;
  }
  uint32_t u32(std::string_view what) { return le32(take(4, what)); }

 private:
  const MappedFile& file_;
  size_t pos_ = 0;
};

// rwkv.cpp's own type codes.  4-6 were removed types and are invalid; 10-16 are k-quants, which
// rwkvrt does not read (their blocks are not 32 values, so not even their sizes are known here).
DType dtype_from_code(uint32_t code, const std::string& path, const std::string& tensor) {
  switch (code) {
    case 0:
      return DType::F32;
    case 1:
      return DType::F16;
    case 2:
      return DType::Q4_0;
    case 3:
      return DType::Q4_1;
    case 7:
      return DType::Q5_0;
    case 8:
      return DType::Q5_1;
    case 9:
      return DType::Q8_0;
    default:
      break;
  }
  if (code >= 10 && code <= 16)
    fail(RWKVRT_ERR_UNSUPPORTED,
         "'{}': tensor '{}' uses rwkv.cpp data type {} (a k-quant), which rwkvrt does not read; "
         "use an FP32, FP16, Q4_0, Q4_1, Q5_0, Q5_1 or Q8_0 file",
         path, tensor, code);
  fail(RWKVRT_ERR_FORMAT,
       "'{}': tensor '{}' has unknown rwkv.cpp data type {} (valid: 0 FP32, 1 FP16, 2 Q4_0, "
       "3 Q4_1, 7 Q5_0, 8 Q5_1, 9 Q8_0)",
       path, tensor, code);
}

bool is_quantised(DType t) {
  return dtype_block_values(t) > 1;
}

// Reads and validates one tensor record at the cursor.  The shape is returned in PyTorch order.
Tensor read_record(Cursor& in, const std::string& path, uint32_t file_version, size_t index) {
  const size_t start = in.offset();
  const uint32_t n_dims = in.u32("a tensor's n_dims");
  const uint32_t name_length = in.u32("a tensor's name length");
  const uint32_t type_code = in.u32("a tensor's data type");
  if (n_dims < 1 || n_dims > 3)
    fail(RWKVRT_ERR_FORMAT, "'{}': tensor #{} at offset {} has {} dimensions (expected 1 to 3)",
         path, index, start, n_dims);
  if (name_length == 0 || name_length > kMaxNameLength)
    fail(RWKVRT_ERR_FORMAT,
         "'{}': tensor #{} at offset {} has a name length of {} (expected 1 to {})", path, index,
         start, name_length, kMaxNameLength);
  uint32_t ne[3] = {0, 0, 0};
  for (uint32_t d = 0; d < n_dims; ++d) ne[d] = in.u32("a tensor's dimensions");
  const uint8_t* name_bytes = in.take(name_length, "a tensor's name");

  Tensor t;
  t.name.assign(reinterpret_cast<const char*>(name_bytes), name_length);
  t.dtype = dtype_from_code(type_code, path, t.name);
  uint64_t numel = 1;
  for (uint32_t d = 0; d < n_dims; ++d) {
    if (ne[d] == 0) fail(RWKVRT_ERR_FORMAT, "'{}': tensor '{}' has a zero dimension", path, t.name);
    if (__builtin_mul_overflow(numel, uint64_t(ne[d]), &numel))
      fail(RWKVRT_ERR_FORMAT, "'{}': tensor '{}' is impossibly large", path, t.name);
    t.shape.insert(t.shape.begin(), int64_t(ne[d]));
  }
  if (is_quantised(t.dtype)) {
    // Version 100 files used an older block layout with the same type codes.
    if (file_version == 100)
      fail(RWKVRT_ERR_UNSUPPORTED,
           "'{}': tensor '{}' is quantised ({}) in a version-100 file, whose old block layout "
           "rwkvrt does not read; re-quantise the model with a current rwkv.cpp",
           path, t.name, dtype_name(t.dtype));
    if (n_dims != 2 || ne[0] % kQuantBlock != 0)
      fail(RWKVRT_ERR_FORMAT,
           "'{}': tensor '{}' is quantised ({}) but has shape {}; quantised tensors must be 2-D "
           "with a last dimension that is a multiple of {}",
           path, t.name, dtype_name(t.dtype), t.shape_string(), kQuantBlock);
  }
  const uint64_t unit = dtype_block_bytes(t.dtype);
  const uint64_t units = numel / dtype_block_values(t.dtype);
  uint64_t nbytes = 0;
  if (__builtin_mul_overflow(units, unit, &nbytes))
    fail(RWKVRT_ERR_FORMAT, "'{}': tensor '{}' is impossibly large", path, t.name);
  t.data = in.take(nbytes, fmt::format("the data of tensor '{}' {}", t.name, t.shape_string()));
  t.nbytes = static_cast<size_t>(nbytes);
  return t;
}

std::vector<float> values_f32(const Tensor& t) {
  std::vector<float> v(t.numel());
  convert_to_f32(static_cast<rwkvrt_bk_dtype>(t.dtype), t.data, v.data(), v.size());
  return v;
}

// The official layout of a file's tensors, rebuilt tensor by tensor into `out`.
class Rebuilder {
 public:
  enum class Arch { v4, v5, v6, v7 };

  Rebuilder(const std::string& path, Arch arch, TensorSet& out)
      : path_(path), arch_(arch), out_(out) {}

  void add(const Tensor& t) {
    const std::string& n = t.name;
    switch (arch_) {
      case Arch::v4:
        if (ends_with(n, ".att.time_decay")) return v4_time_decay(t);
        break;
      case Arch::v5:
        if (ends_with(n, ".att.time_decay")) return v5_time_decay(t);
        if (ends_with(n, ".att.time_first")) return v5_time_first(t);
        if (ends_with(n, ".att.time_faaaa")) return drop_trailing_unit(t, 3);
        break;
      case Arch::v6:
        if (ends_with(n, ".att.time_maa_w1") || ends_with(n, ".att.time_decay_w1") ||
            ends_with(n, ".att.time_decay_w2"))
          return transposed(t, 2);
        if (ends_with(n, ".att.time_maa_w2")) return transposed(t, 3);
        if (ends_with(n, ".att.time_decay")) return v6_time_decay(t);
        if (ends_with(n, ".att.time_faaaa")) return drop_trailing_unit(t, 3);
        break;
      case Arch::v7:
        if (ends_with(n, ".att.x_rwkvag")) return v7_split_mix(t);
        for (const char* lora : {".att.w1", ".att.w2", ".att.a1", ".att.a2", ".att.v1", ".att.v2",
                                 ".att.g1", ".att.g2"})
          if (ends_with(n, lora)) return transposed(t, 2);
        break;
    }
    // Every other `.time_*` vector was squeezed from (1, 1, C).  (v4's time_decay/time_first are
    // officially (A) and handled above or kept; v7 stores its vectors unsqueezed.)
    Tensor same = t;
    if (n.find(".time_") != std::string::npos && t.shape.size() == 1 &&
        !ends_with(n, ".att.time_first"))
      same.shape = {1, 1, t.shape[0]};
    out_.add(std::move(same));
  }

 private:
  [[noreturn]] void bad_shape(const Tensor& t, std::string_view expected) const {
    fail(RWKVRT_ERR_FORMAT, "'{}': tensor '{}' has shape {}, expected rwkv.cpp's layout {}", path_,
         t.name, t.shape_string(), expected);
  }
  [[noreturn]] void bad_value(const Tensor& t, size_t i, float v, std::string_view why) const {
    fail(RWKVRT_ERR_FORMAT, "'{}': tensor '{}' holds {} at index {}, {}", path_, t.name, v, i, why);
  }

  void add_f32(const Tensor& like, std::vector<int64_t> shape, const std::vector<float>& v) {
    Tensor t;
    t.name = like.name;
    t.dtype = DType::F32;
    t.shape = std::move(shape);
    t.nbytes = v.size() * sizeof(float);
    uint8_t* buf = out_.allocate(t.nbytes);
    std::memcpy(buf, v.data(), t.nbytes);
    t.data = buf;
    out_.add(std::move(t));
  }

  // (H, X, 1) -> (H, X), or (H) when X is 1, as the official v5.0/5.1 per-head vectors are.
  static std::vector<int64_t> per_head_shape(const Tensor& t) {
    if (t.shape[1] == 1) return {t.shape[0]};
    return {t.shape[0], t.shape[1]};
  }
  void require_head_layout(const Tensor& t) const {
    if (t.shape.size() != 3 || t.shape[2] != 1) bad_shape(t, "(H, S, 1)");
  }

  // v4 stores −exp(w); official w = log(−stored).  Exact to fp32 rounding (error ≤ 6e-8 absolute).
  void v4_time_decay(const Tensor& t) {
    if (t.shape.size() != 1) bad_shape(t, "(C)");
    std::vector<float> v = values_f32(t);
    for (size_t i = 0; i < v.size(); ++i) {
      if (!(v[i] < 0.0f) || !std::isfinite(v[i]))
        bad_value(t, i, v[i], "not a negative number, so not rwkv.cpp's v4 −exp(time_decay)");
      v[i] = float(std::log(-double(v[i])));
    }
    add_f32(t, t.shape, v);
  }

  // v5.x stores exp(−exp(w)) in (0, 1], shaped (H, 1, 1) (5.1) or (H, S, 1) (5.2).
  // Official w = log(−log(stored)).  The stored fp32 value only pins w down to about
  // 6e-8 / exp(w) absolute (2.4e-5 at w = −6, 1.3e-3 at w = −10): close decays (stored near 1)
  // lose precision.  The rebuilt w maps back to the same stored value through exp(−exp(w)), which
  // is all the model computes from it, so inference is unaffected.
  void v5_time_decay(const Tensor& t) {
    require_head_layout(t);
    std::vector<float> v = values_f32(t);
    for (size_t i = 0; i < v.size(); ++i) {
      const float s = v[i];
      if (!(s >= 0.0f && s <= 1.0f))
        bad_value(t, i, s, "outside [0, 1], so not rwkv.cpp's v5 exp(−exp(time_decay))");
      // exp(−exp(w)) rounds to exactly 1 in fp32 for w below about −17.3 and to exactly 0 above
      // about 4.65; those stored values say only that much, so pick a w past each threshold.
      if (s == 1.0f)
        v[i] = -18.0f;
      else if (s == 0.0f)
        v[i] = 5.0f;
      else
        v[i] = float(std::log(-std::log(double(s))));
    }
    add_f32(t, per_head_shape(t), v);
  }

  // v5.1 stores exp(u) shaped (H, 1, 1); official u = log(stored), exact to fp32 rounding.
  void v5_time_first(const Tensor& t) {
    require_head_layout(t);
    std::vector<float> v = values_f32(t);
    for (size_t i = 0; i < v.size(); ++i) {
      if (!(v[i] > 0.0f) || !std::isfinite(v[i]))
        bad_value(t, i, v[i], "not a positive number, so not rwkv.cpp's v5 exp(time_first)");
      v[i] = float(std::log(double(v[i])));
    }
    add_f32(t, per_head_shape(t), v);
  }

  // v6 stores its raw time_decay (1, 1, A) reshaped to (H, S, 1): a reshape, no copy.
  void v6_time_decay(const Tensor& t) {
    require_head_layout(t);
    Tensor view = t;
    view.shape = {1, 1, t.shape[0] * t.shape[1]};
    out_.add(std::move(view));
  }

  // (..., X, 1) -> (..., X): a reshape, no copy.
  void drop_trailing_unit(const Tensor& t, size_t dims) {
    if (t.shape.size() != dims || t.shape.back() != 1) bad_shape(t, "(H, S, 1)");
    Tensor view = t;
    view.shape.pop_back();
    out_.add(std::move(view));
  }

  // Swaps the last two axes of a `dims`-dimensional tensor (a batch of matrices when 3-D).  The
  // dtype is kept; quantised data cannot be transposed block-wise, so it is dequantised to F32.
  void transposed(const Tensor& t, size_t dims) {
    if (t.shape.size() != dims) bad_shape(t, dims == 2 ? "(in, out) transposed" : "(B, in, out)");
    const bool dequantise = is_quantised(t.dtype);
    const DType dtype = dequantise ? DType::F32 : t.dtype;
    const size_t es = dtype_block_bytes(dtype);
    const size_t rows = size_t(t.shape[dims - 2]), cols = size_t(t.shape[dims - 1]);
    const size_t batch = dims == 3 ? size_t(t.shape[0]) : 1;
    std::vector<float> dequantised;
    const uint8_t* src = t.data;
    if (dequantise) {
      dequantised = values_f32(t);
      src = reinterpret_cast<const uint8_t*>(dequantised.data());
    }
    Tensor r;
    r.name = t.name;
    r.dtype = dtype;
    r.shape = t.shape;
    std::swap(r.shape[dims - 2], r.shape[dims - 1]);
    r.nbytes = batch * rows * cols * es;
    uint8_t* dst = out_.allocate(r.nbytes);
    for (size_t b = 0; b < batch; ++b) {
      const uint8_t* s = src + b * rows * cols * es;
      uint8_t* d = dst + b * rows * cols * es;
      for (size_t i = 0; i < rows; ++i)
        for (size_t j = 0; j < cols; ++j)
          std::memcpy(d + (j * rows + i) * es, s + (i * cols + j) * es, es);
    }
    r.data = dst;
    out_.add(std::move(r));
  }

  // v7's att.x_rwkvag (6, 1, C) is the six token-shift mixes concatenated in the order r, w, k,
  // v, a, g; each slice is contiguous, so each official (1, 1, C) tensor is a view into it.
  void v7_split_mix(const Tensor& t) {
    if (t.shape.size() != 3 || t.shape[0] != 6 || t.shape[1] != 1) bad_shape(t, "(6, 1, C)");
    const std::string prefix = t.name.substr(0, t.name.size() - std::string_view("rwkvag").size());
    const size_t slice = t.nbytes / 6;
    const char parts[] = {'r', 'w', 'k', 'v', 'a', 'g'};
    for (size_t i = 0; i < 6; ++i) {
      Tensor part;
      part.name = prefix + parts[i];
      part.dtype = t.dtype;
      part.shape = {1, 1, t.shape[2]};
      part.data = t.data + i * slice;
      part.nbytes = slice;
      out_.add(std::move(part));
    }
  }

  const std::string& path_;
  Arch arch_;
  TensorSet& out_;
};

// rwkv.cpp's own version detection (FORMATS.md), which decided the transforms it applied.
Rebuilder::Arch detect_arch(const std::set<std::string, std::less<>>& names) {
  if (names.count("blocks.0.att.r_k")) return Rebuilder::Arch::v7;
  if (names.count("blocks.0.att.time_maa_x")) return Rebuilder::Arch::v6;
  if (names.count("blocks.0.att.ln_x.weight")) return Rebuilder::Arch::v5;
  return Rebuilder::Arch::v4;
}

}  // namespace

TensorSet read_rwkvcpp(const std::string& path) {
  const auto file = MappedFile::open(path);
  if (file->size() == 0) fail(RWKVRT_ERR_FORMAT, "'{}' is empty, not an rwkv.cpp model", path);
  Cursor in(*file);
  const uint8_t* header = in.take(kHeaderBytes, "the 24-byte header");
  const uint32_t magic = le32(header);
  if (magic != kMagic)
    fail(RWKVRT_ERR_FORMAT, "'{}' is not an rwkv.cpp model: magic {:#010x}, expected {:#010x}",
         path, magic, kMagic);
  const uint32_t version = le32(header + 4);
  if (version != 100 && version != 101)
    fail(RWKVRT_ERR_FORMAT, "'{}': rwkv.cpp file version {} is not supported (expected 100 or 101)",
         path, version);

  std::vector<Tensor> stored;
  std::set<std::string, std::less<>> names;
  while (!in.at_end()) {
    Tensor t = read_record(in, path, version, stored.size());
    if (!names.insert(t.name).second)
      fail(RWKVRT_ERR_FORMAT, "'{}': tensor '{}' appears twice", path, t.name);
    stored.push_back(std::move(t));
  }
  if (stored.empty()) fail(RWKVRT_ERR_FORMAT, "'{}' holds a header but no tensors", path);

  const Rebuilder::Arch arch = detect_arch(names);
  TensorSet set;
  set.keep_alive(file);
  Rebuilder rebuild(path, arch, set);
  try {
    for (const Tensor& t : stored) rebuild.add(t);
  } catch (const Error& e) {
    // TensorSet::add's own errors (a split v7 mix colliding with a stored name) lack the path.
    if (std::string_view(e.what()).find(path) != std::string_view::npos) throw;
    fail(e.status(), "'{}': {}", path, e.what());
  }
  set.metadata["format"] = "rwkvcpp";
  set.metadata["rwkvcpp.file_version"] = std::to_string(version);
  if (arch == Rebuilder::Arch::v5) {
    // rwkv.cpp computes the v5 GroupNorm with eps 1e-5 (not the official 64e-5), and models used
    // through it, like its tests' expected logits, follow that.
    set.metadata["rwkvrt.group_norm_eps"] = "1e-05";
  }
  return set;
}

}  // namespace rwkvrt
