#include "torch_checkpoint.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "dtype.h"
#include "error.h"
#include "pickle.h"
#include "zip_archive.h"

namespace t2r {

namespace {

using pickle::Value;
using Kind = Value::Kind;

struct TypeInfo {
  std::string_view storage_type, dtype;
  size_t size;
};
constexpr TypeInfo kTypes[] = {{"FloatStorage", "F32", 4},     {"HalfStorage", "F16", 2},
                               {"BFloat16Storage", "BF16", 2}, {"DoubleStorage", "F64", 8},
                               {"IntStorage", "I32", 4},       {"LongStorage", "I64", 8}};

size_t element_size(std::string_view dtype) {
  for (const auto& t : kTypes)
    if (t.dtype == dtype) return t.size;
  throw Error("unknown tensor dtype '" + std::string(dtype) + "'");
}

// Every element the view reaches must lie inside the storage. A view with more elements than
// its storage (stride 0, overlapping) is refused too, which bounds what a gather allocates.
void check_view(const TorchTensor& t) {
  const std::string where = "tensor '" + t.name + "': ";
  if (t.shape.size() != t.stride.size()) throw Error(where + "shape and stride differ in length");
  const uint64_t elements = t.storage_bytes.size() / element_size(t.dtype);
  if (t.storage_offset < 0 || uint64_t(t.storage_offset) > elements)
    throw Error(where + "storage offset " + std::to_string(t.storage_offset) + " is outside its storage");
  for (int64_t s : t.shape)
    if (s == 0) return;  // no elements to reach
  // Each product and sum is compared against `elements` (< 2^61) before it could overflow.
  uint64_t last = uint64_t(t.storage_offset);
  for (size_t d = 0; d < t.shape.size(); ++d) {
    uint64_t extent = uint64_t(t.shape[d]) - 1, stride = uint64_t(t.stride[d]);
    if (stride != 0 && extent > (elements - last) / stride)
      last = elements;
    else
      last += extent * stride;
  }
  if (last >= elements)
    throw Error(where + "reaches beyond its storage of " + std::to_string(elements) + " elements");
  uint64_t numel = 1;
  for (int64_t s : t.shape) {
    if (uint64_t(s) > elements / numel)
      throw Error(where + "has more elements than its storage of " + std::to_string(elements));
    numel *= uint64_t(s);
  }
}

// The args Namespace as JSON; nullopt for values JSON cannot express, which are skipped.
std::optional<json::Value> to_json(const Value& v) {
  switch (v.kind) {
    case Kind::None: return json::Value();
    case Kind::Bool: return json::Value::boolean(v.boolean);
    case Kind::Int: return json::Value::number(double(v.integer));
    case Kind::Float: return json::Value::number(v.real);
    case Kind::String: return json::Value::string(v.text);
    case Kind::List:
    case Kind::Tuple: {
      json::Value::Array items;
      for (const Value* item : v.items) {
        std::optional<json::Value> j = to_json(*item);
        if (!j) return std::nullopt;
        items.push_back(std::move(*j));
      }
      return json::Value::array(std::move(items));
    }
    case Kind::Dict:
    case Kind::Namespace: {
      json::Value::Object members;
      for (const auto& [key, value] : v.pairs) {
        if (key->kind != Kind::String) continue;
        if (std::optional<json::Value> j = to_json(*value)) members.emplace_back(key->text, std::move(*j));
      }
      return json::Value::object(std::move(members));
    }
    default: return std::nullopt;
  }
}

// The one `<dir>/data.pkl` of the archive gives the prefix of every other entry.
std::string find_prefix(const ZipArchive& zip) {
  std::string prefix;
  int found = 0;
  for (const std::string& name : zip.names()) {
    size_t slash = name.find('/');
    if (slash != std::string::npos && name.compare(slash, std::string::npos, "/data.pkl") == 0) {
      prefix = name.substr(0, slash + 1);
      ++found;
    }
  }
  if (found != 1)
    throw Error("expected exactly one <dir>/data.pkl in the archive, found " + std::to_string(found));
  return prefix;
}

TorchTensor make_tensor(const std::string& name, const Value& v, const ZipArchive& zip,
                        const std::string& prefix, std::map<std::string, std::string_view>* storages) {
  if (v.kind != Kind::Tensor)
    throw Error("model entry '" + name + "' has type " + std::string(kind_name(v.kind)) + ", not tensor");
  const Value& s = *v.storage;
  TorchTensor t;
  t.name = name;
  for (const auto& type : kTypes)
    if (type.storage_type == s.storage_type) t.dtype = type.dtype;
  if (t.dtype.empty()) throw Error("tensor '" + name + "' has unsupported storage " + s.storage_type);
  t.shape = v.shape;
  t.stride = v.stride;
  t.storage_offset = v.storage_offset;
  // Tied weights share a storage; read (and CRC-check) it once.
  auto it = storages->find(s.text);
  if (it == storages->end()) it = storages->emplace(s.text, zip.read(prefix + "data/" + s.text)).first;
  t.storage_bytes = it->second;
  const size_t esize = element_size(t.dtype);
  if (t.storage_bytes.size() % esize != 0 || uint64_t(s.numel) != t.storage_bytes.size() / esize)
    throw Error("tensor '" + name + "': storage " + s.text + " holds " +
                std::to_string(t.storage_bytes.size()) + " bytes, expected " + std::to_string(s.numel) +
                " elements of " + std::to_string(esize));
  check_view(t);
  return t;
}

// Hostile sharing could make a small pickle expand into a huge JSON tree; real args are small.
constexpr uint64_t kMaxArgsValues = 1 << 16;

// The tensors of a state dict, in file order; every entry must be a tensor under a unique string key.
std::vector<TorchTensor> tensors_of(const Value& dict, const std::string& what, const ZipArchive& zip,
                                    const std::string& prefix) {
  std::vector<TorchTensor> tensors;
  std::map<std::string, std::string_view> storages;
  std::set<std::string_view> names;
  for (const auto& [key, value] : dict.pairs) {
    if (key->kind != Kind::String) throw Error("a '" + what + "' key has type " + std::string(kind_name(key->kind)));
    if (!names.insert(key->text).second) throw Error("duplicate model entry '" + key->text + "'");
    tensors.push_back(make_tensor(key->text, *value, zip, prefix, &storages));
  }
  return tensors;
}

// Opens the archive, unpickles its data.pkl and calls read(zip, prefix, root dict); errors name `label`.
template <typename Read>
TorchCheckpoint read_archive(std::string_view bytes, const std::string& label, Read read) {
  try {
    ZipArchive zip(bytes, label);
    const std::string prefix = find_prefix(zip);
    if (zip.contains(prefix + "byteorder") && zip.read(prefix + "byteorder") != "little")
      throw Error("byteorder is not 'little'");
    pickle::Document doc = pickle::unpickle(zip.read(prefix + "data.pkl"));
    const Value& root = doc.root();
    if (root.kind != Kind::Dict)
      throw Error("top level has type " + std::string(kind_name(root.kind)) + ", not dict");
    return read(zip, prefix, root);
  } catch (const Error& e) {
    throw Error("torch checkpoint '" + label + "': " + e.what());
  }
}

}  // namespace

TorchCheckpoint read_torch_checkpoint(const std::string& path) {
  MappedFile file(path);
  TorchCheckpoint checkpoint = parse_torch_checkpoint(file.bytes(), path);
  checkpoint.file = std::move(file);  // moving a mapping keeps its address
  return checkpoint;
}

TorchCheckpoint parse_torch_checkpoint(std::string_view bytes, const std::string& label) {
  return read_archive(bytes, label, [](const ZipArchive& zip, const std::string& prefix, const Value& root) {
    const Value* args = root.get("args");
    if (!args || args->kind == Kind::None)
      throw Error("no 'args' (newer fairseq keeps its configuration in 'cfg', which is not supported yet)");
    if (args->kind != Kind::Namespace)
      throw Error("'args' has type " + std::string(kind_name(args->kind)) + ", not Namespace");
    if (args->tree_size > kMaxArgsValues) throw Error("'args' holds implausibly many values");

    const Value* model = root.get("model");
    if (!model || model->kind != Kind::Dict) throw Error("no 'model' dict");
    return TorchCheckpoint{std::nullopt, *to_json(*args), tensors_of(*model, "model", zip, prefix)};
  });
}

TorchCheckpoint read_torch_state_dict(const std::string& path) {
  MappedFile file(path);
  TorchCheckpoint checkpoint =
      read_archive(file.bytes(), path, [](const ZipArchive& zip, const std::string& prefix, const Value& root) {
        const Value* state = root.get("model_state_dict");
        if (state && state->kind != Kind::Dict) throw Error("'model_state_dict' is not a dict");
        const std::string what = state ? "model_state_dict" : "state dict";
        return TorchCheckpoint{std::nullopt, json::Value(), tensors_of(state ? *state : root, what, zip, prefix)};
      });
  checkpoint.file = std::move(file);
  return checkpoint;
}

namespace {

float load_f32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  uint32_t bits = uint32_t(u[0]) | uint32_t(u[1]) << 8 | uint32_t(u[2]) << 16 | uint32_t(u[3]) << 24;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
uint16_t load_u16(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return uint16_t(u[0] | u[1] << 8);
}
float load_f16(const char* p) { return f16_to_f32(load_u16(p)); }
float load_bf16(const char* p) { return bf16_to_f32(load_u16(p)); }
float load_f64(const char* p) {
  uint64_t bits = 0;
  for (int i = 7; i >= 0; --i) bits = (bits << 8) | static_cast<unsigned char>(p[i]);
  double d;
  std::memcpy(&d, &bits, 8);
  return static_cast<float>(d);
}

}  // namespace

std::vector<float> torch_tensor_to_f32(const TorchTensor& t) {
  float (*load)(const char*) = nullptr;
  if (t.dtype == "F32")
    load = load_f32;
  else if (t.dtype == "F16")
    load = load_f16;
  else if (t.dtype == "BF16")
    load = load_bf16;
  else if (t.dtype == "F64")
    load = load_f64;
  else
    throw Error("tensor '" + t.name + "' has dtype " + t.dtype + "; only float tensors convert to f32");
  check_view(t);
  const size_t esize = element_size(t.dtype);
  size_t numel = 1;
  for (int64_t s : t.shape) numel *= size_t(s);
  std::vector<float> out(numel);
  // An odometer over the indices; `pos` is the storage element of the current index.
  std::vector<int64_t> index(t.shape.size(), 0);
  int64_t pos = t.storage_offset;
  for (size_t i = 0; i < numel; ++i) {
    out[i] = load(t.storage_bytes.data() + size_t(pos) * esize);
    for (size_t d = t.shape.size(); d-- > 0;) {
      if (++index[d] < t.shape[d]) {
        pos += t.stride[d];
        break;
      }
      pos -= t.stride[d] * (t.shape[d] - 1);
      index[d] = 0;
    }
  }
  return out;
}

void torch_rows_to_f32(const TorchTensor& t, int64_t first, int64_t count, float* out) {
  if (t.shape.empty() || first < 0 || count < 0 || first + count > t.shape[0]) {
    throw Error("tensor '" + t.name + "': rows " + std::to_string(first) + ".." + std::to_string(first + count) +
                " are outside it");
  }
  TorchTensor rows = t;
  rows.shape[0] = count;
  rows.storage_offset += first * t.stride[0];
  const std::vector<float> values = torch_tensor_to_f32(rows);  // checks the view again
  std::copy(values.begin(), values.end(), out);
}

}  // namespace t2r
