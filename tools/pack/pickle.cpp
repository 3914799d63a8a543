#include "pickle.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <unordered_map>

#include "error.h"

namespace t2r::pickle {

using Kind = Value::Kind;

std::string_view kind_name(Kind k) {
  switch (k) {
    case Kind::None: return "None";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::Float: return "float";
    case Kind::String: return "str";
    case Kind::Bytes: return "bytes";
    case Kind::Tuple: return "tuple";
    case Kind::List: return "list";
    case Kind::Dict: return "dict";
    case Kind::Namespace: return "Namespace";
    case Kind::Global: return "global";
    case Kind::Storage: return "storage";
    case Kind::Tensor: return "tensor";
  }
  return "?";
}

const Value* Value::get(std::string_view key) const {
  for (auto it = pairs.rbegin(); it != pairs.rend(); ++it)
    if (it->first->kind == Kind::String && it->first->text == key) return it->second;
  return nullptr;
}

namespace {

constexpr size_t kMaxStack = size_t(1) << 20;  // stack entries plus marks

constexpr std::string_view kAllowedGlobals[] = {
    "collections OrderedDict", "torch._utils _rebuild_tensor_v2", "torch._utils _rebuild_parameter",
    "torch FloatStorage",      "torch HalfStorage",               "torch BFloat16Storage",
    "torch DoubleStorage",     "torch IntStorage",                "torch LongStorage",
    "argparse Namespace"};

// RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF.
bool valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c < 0x80) n = 1;
    else if (c >= 0xC2 && c <= 0xDF) n = 2;
    else if (c >= 0xE0 && c <= 0xEF) n = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    else if (c >= 0xF0 && c <= 0xF4) n = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    else return false;
    if (s.size() - i < n) return false;
    for (size_t k = 1; k < n; ++k) {
      auto b = static_cast<unsigned char>(s[i + k]);
      if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return false;
    }
    i += n;
  }
  return true;
}

class Unpickler {
 public:
  Unpickler(std::string_view data, std::deque<Value>& values) : data_(data), values_(values) {}

  const Value* run() {
    for (;;) {
      op_pos_ = pos_;
      if (pos_ >= data_.size()) fail("data ends without a STOP opcode");
      auto op = static_cast<unsigned char>(data_[pos_++]);
      if (op == '.') break;
      step(op);
    }
    if (stack_.size() != 1 || !marks_.empty())
      fail("STOP with " + std::to_string(stack_.size()) + " values on the stack, expected one");
    if (pos_ != data_.size()) fail("data after STOP");
    return stack_.back();
  }

 private:
  std::string_view data_;
  size_t pos_ = 0, op_pos_ = 0;
  std::deque<Value>& values_;
  std::vector<Value*> stack_;
  std::vector<size_t> marks_;  // stack sizes at each MARK
  std::unordered_map<uint64_t, Value*> memo_;

  [[noreturn]] void fail(const std::string& what) const {
    throw Error("pickle: " + what + " at offset " + std::to_string(op_pos_));
  }

  // --- reading the stream ---
  std::string_view take(uint64_t n) {
    if (n > data_.size() - pos_) fail("truncated data");
    std::string_view out = data_.substr(pos_, n);
    pos_ += n;
    return out;
  }
  uint64_t uint_le(int n) {
    std::string_view b = take(n);
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(b[i]);
    return v;
  }
  std::string_view line() {
    size_t end = data_.find('\n', pos_);
    if (end == std::string_view::npos) fail("truncated data");
    std::string_view out = data_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return out;
  }

  // --- values and the stack ---
  Value* make(Kind k) {
    if (values_.size() >= kMaxValues) fail("more than " + std::to_string(kMaxValues) + " values");
    values_.emplace_back();
    values_.back().kind = k;
    return &values_.back();
  }
  void push(Value* v) {
    if (stack_.size() + marks_.size() >= kMaxStack) fail("stack deeper than " + std::to_string(kMaxStack));
    stack_.push_back(v);
  }
  size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  Value* pop() {
    if (stack_.size() <= floor()) fail("stack underflow");
    Value* v = stack_.back();
    stack_.pop_back();
    return v;
  }
  Value* top() {
    if (stack_.size() <= floor()) fail("stack underflow");
    return stack_.back();
  }
  std::vector<Value*> pop_mark() {
    if (marks_.empty()) fail("no MARK to pop to");
    std::vector<Value*> items(stack_.begin() + marks_.back(), stack_.end());
    stack_.resize(marks_.back());
    marks_.pop_back();
    return items;
  }
  Value* expect(Value* v, Kind k, const char* role) {
    if (v->kind != k)
      fail(std::string(role) + " has type " + std::string(kind_name(v->kind)) + ", expected " +
           std::string(kind_name(k)));
    return v;
  }

  // Records `child` as held by `parent`. A held value is frozen, and only unfrozen values are
  // modified, so no cycle can form and depth and tree size never change once a value is held.
  void hold(Value* parent, Value* child) {
    child->frozen = true;
    count(parent, child);
  }
  void count(Value* parent, const Value* child) {
    if (parent->frozen) fail("modifying a " + std::string(kind_name(parent->kind)) + " already in use");
    if (child->depth + 1 > kMaxDepth) fail("values nested deeper than " + std::to_string(kMaxDepth));
    parent->depth = std::max(parent->depth, child->depth + 1);
    parent->tree_size += child->tree_size;  // both <= 2^22, cannot overflow
    if (parent->tree_size > kMaxTreeSize)
      fail("value expands to more than " + std::to_string(kMaxTreeSize) + " values");
  }
  Value* make_sequence(Kind k, const std::vector<Value*>& items) {
    Value* v = make(k);
    for (Value* item : items) {
      hold(v, item);
      v->items.push_back(item);
    }
    return v;
  }
  void append(Value* list, const std::vector<Value*>& items) {
    expect(list, Kind::List, "APPEND target");
    for (Value* item : items) {
      hold(list, item);
      list->items.push_back(item);
    }
  }
  void set_items(Value* dict, const std::vector<Value*>& kv) {
    expect(dict, Kind::Dict, "SETITEM target");
    if (kv.size() % 2) fail("SETITEMS with an odd number of values");
    for (size_t i = 0; i < kv.size(); i += 2) {
      hold(dict, kv[i]);
      hold(dict, kv[i + 1]);
      dict->pairs.emplace_back(kv[i], kv[i + 1]);
    }
  }
  void memo_put(uint64_t key) {
    Value* v = top();
    memo_[key] = v;
  }
  void memo_get(uint64_t key) {
    auto it = memo_.find(key);
    if (it == memo_.end()) fail("memo key " + std::to_string(key) + " not found");
    push(it->second);
  }

  void push_string(Kind k, std::string_view bytes) {
    if (k == Kind::String && !valid_utf8(bytes)) fail("invalid UTF-8 in a string");
    Value* v = make(k);
    v->text = std::string(bytes);
    push(v);
  }
  void push_int(int64_t i) {
    Value* v = make(Kind::Int);
    v->integer = i;
    push(v);
  }
  // LONG1/LONG4: little-endian two's complement of n bytes; Python writes the fewest bytes, so
  // anything that fits in int64 takes at most 8.
  void push_long(uint64_t n) {
    if (n > 8) fail("integer does not fit in int64");
    std::string_view b = take(n);
    uint64_t u = 0;
    for (size_t i = n; i-- > 0;) u = (u << 8) | static_cast<unsigned char>(b[i]);
    if (n > 0 && n < 8 && (static_cast<unsigned char>(b[n - 1]) & 0x80)) u |= ~uint64_t(0) << (8 * n);
    push_int(static_cast<int64_t>(u));
  }
  void push_global(std::string_view module, std::string_view name) {
    if (module.size() + name.size() > 200) fail("overlong global name");
    std::string full = std::string(module) + " " + std::string(name);
    if (std::find(std::begin(kAllowedGlobals), std::end(kAllowedGlobals), full) == std::end(kAllowedGlobals))
      fail("refusing global '" + full + "'");
    Value* v = make(Kind::Global);
    v->text = full;
    push(v);
  }

  // --- the allowed callables ---
  Value* reduce(const Value& callable, const Value& args) {
    const std::string& f = callable.text;
    const auto& a = args.items;
    if (f == "collections OrderedDict") {
      if (!a.empty()) fail("OrderedDict called with arguments");
      return make(Kind::Dict);
    }
    if (f == "torch._utils _rebuild_tensor_v2") return rebuild_tensor(a);
    if (f == "torch._utils _rebuild_parameter") {
      if (a.size() != 3 || a[0]->kind != Kind::Tensor)
        fail("_rebuild_parameter expects (tensor, requires_grad, hooks)");
      // The tensor is frozen (held by `args`), so handing out a mutable pointer changes nothing.
      return const_cast<Value*>(a[0]);
    }
    fail("cannot call '" + f + "'");
  }

  // _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, backward_hooks[, metadata])
  Value* rebuild_tensor(const std::vector<const Value*>& a) {
    if (a.size() != 6 && a.size() != 7) fail("_rebuild_tensor_v2 expects 6 or 7 arguments");
    if (a[0]->kind != Kind::Storage) fail("_rebuild_tensor_v2: first argument is not a storage");
    if (a[1]->kind != Kind::Int || a[1]->integer < 0) fail("_rebuild_tensor_v2: bad storage offset");
    if (a[2]->kind != Kind::Tuple || a[3]->kind != Kind::Tuple || a[2]->items.size() != a[3]->items.size())
      fail("_rebuild_tensor_v2: size and stride must be tuples of one length");
    if (a[4]->kind != Kind::Bool) fail("_rebuild_tensor_v2: requires_grad is not a bool");
    Value* t = make(Kind::Tensor);
    t->storage = a[0];
    t->storage_offset = a[1]->integer;
    for (size_t d = 0; d < a[2]->items.size(); ++d) {
      const Value* size = a[2]->items[d];
      const Value* stride = a[3]->items[d];
      if (size->kind != Kind::Int || size->integer < 0 || stride->kind != Kind::Int || stride->integer < 0)
        fail("_rebuild_tensor_v2: sizes and strides must be non-negative ints");
      t->shape.push_back(size->integer);
      t->stride.push_back(stride->integer);
    }
    t->depth = 2;
    t->tree_size = 2;
    return t;
  }

  Value* newobj(const Value& cls, const Value& args) {
    if (cls.text != "argparse Namespace" || !args.items.empty())
      fail("cannot construct '" + cls.text + "'");
    return make(Kind::Namespace);
  }

  void build(Value* obj, Value* state) {
    if (obj->kind == Kind::Dict) return;  // attributes of an OrderedDict, e.g. _metadata
    if (obj->kind != Kind::Namespace) fail("cannot BUILD a " + std::string(kind_name(obj->kind)));
    expect(state, Kind::Dict, "Namespace state");
    for (const auto& [k, v] : state->pairs) {  // already frozen, being held by `state`
      count(obj, k);
      count(obj, v);
      obj->pairs.emplace_back(k, v);
    }
  }

  // ('storage', StorageType, key, location, numel), as torch.save writes it.
  Value* persistent_load(const Value& pid) {
    const auto& a = pid.items;
    if (pid.kind != Kind::Tuple || a.size() != 5 || a[0]->kind != Kind::String || a[0]->text != "storage")
      fail("unsupported persistent id");
    // Of the allowed globals, exactly the torch storage types end in "Storage".
    const std::string& type = a[1]->text;
    if (a[1]->kind != Kind::Global || type.size() < 7 || type.compare(type.size() - 7, 7, "Storage") != 0)
      fail("persistent id does not name a storage type");
    if (a[2]->kind != Kind::String || a[3]->kind != Kind::String || a[4]->kind != Kind::Int ||
        a[4]->integer < 0)
      fail("malformed storage persistent id");
    Value* s = make(Kind::Storage);
    s->storage_type = type.substr(type.find(' ') + 1);
    s->text = a[2]->text;
    s->location = a[3]->text;
    s->numel = a[4]->integer;
    return s;
  }

  void step(unsigned char op) {
    switch (op) {
      case 0x80:                                                              // PROTO
        if (uint_le(1) > 5) fail("unsupported pickle protocol");
        break;
      case 0x95:  // FRAME: a length prefix for buffering only; the opcodes follow as usual
        if (uint_le(8) > data_.size() - pos_) fail("frame extends beyond the data");
        break;
      case '(':                                                               // MARK
        if (stack_.size() + marks_.size() >= kMaxStack) fail("too many MARKs");
        marks_.push_back(stack_.size());
        break;
      case '0': pop(); break;                                                 // POP
      case '1': pop_mark(); break;                                            // POP_MARK
      case '2': push(top()); break;                                           // DUP
      case 'N': push(make(Kind::None)); break;
      case 0x88: case 0x89: {                                                 // NEWTRUE, NEWFALSE
        Value* v = make(Kind::Bool);
        v->boolean = op == 0x88;
        push(v);
        break;
      }
      case 'J': push_int(static_cast<int32_t>(uint_le(4))); break;            // BININT
      case 'K': push_int(int64_t(uint_le(1))); break;                         // BININT1
      case 'M': push_int(int64_t(uint_le(2))); break;                         // BININT2
      case 0x8a: push_long(uint_le(1)); break;                                // LONG1
      case 0x8b: push_long(uint_le(4)); break;                                // LONG4
      case 'G': {                                                             // BINFLOAT, big-endian
        std::string_view b = take(8);
        uint64_t bits = 0;
        for (char c : b) bits = (bits << 8) | static_cast<unsigned char>(c);
        Value* v = make(Kind::Float);
        std::memcpy(&v->real, &bits, 8);
        push(v);
        break;
      }
      case 'X': push_string(Kind::String, take(uint_le(4))); break;           // BINUNICODE
      case 0x8c: push_string(Kind::String, take(uint_le(1))); break;          // SHORT_BINUNICODE
      case 0x8d: push_string(Kind::String, take(uint_le(8))); break;          // BINUNICODE8
      case 'B': push_string(Kind::Bytes, take(uint_le(4))); break;            // BINBYTES
      case 'C': push_string(Kind::Bytes, take(uint_le(1))); break;            // SHORT_BINBYTES
      case 0x8e: push_string(Kind::Bytes, take(uint_le(8))); break;           // BINBYTES8
      case ')': push(make(Kind::Tuple)); break;                               // EMPTY_TUPLE
      case 't': push(make_sequence(Kind::Tuple, pop_mark())); break;          // TUPLE
      case 0x85: case 0x86: case 0x87: {                                      // TUPLE1..3
        std::vector<Value*> items(op - 0x84);
        for (size_t i = items.size(); i-- > 0;) items[i] = pop();
        push(make_sequence(Kind::Tuple, items));
        break;
      }
      case ']': push(make(Kind::List)); break;                                // EMPTY_LIST
      case 'a': { Value* item = pop(); append(top(), {item}); break; }        // APPEND
      case 'e': { auto items = pop_mark(); append(top(), items); break; }     // APPENDS
      case '}': push(make(Kind::Dict)); break;                                // EMPTY_DICT
      case 's': {                                                             // SETITEM
        Value* v = pop();
        Value* k = pop();
        set_items(top(), {k, v});
        break;
      }
      case 'u': { auto kv = pop_mark(); set_items(top(), kv); break; }        // SETITEMS
      case 'q': memo_put(uint_le(1)); break;                                  // BINPUT
      case 'r': memo_put(uint_le(4)); break;                                  // LONG_BINPUT
      case 0x94: memo_put(memo_.size()); break;                               // MEMOIZE
      case 'h': memo_get(uint_le(1)); break;                                  // BINGET
      case 'j': memo_get(uint_le(4)); break;                                  // LONG_BINGET
      case 'c': {                                                             // GLOBAL
        std::string_view module = line();
        push_global(module, line());
        break;
      }
      case 0x93: {                                                            // STACK_GLOBAL
        Value* name = expect(pop(), Kind::String, "STACK_GLOBAL name");
        Value* module = expect(pop(), Kind::String, "STACK_GLOBAL module");
        push_global(module->text, name->text);
        break;
      }
      case 'R': {                                                             // REDUCE
        Value* args = expect(pop(), Kind::Tuple, "REDUCE arguments");
        Value* callable = expect(pop(), Kind::Global, "REDUCE callable");
        push(reduce(*callable, *args));
        break;
      }
      case 0x81: {                                                            // NEWOBJ
        Value* args = expect(pop(), Kind::Tuple, "NEWOBJ arguments");
        Value* cls = expect(pop(), Kind::Global, "NEWOBJ class");
        push(newobj(*cls, *args));
        break;
      }
      case 'b': { Value* state = pop(); build(top(), state); break; }         // BUILD
      case 'Q': push(persistent_load(*pop())); break;                         // BINPERSID
      default: {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02x", op);
        fail(std::string("unsupported opcode ") + hex);
      }
    }
  }
};

}  // namespace

Document unpickle(std::string_view data) {
  Document doc;
  doc.root_ = Unpickler(data, doc.values_).run();
  return doc;
}

}  // namespace t2r::pickle
