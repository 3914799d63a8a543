#include "model_writer.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
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

constexpr uint64_t padded(uint64_t size) { return (size + kTensorAlignment - 1) / kTensorAlignment * kTensorAlignment; }

// A streamed tensor is converted this many floats at a time (whole rows, at least one): 64 MB.
constexpr uint64_t kChunkFloats = uint64_t(16) << 20;

// Rows of f32 values in `dtype`, `cols` each, into `out` (rows * row_bytes(dtype, cols) bytes).
void encode_rows(DType dtype, const float* values, uint64_t rows, uint64_t cols, unsigned char* out) {
  const size_t stride = row_bytes(dtype, cols);
  for (uint64_t r = 0; r < rows; ++r) {
    const float* in = values + r * cols;
    unsigned char* row = out + r * stride;
    switch (dtype) {
      case DType::F32:
        std::memcpy(row, in, cols * 4);
        break;
      case DType::F16:
      case DType::BF16:
        for (uint64_t i = 0; i < cols; ++i) {
          uint16_t h = dtype == DType::F16 ? f32_to_f16(in[i]) : f32_to_bf16(in[i]);
          std::memcpy(row + 2 * i, &h, 2);
        }
        break;
      case DType::Q8_0:
        quantize_q8_0(in, cols, reinterpret_cast<BlockQ8_0*>(row));
        break;
      case DType::Q4_0:
        quantize_q4_0(in, cols, reinterpret_cast<BlockQ4_0*>(row));
        break;
    }
  }
}

// Refuses encoded values that are not finite; `first` is the element the bytes start at.
void check_finite(const std::string& name, DType dtype, const unsigned char* bytes, size_t size, const float* values,
                  uint64_t first) {
  NonFinite bad;
  if (!find_non_finite(dtype, bytes, size, &bad)) return;
  const std::string where = dtype_is_block(dtype)
                                ? "the scale of the block at element " + std::to_string(first + bad.element)
                                : "element " + std::to_string(first + bad.element) + " (" +
                                      std::to_string(values[bad.element]) + ")";
  throw Error("tensor '" + name + "' cannot be stored as " + std::string(dtype_name(dtype)) + ": " + where +
              " becomes " + non_finite_name(bad.value));
}

}  // namespace

uint64_t ModelWriter::check_tensor(const std::string& name, DType dtype, const std::vector<uint64_t>& shape) const {
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
  return rows;
}

void ModelWriter::add_tensor(std::string name, DType dtype, std::vector<uint64_t> shape, const float* values) {
  const uint64_t rows = check_tensor(name, dtype, shape), cols = shape.back();
  Entry entry{std::move(name), dtype, std::move(shape), {}, {}, rows * row_bytes(dtype, cols)};
  entry.bytes.resize(entry.size);
  encode_rows(dtype, values, rows, cols, entry.bytes.data());
  check_finite(entry.name, dtype, entry.bytes.data(), entry.bytes.size(), values, 0);
  entries_.push_back(std::move(entry));
}

void ModelWriter::add_streamed_tensor(std::string name, DType dtype, std::vector<uint64_t> shape, RowReader rows) {
  const uint64_t n = check_tensor(name, dtype, shape), cols = shape.back();
  if (shape.size() < 2) throw Error("internal: streamed tensor '" + name + "' must have 2 or more dimensions");
  entries_.push_back(Entry{std::move(name), dtype, std::move(shape), {}, std::move(rows), n * row_bytes(dtype, cols)});
}

void ModelWriter::add_stored_tensor(const TensorInfo& tensor) {
  for (const auto& e : entries_) {
    if (e.name == tensor.name) throw Error("tensor '" + tensor.name + "' added twice");
  }
  auto bytes = static_cast<const unsigned char*>(tensor.data);
  entries_.push_back(Entry{tensor.name, tensor.dtype, tensor.shape, {bytes, bytes + tensor.size}, {}, tensor.size});
}

std::vector<unsigned char> ModelWriter::prefix() const {
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
    table.u64(e.size);
    data_size += padded(e.size);
  }
  const uint64_t metadata_offset = kModelHeaderSize;
  const uint64_t table_offset = metadata_offset + metadata.bytes.size();
  const uint64_t data_offset = padded(table_offset + table.bytes.size());
  // The last tensor needs no padding after it: the file ends where its data ends.
  if (!entries_.empty()) data_size = data_size - padded(entries_.back().size) + entries_.back().size;

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
  file.u64(0);  // checksum, filled in when the file is complete
  file.u64(0);
  file.raw(metadata.bytes.data(), metadata.bytes.size());
  file.raw(table.bytes.data(), table.bytes.size());
  file.pad_to(kTensorAlignment);
  return std::move(file.bytes);
}

template <typename Emit>
void ModelWriter::emit_tensors(Emit emit, const WriteProgress& progress) const {
  static const unsigned char zeros[kTensorAlignment] = {};
  uint64_t written = 0;
  std::vector<float> values;
  std::vector<unsigned char> bytes;
  for (size_t i = 0; i < entries_.size(); ++i) {
    const Entry& e = entries_[i];
    if (i > 0) emit(zeros, size_t(padded(entries_[i - 1].size) - entries_[i - 1].size));
    if (!e.rows) {
      emit(e.bytes.data(), e.bytes.size());
    } else {  // read, convert, write and drop a chunk of whole rows at a time
      const uint64_t rows = e.shape[0];
      uint64_t row_floats = 1;
      for (size_t d = 1; d < e.shape.size(); ++d) row_floats *= e.shape[d];
      const uint64_t chunk = std::max<uint64_t>(1, kChunkFloats / row_floats), row_size = e.size / rows;
      values.resize(size_t(std::min(chunk, rows) * row_floats));
      bytes.resize(size_t(std::min(chunk, rows) * row_size));
      for (uint64_t first = 0; first < rows; first += chunk) {
        const uint64_t n = std::min(chunk, rows - first);
        e.rows(first, n, values.data());
        for (uint64_t j = 0; j < n * row_floats; ++j) {
          if (!std::isfinite(values[j])) throw Error("checkpoint tensor for '" + e.name + "' contains NaN or infinity");
        }
        encode_rows(e.dtype, values.data(), n * row_floats / e.shape.back(), e.shape.back(), bytes.data());
        check_finite(e.name, e.dtype, bytes.data(), size_t(n * row_size), values.data(), first * row_floats);
        emit(bytes.data(), size_t(n * row_size));
      }
    }
    written += e.size;
    if (progress) progress(i + 1, entries_.size(), written);
  }
}

std::vector<unsigned char> ModelWriter::serialize() const {
  std::vector<unsigned char> file = prefix();
  emit_tensors([&](const unsigned char* p, size_t n) { file.insert(file.end(), p, p + n); }, {});
  const uint64_t sum = checksum64(file.data(), file.size());
  std::memcpy(file.data() + 80, &sum, 8);
  return file;
}

uint64_t ModelWriter::write(const std::string& path, const WriteProgress& progress) const {
  const std::string temp = path + ".partial";
  FILE* f = std::fopen(temp.c_str(), "wb");
  if (!f) throw Error("cannot create " + temp + ": " + std::strerror(errno));
  bool ok = true;
  uint64_t size = 0;
  try {
    const std::vector<unsigned char> head = prefix();
    Checksum64 sum;
    const auto emit = [&](const unsigned char* p, size_t n) {
      sum.update(p, n);
      size += n;
      ok = ok && std::fwrite(p, 1, n, f) == n;
    };
    emit(head.data(), head.size());
    emit_tensors(emit, progress);
    const uint64_t digest = sum.digest();
    ok = ok && std::fseek(f, 80, SEEK_SET) == 0 && std::fwrite(&digest, 1, 8, f) == 8;
  } catch (...) {  // a tensor that cannot be stored: nothing is left behind
    std::fclose(f);
    std::remove(temp.c_str());
    throw;
  }
  ok = std::fflush(f) == 0 && ok;
  ok = fsync(fileno(f)) == 0 && ok;
  int saved_errno = errno;
  ok = std::fclose(f) == 0 && ok;
  if (!ok || std::rename(temp.c_str(), path.c_str()) != 0) {
    if (ok) saved_errno = errno;
    std::remove(temp.c_str());
    throw Error("cannot write " + path + ": " + std::strerror(saved_errno));
  }
  return size;
}

}  // namespace t2r
