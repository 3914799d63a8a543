#include "model_writer.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <unistd.h>

#include "checksum.h"
#include "error.h"
#include "finite_check.h"
#include "model_file.h"
#include "quantize.h"

namespace t2r {
namespace {

class ByteSink {
 public:
  std::vector<unsigned char> bytes;
  void raw(const void* p, size_t n) {
    auto c = static_cast<const unsigned char*>(p);
    bytes.insert(bytes.end(), c, c + n);
  }
  void u32(uint32_t v) { raw(&v, 4); }
  void u64(uint64_t v) { raw(&v, 8); }
  void str32(const std::string& s) {
    u32(uint32_t(s.size()));
    raw(s.data(), s.size());
  }
  void pad_to(uint64_t alignment) {
    while (bytes.size() % alignment != 0) bytes.push_back(0);
  }
};

void check_name(const std::string& name, const char* what) {
  if (name.empty() || name.size() > kMaxNameLength) {
    throw Error(std::string(what) + " name '" + name + "' must be 1.." +
                std::to_string(kMaxNameLength) + " bytes");
  }
}

void put_metadata_value(ByteSink& out, const Metadata::Value& value) {
  out.u32(uint32_t(value.index() + 1));
  if (auto i = std::get_if<int64_t>(&value)) {
    out.raw(i, 8);
  } else if (auto f = std::get_if<double>(&value)) {
    out.raw(f, 8);
  } else if (auto s = std::get_if<std::string>(&value)) {
    out.u64(s->size());
    out.raw(s->data(), s->size());
  } else if (auto ints = std::get_if<std::vector<int32_t>>(&value)) {
    out.u64(ints->size());
    out.raw(ints->data(), ints->size() * 4);
  } else {
    const auto& strings = std::get<std::vector<std::string>>(value);
    out.u64(strings.size());
    for (const auto& item : strings) out.str32(item);
  }
}

}  // namespace

void ModelWriter::add_tensor(std::string name, DType dtype, std::vector<uint64_t> shape,
                             const float* values) {
  check_name(name, "tensor");
  if (shape.empty() || shape.size() > kMaxDims) {
    throw Error("tensor '" + name + "' must have 1.." + std::to_string(kMaxDims) + " dimensions");
  }
  for (const auto& e : entries_) {
    if (e.name == name) throw Error("tensor '" + name + "' added twice");
  }
  const uint64_t cols = shape.back();
  if (dtype_is_block(dtype) && (shape.size() < 2 || cols % kQuantBlock != 0)) {
    throw Error("tensor '" + name + "' " + shape_string(shape) + " cannot be stored as " +
                std::string(dtype_name(dtype)) + ": it needs 2 or more dimensions and a last dimension that is a " +
                "multiple of " + std::to_string(kQuantBlock));
  }
  uint64_t rows = 1;
  for (size_t i = 0; i + 1 < shape.size(); ++i) rows *= shape[i];
  Entry entry{std::move(name), dtype, std::move(shape), {}};
  const size_t stride = row_bytes(dtype, cols);
  entry.bytes.resize(rows * stride);
  for (uint64_t r = 0; r < rows; ++r) {
    const float* in = values + r * cols;
    unsigned char* out = entry.bytes.data() + r * stride;
    switch (dtype) {
      case DType::F32:
        std::memcpy(out, in, cols * 4);
        break;
      case DType::F16:
      case DType::BF16:
        for (uint64_t i = 0; i < cols; ++i) {
          uint16_t h = dtype == DType::F16 ? f32_to_f16(in[i]) : f32_to_bf16(in[i]);
          std::memcpy(out + 2 * i, &h, 2);
        }
        break;
      case DType::Q8_0:
        quantize_q8_0(in, cols, reinterpret_cast<BlockQ8_0*>(out));
        break;
      case DType::Q4_0:
        quantize_q4_0(in, cols, reinterpret_cast<BlockQ4_0*>(out));
        break;
    }
  }
  NonFinite bad;
  if (find_non_finite(dtype, entry.bytes.data(), entry.bytes.size(), &bad)) {
    const std::string where = dtype_is_block(dtype) ? "the scale of the block at element " + std::to_string(bad.element)
                                                    : "element " + std::to_string(bad.element) + " (" +
                                                          std::to_string(values[bad.element]) + ")";
    throw Error("tensor '" + entry.name + "' cannot be stored as " + std::string(dtype_name(dtype)) + ": " + where +
                " becomes " + non_finite_name(bad.value));
  }
  entries_.push_back(std::move(entry));
}

void ModelWriter::add_stored_tensor(const TensorInfo& tensor) {
  for (const auto& e : entries_) {
    if (e.name == tensor.name) throw Error("tensor '" + tensor.name + "' added twice");
  }
  auto bytes = static_cast<const unsigned char*>(tensor.data);
  entries_.push_back(Entry{tensor.name, tensor.dtype, tensor.shape, {bytes, bytes + tensor.size}});
}

uint64_t ModelWriter::tensor_bytes() const {
  uint64_t total = 0;
  for (const auto& e : entries_) total += e.bytes.size();
  return total;
}

std::vector<unsigned char> ModelWriter::serialize() const {
  ByteSink metadata;
  for (const auto& [key, value] : metadata_.entries()) {
    check_name(key, "metadata key");
    metadata.str32(key);
    put_metadata_value(metadata, value);
  }

  ByteSink table;
  uint64_t data_size = 0;
  for (const auto& e : entries_) {
    table.str32(e.name);
    table.u32(uint32_t(e.dtype));
    table.u32(uint32_t(e.shape.size()));
    for (uint64_t d : e.shape) table.u64(d);
    table.u64(data_size);
    table.u64(e.bytes.size());
    data_size += (e.bytes.size() + kTensorAlignment - 1) / kTensorAlignment * kTensorAlignment;
  }

  const uint64_t metadata_offset = kModelHeaderSize;
  const uint64_t table_offset = metadata_offset + metadata.bytes.size();
  uint64_t data_offset = table_offset + table.bytes.size();
  data_offset = (data_offset + kTensorAlignment - 1) / kTensorAlignment * kTensorAlignment;
  // The last tensor needs no padding after it: the file ends where its data ends.
  if (!entries_.empty()) {
    const auto& last = entries_.back().bytes;
    data_size -= (last.size() + kTensorAlignment - 1) / kTensorAlignment * kTensorAlignment;
    data_size += last.size();
  }

  ByteSink file;
  file.raw(kModelMagic, 8);
  file.u32(kModelFormatVersion);
  file.u32(kModelHeaderSize);
  file.u64(data_offset + data_size);
  file.u64(metadata_offset);
  file.u64(metadata.bytes.size());
  file.u32(uint32_t(metadata_.entries().size()));
  file.u32(uint32_t(entries_.size()));
  file.u64(table_offset);
  file.u64(table.bytes.size());
  file.u64(data_offset);
  file.u64(data_size);
  file.u64(0);  // checksum, filled in below
  file.u64(0);
  file.raw(metadata.bytes.data(), metadata.bytes.size());
  file.raw(table.bytes.data(), table.bytes.size());
  file.pad_to(kTensorAlignment);
  for (const auto& e : entries_) {
    file.pad_to(kTensorAlignment);
    file.raw(e.bytes.data(), e.bytes.size());
  }
  uint64_t sum = checksum64(file.bytes.data(), file.bytes.size());
  std::memcpy(file.bytes.data() + 80, &sum, 8);
  return std::move(file.bytes);
}

uint64_t ModelWriter::write(const std::string& path) const {
  std::vector<unsigned char> bytes = serialize();
  const std::string temp = path + ".partial";
  FILE* f = std::fopen(temp.c_str(), "wb");
  if (!f) throw Error("cannot create " + temp + ": " + std::strerror(errno));
  bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  ok = std::fflush(f) == 0 && ok;
  ok = fsync(fileno(f)) == 0 && ok;
  int saved_errno = errno;
  ok = std::fclose(f) == 0 && ok;
  if (!ok || std::rename(temp.c_str(), path.c_str()) != 0) {
    if (ok) saved_errno = errno;
    std::remove(temp.c_str());
    throw Error("cannot write " + path + ": " + std::strerror(saved_errno));
  }
  return bytes.size();
}

}  // namespace t2r
