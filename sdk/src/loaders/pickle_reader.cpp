// The stack machine follows CPython's pickle semantics for the opcodes it implements (MARK opens a
// frame the next TUPLE/SETITEMS consumes; nothing may pop below the innermost mark; BINPUT stores
// the top of the stack without popping).  Values are immutable except dicts; a dict may not hold
// another dict at any depth, which keeps every value graph acyclic, so shared_ptr ownership cannot
// leak and no walk over values can loop.
#include "loaders/pickle_reader.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <set>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "core/error.h"

namespace rwkvrt {
namespace {

// Limits that keep hostile input from exhausting memory or the C++ stack.  Real checkpoints stay
// far below them: a 14B model's pickle holds about 2,000 stack items at its deepest (SETITEMS
// batches of 1,000 pairs), a few tens of thousands of memo entries and tuples nested 3 deep.  With
// values of about 150 bytes, the memo limit caps what hostile input can retain near 50 MB.
constexpr size_t kMaxStack = size_t(1) << 16;
constexpr size_t kMaxMemo = size_t(1) << 18;
constexpr int kMaxDepth = 16;
constexpr size_t kMaxGlobalLine = 256;

// Every element type torch can save; `storage_class` is its legacy typed storage class (the class a
// persistent id names), or null for types that only exist behind torch.UntypedStorage.
struct ScalarTypeInfo {
  TorchScalarType type;
  const char* storage_class;
};

constexpr ScalarTypeInfo kScalarTypes[] = {
    {{"float64", 8}, "DoubleStorage"},
    {{"float32", 4}, "FloatStorage"},
    {{"float16", 2}, "HalfStorage"},
    {{"bfloat16", 2}, "BFloat16Storage"},
    {{"int64", 8}, "LongStorage"},
    {{"int32", 4}, "IntStorage"},
    {{"int16", 2}, "ShortStorage"},
    {{"int8", 1}, "CharStorage"},
    {{"uint8", 1}, "ByteStorage"},
    {{"bool", 1}, "BoolStorage"},
    {{"complex64", 8}, "ComplexFloatStorage"},
    {{"complex128", 16}, "ComplexDoubleStorage"},
    {{"uint16", 2}, nullptr},
    {{"uint32", 4}, nullptr},
    {{"uint64", 8}, nullptr},
    {{"float8_e4m3fn", 1}, nullptr},
    {{"float8_e5m2", 1}, nullptr},
    {{"float8_e4m3fnuz", 1}, nullptr},
    {{"float8_e5m2fnuz", 1}, nullptr},
};

// The element type of torch.UntypedStorage, whose numel counts bytes.
constexpr TorchScalarType kUntypedBytes = {"uint8", 1};

enum Opcode : uint8_t {
  kMark = '(',
  kStop = '.',
  kBinFloat = 'G',
  kBinInt = 'J',
  kBinInt1 = 'K',
  kBinInt2 = 'M',
  kNone = 'N',
  kBinPersId = 'Q',
  kReduce = 'R',
  kBinString = 'T',
  kShortBinString = 'U',
  kBinUnicode = 'X',
  kGlobal = 'c',
  kBinGet = 'h',
  kLongBinGet = 'j',
  kBinPut = 'q',
  kLongBinPut = 'r',
  kSetItem = 's',
  kTuple = 't',
  kSetItems = 'u',
  kEmptyDict = '}',
  kEmptyTuple = ')',
  kProto = 0x80,
  kTuple1 = 0x85,
  kTuple2 = 0x86,
  kTuple3 = 0x87,
  kNewTrue = 0x88,
  kNewFalse = 0x89,
  kLong1 = 0x8a,
  kShortBinUnicode = 0x8c,
};

// The whitelisted callables.
enum class Callable { kOrderedDict, kRebuildTensorV2, kRebuildTensorV3, kRebuildParameter };

enum class Kind {
  kNone,
  kBool,
  kInt,
  kFloat,
  kString,
  kTuple,
  kDict,
  kCallable,
  kStorageClass,
  kScalarType,
  kStorage,
  kTensor
};

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::kNone:
      return "None";
    case Kind::kBool:
      return "a bool";
    case Kind::kInt:
      return "an int";
    case Kind::kFloat:
      return "a float";
    case Kind::kString:
      return "a string";
    case Kind::kTuple:
      return "a tuple";
    case Kind::kDict:
      return "a dict";
    case Kind::kCallable:
      return "a function";
    case Kind::kStorageClass:
      return "a storage class";
    case Kind::kScalarType:
      return "a dtype";
    case Kind::kStorage:
      return "a storage";
    case Kind::kTensor:
      return "a tensor";
  }
  return "?";
}

struct Value;
using ValuePtr = std::shared_ptr<Value>;

// One pickle value.  Only the fields of its kind are meaningful; the large records sit behind
// pointers to keep every value small.
struct Value {
  explicit Value(Kind k) : kind(k) {}
  Kind kind;
  int depth = 1;                // nesting depth (tuples and dicts add one)
  bool holds_dict = false;      // is or contains a dict
  int64_t integer = 0;          // kBool, kInt
  std::string text;             // kString
  std::vector<ValuePtr> items;  // kTuple; kDict as key, value, key, value, ...
  Callable callable = Callable::kOrderedDict;
  const TorchScalarType* scalar = nullptr;  // kStorageClass (null: UntypedStorage), kScalarType
  std::unique_ptr<PickledStorage> storage;  // kStorage
  std::unique_ptr<PickledTensor> tensor;    // kTensor (name empty)
};

// `s` with bytes outside printable ASCII escaped and long strings cut, for error messages.
std::string printable(std::string_view s) {
  constexpr size_t kMax = 80;
  std::string out;
  for (size_t i = 0; i < s.size() && i < kMax; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += char(c);
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
  }
  if (s.size() > kMax) out += "...";
  return out;
}

class Unpickler {
 public:
  Unpickler(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  std::vector<PickledTensor> run();

 private:
  template <typename... Args>
  [[noreturn]] void error(fmt::format_string<Args...> format, Args&&... args) const {
    fail(RWKVRT_ERR_FORMAT, "pickle {} (at offset {})",
         fmt::format(format, std::forward<Args>(args)...), op_offset_);
  }

  const uint8_t* take(size_t n);
  uint8_t u8() { return *take(1); }
  uint16_t u16();
  uint32_t u32();
  std::string_view line();

  void push(ValuePtr v);
  ValuePtr pop();
  ValuePtr& top();
  std::vector<ValuePtr> pop_to_mark();
  ValuePtr make(Kind k) const { return std::make_shared<Value>(k); }
  ValuePtr make_int(int64_t v) const;
  ValuePtr make_string(const uint8_t* p, size_t n) const;
  ValuePtr make_tuple(std::vector<ValuePtr> items) const;

  void memo_put(uint32_t index);
  void memo_get(uint32_t index);
  void global();
  void persistent_load();
  void reduce();
  void set_items(const ValuePtr& dict, const std::vector<ValuePtr>& pairs);
  ValuePtr rebuild_tensor(bool v3, const std::vector<ValuePtr>& args) const;
  std::vector<int64_t> int_tuple(const ValuePtr& v, const char* what) const;
  std::vector<PickledTensor> finish(const ValuePtr& result) const;

  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  size_t op_offset_ = 0;
  std::vector<ValuePtr> stack_;
  std::vector<size_t> marks_;  // stack sizes at each open MARK
  std::unordered_map<uint32_t, ValuePtr> memo_;
};

const uint8_t* Unpickler::take(size_t n) {
  if (n > size_ - pos_) {
    error("truncated: needs {} more bytes at offset {}, but the pickle ends at {}", n, pos_, size_);
  }
  const uint8_t* p = data_ + pos_;
  pos_ += n;
  return p;
}

uint16_t Unpickler::u16() {
  const uint8_t* p = take(2);
  return uint16_t(p[0] | p[1] << 8);
}

uint32_t Unpickler::u32() {
  const uint8_t* p = take(4);
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

// A newline-terminated argument (GLOBAL's module and name), without the newline.
std::string_view Unpickler::line() {
  const size_t limit = std::min(size_ - pos_, kMaxGlobalLine + 1);
  const void* nl = std::memchr(data_ + pos_, '\n', limit);
  if (!nl) error("GLOBAL argument is not a line of at most {} bytes", kMaxGlobalLine);
  const size_t n = size_t(static_cast<const uint8_t*>(nl) - (data_ + pos_));
  const std::string_view s(reinterpret_cast<const char*>(data_ + pos_), n);
  pos_ += n + 1;
  return s;
}

void Unpickler::push(ValuePtr v) {
  if (stack_.size() >= kMaxStack) error("stack deeper than {} values", kMaxStack);
  stack_.push_back(std::move(v));
}

ValuePtr& Unpickler::top() {
  if (stack_.size() <= (marks_.empty() ? 0 : marks_.back())) error("stack underflow");
  return stack_.back();
}

ValuePtr Unpickler::pop() {
  ValuePtr v = std::move(top());
  stack_.pop_back();
  return v;
}

std::vector<ValuePtr> Unpickler::pop_to_mark() {
  if (marks_.empty()) error("has no MARK to pop to");
  const size_t mark = marks_.back();
  marks_.pop_back();
  std::vector<ValuePtr> items(std::make_move_iterator(stack_.begin() + std::ptrdiff_t(mark)),
                              std::make_move_iterator(stack_.end()));
  stack_.resize(mark);
  return items;
}

ValuePtr Unpickler::make_int(int64_t v) const {
  ValuePtr r = make(Kind::kInt);
  r->integer = v;
  return r;
}

ValuePtr Unpickler::make_string(const uint8_t* p, size_t n) const {
  ValuePtr r = make(Kind::kString);
  r->text.assign(reinterpret_cast<const char*>(p), n);
  return r;
}

ValuePtr Unpickler::make_tuple(std::vector<ValuePtr> items) const {
  ValuePtr r = make(Kind::kTuple);
  for (const ValuePtr& v : items) {
    r->depth = std::max(r->depth, v->depth + 1);
    r->holds_dict = r->holds_dict || v->holds_dict;
  }
  if (r->depth > kMaxDepth) error("values nested more than {} deep", kMaxDepth);
  r->items = std::move(items);
  return r;
}

void Unpickler::memo_put(uint32_t index) {
  ValuePtr& v = top();
  if (memo_.size() >= kMaxMemo && !memo_.count(index)) {
    error("memo holds more than {} values", kMaxMemo);
  }
  memo_[index] = v;
}

void Unpickler::memo_get(uint32_t index) {
  const auto it = memo_.find(index);
  if (it == memo_.end()) error("memo index {} was never stored", index);
  push(it->second);
}

void Unpickler::global() {
  const std::string module(line());
  const std::string name(line());
  ValuePtr v;
  if (module == "collections" && name == "OrderedDict") {
    v = make(Kind::kCallable);
    v->callable = Callable::kOrderedDict;
  } else if (module == "torch._utils" && name == "_rebuild_tensor_v2") {
    v = make(Kind::kCallable);
    v->callable = Callable::kRebuildTensorV2;
  } else if (module == "torch._utils" && name == "_rebuild_tensor_v3") {
    v = make(Kind::kCallable);
    v->callable = Callable::kRebuildTensorV3;
  } else if (module == "torch._utils" && name == "_rebuild_parameter") {
    v = make(Kind::kCallable);
    v->callable = Callable::kRebuildParameter;
  } else if (module == "torch" && name == "UntypedStorage") {
    v = make(Kind::kStorageClass);
  } else if (module == "torch") {
    for (const ScalarTypeInfo& t : kScalarTypes) {
      if (t.storage_class && name == t.storage_class) {
        v = make(Kind::kStorageClass);
        v->scalar = &t.type;
      } else if (name == t.type.name) {
        v = make(Kind::kScalarType);
        v->scalar = &t.type;
      }
    }
  }
  if (!v) {
    error("GLOBAL '{} {}' is not allowed in a checkpoint", printable(module), printable(name));
  }
  push(std::move(v));
}

// BINPERSID: the persistent id torch.save writes for a storage.
void Unpickler::persistent_load() {
  const ValuePtr pid = pop();
  const auto& f = pid->items;
  if (pid->kind != Kind::kTuple || f.size() != 5 || f[0]->kind != Kind::kString ||
      f[0]->text != "storage" || f[1]->kind != Kind::kStorageClass || f[2]->kind != Kind::kString ||
      f[3]->kind != Kind::kString || f[4]->kind != Kind::kInt || f[4]->integer < 0) {
    error("persistent id is not ('storage', <storage class>, key, location, numel)");
  }
  auto storage = std::make_unique<PickledStorage>();
  storage->key = f[2]->text;
  storage->untyped = f[1]->scalar == nullptr;
  storage->type = storage->untyped ? &kUntypedBytes : f[1]->scalar;
  storage->location = f[3]->text;
  storage->numel = uint64_t(f[4]->integer);
  ValuePtr v = make(Kind::kStorage);
  v->storage = std::move(storage);
  push(std::move(v));
}

std::vector<int64_t> Unpickler::int_tuple(const ValuePtr& v, const char* what) const {
  if (v->kind != Kind::kTuple) error("tensor {} is {}, not a tuple", what, kind_name(v->kind));
  std::vector<int64_t> out;
  for (const ValuePtr& item : v->items) {
    if (item->kind != Kind::kInt || item->integer < 0) {
      error("tensor {} holds {} rather than a non-negative int", what, kind_name(item->kind));
    }
    out.push_back(item->integer);
  }
  return out;
}

// _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks
// [, metadata]) and _rebuild_tensor_v3(..., backward_hooks, dtype[, metadata]).
ValuePtr Unpickler::rebuild_tensor(bool v3, const std::vector<ValuePtr>& args) const {
  const size_t fixed = v3 ? 7 : 6;
  if (args.size() != fixed && args.size() != fixed + 1) {
    error("_rebuild_tensor_v{} takes {} or {} arguments, got {}", v3 ? 3 : 2, fixed, fixed + 1,
          args.size());
  }
  if (args[0]->kind != Kind::kStorage) {
    error("tensor storage is {}, not a persistent storage id", kind_name(args[0]->kind));
  }
  if (args[1]->kind != Kind::kInt || args[1]->integer < 0) {
    error("tensor storage offset is {} rather than a non-negative int", kind_name(args[1]->kind));
  }
  if (args[4]->kind != Kind::kBool) error("tensor requires_grad is not a bool");
  if (args[5]->kind != Kind::kDict) error("tensor backward hooks are not a dict");
  auto tensor = std::make_unique<PickledTensor>();
  PickledTensor& t = *tensor;
  t.storage = *args[0]->storage;
  t.storage_offset = uint64_t(args[1]->integer);
  t.shape = int_tuple(args[2], "size");
  t.stride = int_tuple(args[3], "stride");
  if (t.shape.size() != t.stride.size()) {
    error("tensor size has {} dimensions but its stride {}", t.shape.size(), t.stride.size());
  }
  if (v3) {
    if (args[6]->kind != Kind::kScalarType) error("_rebuild_tensor_v3 dtype is not a torch dtype");
    if (!t.storage.untyped) error("_rebuild_tensor_v3 expects an untyped storage");
    t.dtype = args[6]->scalar;
  } else {
    if (t.storage.untyped) error("_rebuild_tensor_v2 gives no dtype for an untyped storage");
    t.dtype = t.storage.type;
  }
  ValuePtr v = make(Kind::kTensor);
  v->tensor = std::move(tensor);
  return v;
}

void Unpickler::reduce() {
  const ValuePtr args = pop();
  const ValuePtr callable = pop();
  if (callable->kind != Kind::kCallable) error("REDUCE calls {}", kind_name(callable->kind));
  if (args->kind != Kind::kTuple) error("REDUCE arguments are {}", kind_name(args->kind));
  switch (callable->callable) {
    case Callable::kOrderedDict: {
      if (!args->items.empty()) error("OrderedDict is called with arguments");
      ValuePtr d = make(Kind::kDict);
      d->holds_dict = true;
      push(std::move(d));
      return;
    }
    case Callable::kRebuildTensorV2:
      push(rebuild_tensor(false, args->items));
      return;
    case Callable::kRebuildTensorV3:
      push(rebuild_tensor(true, args->items));
      return;
    case Callable::kRebuildParameter:
      // _rebuild_parameter(data, requires_grad, backward_hooks): the parameter is its tensor.
      if (args->items.size() != 3 || args->items[0]->kind != Kind::kTensor) {
        error("_rebuild_parameter is not called with (tensor, requires_grad, backward_hooks)");
      }
      push(args->items[0]);
      return;
  }
}

void Unpickler::set_items(const ValuePtr& dict, const std::vector<ValuePtr>& pairs) {
  if (dict->kind != Kind::kDict) error("SETITEM on {}, not a dict", kind_name(dict->kind));
  if (pairs.size() % 2 != 0) error("SETITEMS with an odd number of values");
  for (const ValuePtr& v : pairs) {
    if (v->holds_dict) error("nests a dict inside a dict (a checkpoint is a flat dict of tensors)");
  }
  dict->items.insert(dict->items.end(), pairs.begin(), pairs.end());
}

std::vector<PickledTensor> Unpickler::finish(const ValuePtr& result) const {
  if (result->kind != Kind::kDict) {
    error("holds {}, not a dict of tensors", kind_name(result->kind));
  }
  if (pos_ != size_) error("has {} bytes after STOP", size_ - pos_);
  std::vector<PickledTensor> tensors;
  std::set<std::string, std::less<>> names;
  for (size_t i = 0; i < result->items.size(); i += 2) {
    const Value& key = *result->items[i];
    const Value& value = *result->items[i + 1];
    if (key.kind != Kind::kString) error("dict key is {}, not a string", kind_name(key.kind));
    if (value.kind != Kind::kTensor) {
      error("entry '{}' is {}, not a tensor", printable(key.text), kind_name(value.kind));
    }
    if (!names.insert(key.text).second) error("entry '{}' appears twice", printable(key.text));
    tensors.push_back(*value.tensor);
    tensors.back().name = key.text;
  }
  return tensors;
}

std::vector<PickledTensor> Unpickler::run() {
  for (;;) {
    op_offset_ = pos_;
    if (pos_ >= size_) error("truncated: it ends without STOP");
    const uint8_t op = u8();
    switch (op) {
      case kProto: {
        const uint8_t protocol = u8();
        if (protocol < 2 || protocol > 3) {
          error("protocol {} is not supported (torch.save writes protocol 2)", protocol);
        }
        break;
      }
      case kStop:
        return finish(pop());
      case kMark:
        if (marks_.size() >= kMaxStack) error("more than {} open MARKs", kMaxStack);
        marks_.push_back(stack_.size());
        break;
      case kNone:
        push(make(Kind::kNone));
        break;
      case kNewTrue:
      case kNewFalse: {
        ValuePtr v = make(Kind::kBool);
        v->integer = op == kNewTrue;
        push(std::move(v));
        break;
      }
      case kBinInt:
        push(make_int(int32_t(u32())));
        break;
      case kBinInt1:
        push(make_int(u8()));
        break;
      case kBinInt2:
        push(make_int(u16()));
        break;
      case kLong1: {
        // Little-endian two's complement of n bytes.
        const uint8_t n = u8();
        if (n > 8) error("LONG1 integer of {} bytes is too large", n);
        const uint8_t* p = take(n);
        uint64_t bits = 0;
        for (int i = n - 1; i >= 0; --i) bits = bits << 8 | p[i];
        if (n > 0 && n < 8 && (p[n - 1] & 0x80)) bits |= ~uint64_t(0) << (8 * n);
        push(make_int(int64_t(bits)));
        break;
      }
      case kBinFloat:
        // An 8-byte double; floats only occur in tensor metadata, which is not used.
        take(8);
        push(make(Kind::kFloat));
        break;
      case kBinUnicode: {
        const uint32_t n = u32();
        push(make_string(take(n), n));
        break;
      }
      case kShortBinUnicode:
      case kShortBinString: {
        const uint8_t n = u8();
        push(make_string(take(n), n));
        break;
      }
      case kBinString: {
        const int32_t n = int32_t(u32());
        if (n < 0) error("BINSTRING length {} is negative", n);
        push(make_string(take(size_t(n)), size_t(n)));
        break;
      }
      case kGlobal:
        global();
        break;
      case kBinPersId:
        persistent_load();
        break;
      case kEmptyTuple:
        push(make_tuple({}));
        break;
      case kTuple:
        push(make_tuple(pop_to_mark()));
        break;
      case kTuple1:
      case kTuple2:
      case kTuple3: {
        std::vector<ValuePtr> items(size_t(op - kTuple1 + 1));
        for (size_t i = items.size(); i-- > 0;) items[i] = pop();
        push(make_tuple(std::move(items)));
        break;
      }
      case kEmptyDict: {
        ValuePtr d = make(Kind::kDict);
        d->holds_dict = true;
        push(std::move(d));
        break;
      }
      case kSetItem: {
        ValuePtr value = pop();
        ValuePtr key = pop();
        set_items(top(), {std::move(key), std::move(value)});
        break;
      }
      case kSetItems: {
        const std::vector<ValuePtr> pairs = pop_to_mark();
        set_items(top(), pairs);
        break;
      }
      case kReduce:
        reduce();
        break;
      case kBinPut:
        memo_put(u8());
        break;
      case kLongBinPut:
        memo_put(u32());
        break;
      case kBinGet:
        memo_get(u8());
        break;
      case kLongBinGet:
        memo_get(u32());
        break;
      default:
        error("opcode 0x{:02x}{} is not supported", op,
              op >= 0x20 && op < 0x7f ? fmt::format(" ('{}')", char(op)) : std::string());
    }
  }
}

}  // namespace

std::vector<PickledTensor> unpickle_tensor_dict(const uint8_t* data, size_t size) {
  return Unpickler(data, size).run();
}

}  // namespace rwkvrt
