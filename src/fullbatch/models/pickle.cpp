#include "fullbatch/models/pickle.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <map>
#include <optional>
#include <stdexcept>
#include <unordered_map>

#include "fullbatch/common/error.h"
#include "fullbatch/common/strings.h"

namespace fullbatch::pickle {

// Tears nested values down iteratively: a damaged or hostile file can nest lists a million deep,
// and recursive destructors would overflow the stack.
Value::~Value() {
  std::vector<ValuePtr> pending;
  auto release = [&pending](Value& v) {
    for (auto& item : v.items) pending.push_back(std::move(item));
    for (auto& entry : v.entries) {
      pending.push_back(std::move(entry.first));
      pending.push_back(std::move(entry.second));
    }
    v.items.clear();
    v.entries.clear();
  };
  release(*this);
  while (!pending.empty()) {
    ValuePtr v = std::move(pending.back());
    pending.pop_back();
    if (v && v.use_count() == 1) release(*v);
  }
}

namespace {

ValuePtr make(Value::Kind kind) {
  auto v = std::make_shared<Value>();
  v->kind = kind;
  return v;
}

ValuePtr make_int(int64_t value, Value::Kind kind = Value::Kind::kInt) {
  ValuePtr v = make(kind);
  v->integer = value;
  return v;
}

ValuePtr make_text(std::string text, Value::Kind kind = Value::Kind::kText) {
  ValuePtr v = make(kind);
  v->text = std::move(text);
  return v;
}

ValuePtr make_object(const ValuePtr& cls, ValuePtr args) {
  ValuePtr v = make_text(cls->kind == Value::Kind::kGlobal ? cls->text : "?", Value::Kind::kObject);
  v->items.push_back(std::move(args));
  return v;
}

bool is_int_tuple(const Value& v) {
  return v.kind == Value::Kind::kTuple &&
         std::all_of(v.items.begin(), v.items.end(),
                     [](const ValuePtr& i) { return i->kind == Value::Kind::kInt; });
}

// The storage classes torch.save names in its persistent ids (PyTorch 1.x and 2.x alike).
std::optional<c10::ScalarType> storage_dtype(const std::string& global) {
  static const std::map<std::string, c10::ScalarType> kDtypes = {
      {"torch.FloatStorage", c10::ScalarType::Float},
      {"torch.DoubleStorage", c10::ScalarType::Double},
      {"torch.HalfStorage", c10::ScalarType::Half},
      {"torch.BFloat16Storage", c10::ScalarType::BFloat16},
      {"torch.LongStorage", c10::ScalarType::Long},
      {"torch.IntStorage", c10::ScalarType::Int},
      {"torch.ShortStorage", c10::ScalarType::Short},
      {"torch.CharStorage", c10::ScalarType::Char},
      {"torch.ByteStorage", c10::ScalarType::Byte},
      {"torch.BoolStorage", c10::ScalarType::Bool}};
  auto it = kDtypes.find(global);
  if (it == kDtypes.end()) return std::nullopt;
  return it->second;
}

// ---- The unpickler ----------------------------------------------------------------------------

// Runs the pickle opcodes of protocols 0-4 (torch.save writes protocol 2) into Values. Calls of
// the few functions a state dict needs (OrderedDict, the tensor rebuilders) are evaluated; any
// other call or class instantiation yields an opaque object instead of failing, which is what
// lets it read the optimizer's and scheduler's state around the model's.
class Unpickler {
 public:
  Unpickler(const char* data, size_t size, std::string origin)
      : data_(data), size_(size), origin_(std::move(origin)) {}

  ValuePtr run();

 private:
  using Kind = Value::Kind;

  [[noreturn]] void fail(const std::string& what) const {
    throw UserError(origin_ + ": damaged data.pkl at byte " + std::to_string(op_at_) + ": " + what);
  }

  uint8_t byte() {
    if (pos_ >= size_) fail("it ends before its STOP opcode");
    return static_cast<uint8_t>(data_[pos_++]);
  }
  uint64_t little_endian(int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v |= uint64_t{byte()} << (8 * i);
    return v;
  }
  std::string take(uint64_t n) {
    if (n > size_ - pos_) fail("a length of " + std::to_string(n) + " runs past the end");
    std::string s(data_ + pos_, static_cast<size_t>(n));
    pos_ += static_cast<size_t>(n);
    return s;
  }
  std::string line() {
    const void* end = std::memchr(data_ + pos_, '\n', size_ - pos_);
    if (end == nullptr) fail("a text argument has no end of line");
    const size_t n = static_cast<size_t>(static_cast<const char*>(end) - (data_ + pos_));
    std::string s(data_ + pos_, n);
    pos_ += n + 1;
    return s;
  }
  int64_t line_int() {
    std::string s = line();
    if (!s.empty() && s.back() == 'L') s.pop_back();  // protocol 0 longs end in L
    try {
      size_t used = 0;
      const int64_t v = std::stoll(s, &used);
      if (used == s.size()) return v;
    } catch (const std::logic_error&) {
    }
    fail("'" + printable(s) + "' is not a 64-bit integer");
  }
  // A little-endian two's-complement integer of n bytes (LONG1, LONG4); wider than 64 bits
  // stays opaque, since no tensor layout needs one.
  ValuePtr long_int(uint64_t n) {
    const std::string bytes = take(n);
    if (n > 8) return make_text("builtins.int", Kind::kObject);
    uint64_t v = 0;
    for (size_t i = 0; i < bytes.size(); ++i)
      v |= uint64_t{static_cast<uint8_t>(bytes[i])} << (8 * i);
    if (n > 0 && n < 8 && (static_cast<uint8_t>(bytes.back()) & 0x80)) v |= ~uint64_t{0} << (8 * n);
    return make_int(static_cast<int64_t>(v));
  }

  size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  void push(ValuePtr v) { stack_.push_back(std::move(v)); }
  ValuePtr pop() {
    if (stack_.size() <= floor()) fail("an opcode needs a value the stack does not hold");
    ValuePtr v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  const ValuePtr& top() {
    if (stack_.size() <= floor()) fail("an opcode needs a value the stack does not hold");
    return stack_.back();
  }
  std::vector<ValuePtr> pop_mark() {
    if (marks_.empty()) fail("an opcode needs a MARK that is not there");
    const auto mark = static_cast<std::ptrdiff_t>(marks_.back());
    marks_.pop_back();
    std::vector<ValuePtr> items(std::make_move_iterator(stack_.begin() + mark),
                                std::make_move_iterator(stack_.end()));
    stack_.erase(stack_.begin() + mark, stack_.end());
    return items;
  }
  ValuePtr sequence(Kind kind, std::vector<ValuePtr> items) {
    ValuePtr v = make(kind);
    v->items = std::move(items);
    return v;
  }
  void append(std::vector<ValuePtr> values) {
    Value& target = *top();
    if (target.kind != Kind::kList && target.kind != Kind::kObject)
      fail("APPEND to something that is not a list");
    for (auto& v : values) target.items.push_back(std::move(v));
  }
  void set_items(std::vector<ValuePtr> flat) {
    if (flat.size() % 2 != 0) fail("SETITEMS with a key and no value");
    Value& target = *top();
    if (target.kind != Kind::kDict && target.kind != Kind::kObject)
      fail("SETITEM on something that is not a dict");
    for (size_t i = 0; i < flat.size(); i += 2)
      target.entries.emplace_back(std::move(flat[i]), std::move(flat[i + 1]));
  }
  void memo_put(uint64_t index) { memo_[index] = top(); }
  ValuePtr memo_get(uint64_t index) {
    auto it = memo_.find(index);
    if (it == memo_.end()) fail("memo entry " + std::to_string(index) + " was never stored");
    return it->second;
  }
  ValuePtr global(std::string module, const std::string& name) {
    if (module == "__builtin__") module = "builtins";  // protocol 2 spells it the Python 2 way
    return make_text(module + "." + name, Kind::kGlobal);
  }

  ValuePtr apply(const ValuePtr& callable, const ValuePtr& args, int nesting = 0);
  ValuePtr tensor(const ValuePtr& callable, const ValuePtr& args);
  ValuePtr persistent(const ValuePtr& pid);

  const char* data_;
  size_t size_;
  std::string origin_;
  size_t pos_ = 0;
  size_t op_at_ = 0;
  std::vector<ValuePtr> stack_;
  std::vector<size_t> marks_;  // stack sizes at each MARK (Python's metastack)
  std::unordered_map<uint64_t, ValuePtr> memo_;
};

// A call the pickle makes (REDUCE). Dict constructors give dicts (OrderedDict is every state
// dict; its _metadata attribute arrives through BUILD and is dropped); the tensor rebuilders give
// tensors; TorchScript's type tags (our own model.pt) give their argument.
ValuePtr Unpickler::apply(const ValuePtr& callable, const ValuePtr& args, int nesting) {
  const std::string name = callable->kind == Kind::kGlobal ? callable->text : "";
  const std::vector<ValuePtr>& a = args->items;
  const bool tuple = args->kind == Kind::kTuple;
  if (name == "collections.OrderedDict" || name == "collections.defaultdict" ||
      name == "builtins.dict")
    return make(Kind::kDict);
  if (name == "torch._utils._rebuild_tensor_v2") return tensor(callable, args);
  if ((name == "torch._utils._rebuild_parameter" ||
       name == "torch._utils._rebuild_parameter_with_state") &&
      tuple && !a.empty())
    return a[0];
  // A tensor subclass or a tensor with Python attributes: (function, type, arguments, state).
  if (name == "torch._tensor._rebuild_from_type_v2" && tuple && a.size() >= 3 &&
      a[2]->kind == Kind::kTuple && nesting < 4)
    return apply(a[0], a[2], nesting + 1);
  if (name.rfind("torch.jit._pickle.", 0) == 0 && tuple && !a.empty()) return a[0];
  return make_object(callable, args);
}

// torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
// backward_hooks[, metadata]): a view of a storage record, read only if the tensor is wanted.
// Arguments of another shape leave an opaque object, which the entry holding it reports.
ValuePtr Unpickler::tensor(const ValuePtr& callable, const ValuePtr& args) {
  const std::vector<ValuePtr>& a = args->items;
  if (args->kind != Kind::kTuple || a.size() < 4 || a[0]->kind != Kind::kStorage ||
      a[1]->kind != Kind::kInt || !is_int_tuple(*a[2]) || !is_int_tuple(*a[3]) ||
      a[2]->items.size() != a[3]->items.size())
    return make_object(callable, args);
  ValuePtr t = make_text(a[0]->text, Kind::kTensor);
  t->dtype = a[0]->dtype;
  t->integer = a[1]->integer;
  for (const auto& s : a[2]->items) t->sizes.push_back(s->integer);
  for (const auto& s : a[3]->items) t->strides.push_back(s->integer);
  return t;
}

// torch.save's persistent id of a storage: ("storage", torch.<Type>Storage, key, location,
// numel). The bytes are the archive's record data/<key>; the location (cuda:0) is ignored.
ValuePtr Unpickler::persistent(const ValuePtr& pid) {
  const std::vector<ValuePtr>& a = pid->items;
  if (pid->kind == Kind::kTuple && a.size() >= 3 && a[0]->kind == Kind::kText &&
      a[0]->text == "storage" && a[1]->kind == Kind::kGlobal && a[2]->kind == Kind::kText) {
    if (const auto dtype = storage_dtype(a[1]->text)) {
      ValuePtr s = make_text(a[2]->text, Kind::kStorage);
      s->dtype = *dtype;
      return s;
    }
  }
  return make_object(make_text("persistent id", Kind::kGlobal), pid);
}

ValuePtr Unpickler::run() {
  for (;;) {
    op_at_ = pos_;
    const uint8_t op = byte();
    switch (op) {
      case 0x80:  // PROTO
        byte();
        break;
      case 0x95:  // FRAME: only streaming readers care
        little_endian(8);
        break;
      case '.':  // STOP
        return top();
      case '(':  // MARK
        marks_.push_back(stack_.size());
        break;
      case '0':  // POP
        pop();
        break;
      case '1':  // POP_MARK
        pop_mark();
        break;
      case '2':  // DUP
        push(top());
        break;
      case 'N':  // NONE
        push(make(Kind::kNone));
        break;
      case 0x88:  // NEWTRUE
        push(make_int(1, Kind::kBool));
        break;
      case 0x89:  // NEWFALSE
        push(make_int(0, Kind::kBool));
        break;
      case 'K':  // BININT1
        push(make_int(byte()));
        break;
      case 'M':  // BININT2
        push(make_int(static_cast<int64_t>(little_endian(2))));
        break;
      case 'J':  // BININT
        push(make_int(static_cast<int32_t>(static_cast<uint32_t>(little_endian(4)))));
        break;
      case 0x8a:  // LONG1
        push(long_int(byte()));
        break;
      case 0x8b:  // LONG4
        push(long_int(little_endian(4)));
        break;
      case 'I':  // INT (protocol 0; 01 and 00 are True and False)
      case 'L':  // LONG
        push(make_int(line_int()));
        break;
      case 'G':  // BINFLOAT: no layout needs the value
        take(8);
        push(make(Kind::kFloat));
        break;
      case 'F':  // FLOAT
        line();
        push(make(Kind::kFloat));
        break;
      case 'X':  // BINUNICODE
      case 'T':  // BINSTRING
      case 'B':  // BINBYTES
        push(make_text(take(little_endian(4))));
        break;
      case 0x8c:  // SHORT_BINUNICODE
      case 'U':   // SHORT_BINSTRING
      case 'C':   // SHORT_BINBYTES
        push(make_text(take(byte())));
        break;
      case 0x8d:  // BINUNICODE8
      case 0x8e:  // BINBYTES8
        push(make_text(take(little_endian(8))));
        break;
      case 'S':  // STRING
      case 'V':  // UNICODE (the escapes are kept as written)
        push(make_text(line()));
        break;
      case ')':  // EMPTY_TUPLE
      case ']':  // EMPTY_LIST
      case '}':  // EMPTY_DICT
        push(make(op == ')' ? Kind::kTuple : op == ']' ? Kind::kList : Kind::kDict));
        break;
      case 0x85:    // TUPLE1
      case 0x86:    // TUPLE2
      case 0x87: {  // TUPLE3
        std::vector<ValuePtr> items(static_cast<size_t>(op - 0x84));
        for (auto it = items.rbegin(); it != items.rend(); ++it) *it = pop();
        push(sequence(Kind::kTuple, std::move(items)));
        break;
      }
      case 't':  // TUPLE
      case 'l':  // LIST
        push(sequence(op == 't' ? Kind::kTuple : Kind::kList, pop_mark()));
        break;
      case 'd': {  // DICT
        std::vector<ValuePtr> flat = pop_mark();
        push(make(Kind::kDict));
        set_items(std::move(flat));
        break;
      }
      case 0x8f:  // EMPTY_SET
        push(make_text("builtins.set", Kind::kObject));
        break;
      case 0x91: {  // FROZENSET
        ValuePtr set = make_text("builtins.frozenset", Kind::kObject);
        set->items = pop_mark();
        push(std::move(set));
        break;
      }
      case 'a': {  // APPEND
        ValuePtr v = pop();
        append({std::move(v)});
        break;
      }
      case 'e':   // APPENDS
      case 0x90:  // ADDITEMS
        append(pop_mark());
        break;
      case 's': {  // SETITEM
        ValuePtr value = pop();
        ValuePtr key = pop();
        set_items({std::move(key), std::move(value)});
        break;
      }
      case 'u':  // SETITEMS
        set_items(pop_mark());
        break;
      case 'c': {  // GLOBAL
        std::string module = line();
        const std::string name = line();
        push(global(std::move(module), name));
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        ValuePtr name = pop();
        ValuePtr module = pop();
        if (module->kind != Kind::kText || name->kind != Kind::kText)
          fail("STACK_GLOBAL of something that is not a string");
        push(global(module->text, name->text));
        break;
      }
      case 'R': {  // REDUCE
        ValuePtr args = pop();
        ValuePtr callable = pop();
        push(apply(callable, args));
        break;
      }
      case 0x81: {  // NEWOBJ
        ValuePtr args = pop();
        ValuePtr cls = pop();
        push(make_object(cls, std::move(args)));
        break;
      }
      case 0x92: {  // NEWOBJ_EX
        pop();      // the keyword arguments
        ValuePtr args = pop();
        ValuePtr cls = pop();
        push(make_object(cls, std::move(args)));
        break;
      }
      case 'o': {  // OBJ
        std::vector<ValuePtr> items = pop_mark();
        if (items.empty()) fail("OBJ without a class");
        ValuePtr cls = items.front();
        items.erase(items.begin());
        push(make_object(cls, sequence(Kind::kTuple, std::move(items))));
        break;
      }
      case 'i': {  // INST
        std::string module = line();
        const std::string name = line();
        push(make_object(global(std::move(module), name), sequence(Kind::kTuple, pop_mark())));
        break;
      }
      case 'b':  // BUILD: the state sets attributes (an OrderedDict's _metadata), never items
        pop();
        top();
        break;
      case 'Q':  // BINPERSID
        push(persistent(pop()));
        break;
      case 'P':  // PERSID
        push(persistent(make_text(line())));
        break;
      case 'q':  // BINPUT
        memo_put(byte());
        break;
      case 'r':  // LONG_BINPUT
        memo_put(little_endian(4));
        break;
      case 'p':  // PUT
        memo_put(static_cast<uint64_t>(line_int()));
        break;
      case 0x94:  // MEMOIZE
        memo_put(memo_.size());
        break;
      case 'h':  // BINGET
        push(memo_get(byte()));
        break;
      case 'j':  // LONG_BINGET
        push(memo_get(little_endian(4)));
        break;
      case 'g':  // GET
        push(memo_get(static_cast<uint64_t>(line_int())));
        break;
      default: {
        char hex[8];
        std::snprintf(hex, sizeof(hex), "0x%02x", op);
        fail(std::string("opcode ") + hex + " is not one torch.save writes");
      }
    }
  }
}

}  // namespace

ValuePtr unpickle(const char* data, size_t size, const std::string& origin) {
  return Unpickler(data, size, origin).run();
}

}  // namespace fullbatch::pickle
