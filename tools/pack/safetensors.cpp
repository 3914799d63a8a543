#include "safetensors.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "dtype.h"
#include "error.h"
#include "json.h"

namespace t2r {

namespace {

// A header this large is not a model header but a corrupt or hostile length.
constexpr uint64_t kMaxHeaderBytes = 100u * 1000 * 1000;

size_t element_size(const std::string& dtype) {
  static const std::pair<const char*, size_t> kSizes[] = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"I16", 2}, {"U16", 2}, {"F16", 2},
      {"BF16", 2}, {"I32", 4}, {"U32", 4}, {"F32", 4},     {"I64", 8},     {"U64", 8}, {"F64", 8}};
  for (const auto& [name, size] : kSizes)
    if (dtype == name) return size;
  throw Error("unknown dtype '" + dtype + "'");
}

uint64_t read_u64_le(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

uint64_t to_u64(const json::Value& v, const char* what) {
  int64_t i = v.as_int();
  if (i < 0) throw Error(std::string(what) + " is negative");
  return static_cast<uint64_t>(i);
}

SafetensorsTensor parse_tensor(const std::string& name, const json::Value& desc, std::string_view data,
                               std::pair<uint64_t, uint64_t>* range) {
  for (const auto& [key, value] : desc.as_object())
    if (key != "dtype" && key != "shape" && key != "data_offsets")
      throw Error("unexpected key '" + key + "'");
  SafetensorsTensor t;
  t.name = name;
  t.dtype = desc.at("dtype").as_string();
  uint64_t bytes = element_size(t.dtype);
  for (const json::Value& d : desc.at("shape").as_array()) {
    uint64_t n = to_u64(d, "a dimension");
    if (n != 0 && bytes > UINT64_MAX / n) throw Error("shape overflows the byte size");
    bytes *= n;
    t.shape.push_back(static_cast<int64_t>(n));
  }
  const auto& offsets = desc.at("data_offsets").as_array();
  if (offsets.size() != 2) throw Error("data_offsets must hold [begin, end]");
  uint64_t begin = to_u64(offsets[0], "data_offsets begin");
  uint64_t end = to_u64(offsets[1], "data_offsets end");
  if (begin > end)
    throw Error("data_offsets begin " + std::to_string(begin) + " > end " + std::to_string(end));
  if (end > data.size())
    throw Error("data_offsets end " + std::to_string(end) + " beyond the data size " +
                std::to_string(data.size()));
  if (end - begin != bytes)
    throw Error("holds " + std::to_string(end - begin) + " bytes but its dtype and shape need " +
                std::to_string(bytes));
  t.bytes = data.substr(begin, end - begin);
  *range = {begin, end};
  return t;
}

}  // namespace

SafetensorsFile::SafetensorsFile(const std::string& path) : file_(std::in_place, path), label_(path) {
  parse(file_->bytes());
}

SafetensorsFile::SafetensorsFile(std::string_view bytes, std::string label) : label_(std::move(label)) {
  parse(bytes);
}

void SafetensorsFile::parse(std::string_view bytes) {
  const std::string where = "safetensors '" + label_ + "': ";
  if (bytes.size() < 8)
    throw Error(where + "file of " + std::to_string(bytes.size()) +
                " bytes is too short for the header length");
  uint64_t header_len = read_u64_le(bytes.data());
  if (header_len > kMaxHeaderBytes)
    throw Error(where + "header length " + std::to_string(header_len) + " exceeds 100 MB");
  if (header_len > bytes.size() - 8)
    throw Error(where + "header length " + std::to_string(header_len) + " is beyond the file size " +
                std::to_string(bytes.size()));
  std::string_view data = bytes.substr(8 + header_len);

  json::Value header;
  try {
    header = json::parse(bytes.substr(8, header_len));
  } catch (const Error& e) {
    throw Error(where + "header: " + e.what());
  }
  if (header.type() != json::Value::Type::Object) throw Error(where + "header is not a JSON object");

  std::vector<std::pair<uint64_t, uint64_t>> ranges;  // parallel to tensors_
  for (const auto& [name, desc] : header.as_object()) {
    if (name == "__metadata__") {
      if (desc.type() != json::Value::Type::Object) throw Error(where + "__metadata__ is not an object");
      for (const auto& [key, value] : desc.as_object()) {
        if (value.type() != json::Value::Type::String)
          throw Error(where + "__metadata__ '" + key + "' is not a string");
        if (!metadata_.emplace(key, value.as_string()).second)
          throw Error(where + "duplicate __metadata__ key '" + key + "'");
      }
      continue;
    }
    if (!index_.emplace(name, tensors_.size()).second) throw Error(where + "duplicate tensor '" + name + "'");
    try {
      ranges.emplace_back();
      tensors_.push_back(parse_tensor(name, desc, data, &ranges.back()));
    } catch (const Error& e) {
      throw Error(where + "tensor '" + name + "': " + e.what());
    }
  }

  // Overlapping tensors would let one write alias another; sorted by begin, each must start
  // at or after the end of the one before.
  std::vector<size_t> order(tensors_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ranges[a] < ranges[b]; });
  for (size_t i = 1; i < order.size(); ++i) {
    const auto& prev = ranges[order[i - 1]];
    const auto& cur = ranges[order[i]];
    if (cur.first < prev.second)
      throw Error(where + "tensors '" + tensors_[order[i - 1]].name + "' and '" + tensors_[order[i]].name +
                  "' overlap");
  }
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const auto& t : tensors_) out.push_back(t.name);
  return out;
}

const SafetensorsTensor* SafetensorsFile::find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const SafetensorsTensor& SafetensorsFile::at(std::string_view name) const {
  const SafetensorsTensor* t = find(name);
  if (!t) throw Error("safetensors '" + label_ + "': no tensor '" + std::string(name) + "'");
  return *t;
}

namespace {

// Little-endian loads that do not depend on the host's byte order or alignment.
uint32_t load_u32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return uint32_t(u[0]) | uint32_t(u[1]) << 8 | uint32_t(u[2]) << 16 | uint32_t(u[3]) << 24;
}

uint16_t load_u16(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return uint16_t(u[0] | u[1] << 8);
}

}  // namespace

void tensor_range_to_f32(const SafetensorsTensor& t, size_t first, size_t count, float* out) {
  if (t.dtype == "F32") {
    const char* p = t.bytes.data() + 4 * first;
    for (size_t i = 0; i < count; ++i) {
      uint32_t bits = load_u32(p + 4 * i);
      std::memcpy(&out[i], &bits, 4);
    }
  } else if (t.dtype == "F16" || t.dtype == "BF16") {
    const bool bf = t.dtype == "BF16";
    const char* p = t.bytes.data() + 2 * first;
    for (size_t i = 0; i < count; ++i) {
      uint16_t h = load_u16(p + 2 * i);
      out[i] = bf ? bf16_to_f32(h) : f16_to_f32(h);
    }
  } else {
    throw Error("tensor '" + t.name + "' has dtype " + t.dtype + "; only F32, F16 and BF16 convert to f32");
  }
}

std::vector<float> tensor_to_f32(const SafetensorsTensor& t) {
  const size_t size = t.dtype == "F32" ? 4 : 2;
  std::vector<float> out(t.bytes.size() / size);
  tensor_range_to_f32(t, 0, out.size(), out.data());
  return out;
}

std::vector<int32_t> tensor_to_i32(const SafetensorsTensor& t) {
  const char* p = t.bytes.data();
  std::vector<int32_t> out;
  if (t.dtype == "I32") {
    out.resize(t.bytes.size() / 4);
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<int32_t>(load_u32(p + 4 * i));
  } else if (t.dtype == "I64") {
    out.resize(t.bytes.size() / 8);
    for (size_t i = 0; i < out.size(); ++i) {
      uint64_t bits = uint64_t(load_u32(p + 8 * i)) | uint64_t(load_u32(p + 8 * i + 4)) << 32;
      auto v = static_cast<int64_t>(bits);
      if (v < INT32_MIN || v > INT32_MAX)
        throw Error("tensor '" + t.name + "' element " + std::to_string(i) + " = " + std::to_string(v) +
                    " does not fit in int32");
      out[i] = static_cast<int32_t>(v);
    }
  } else {
    throw Error("tensor '" + t.name + "' has dtype " + t.dtype + "; only I32 and I64 convert to int32");
  }
  return out;
}

}  // namespace t2r
