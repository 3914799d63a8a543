#include "model_file.h"

#include <algorithm>
#include <cstring>

#include "checksum.h"
#include "error.h"
#include "finite_check.h"
#include "mapped_file.h"

namespace t2r {
namespace {

// Bounds-checked little-endian reads over one section of the file.
class ByteReader {
 public:
  ByteReader(std::string_view bytes, std::string what) : bytes_(bytes), what_(std::move(what)) {}

  size_t position() const { return pos_; }
  bool at_end() const { return pos_ == bytes_.size(); }

  void raw(void* out, size_t n) {
    need(n);
    if (n == 0) return;  // `out` may be the null data() of an empty array, which memcpy must not get
    std::memcpy(out, bytes_.data() + pos_, n);
    pos_ += n;
  }
  uint32_t u32() {
    uint32_t v;
    raw(&v, 4);
    return v;
  }
  uint64_t u64() {
    uint64_t v;
    raw(&v, 8);
    return v;
  }
  std::string string(uint64_t n) {
    need(n);
    std::string s(bytes_.data() + pos_, n);
    pos_ += n;
    return s;
  }
  std::string name() {
    uint32_t n = u32();
    if (n == 0 || n > kMaxNameLength) fail("name length " + std::to_string(n) + " out of range");
    return string(n);
  }
  // Refuses counts that could not possibly fit in what is left, before anything is allocated.
  uint64_t count(uint64_t min_bytes_each) {
    uint64_t n = u64();
    if (n > (bytes_.size() - pos_) / min_bytes_each) {
      fail("count " + std::to_string(n) + " exceeds the section");
    }
    return n;
  }
  [[noreturn]] void fail(const std::string& message) const {
    throw Error(what_ + " at byte " + std::to_string(pos_) + ": " + message);
  }

 private:
  void need(uint64_t n) const {
    if (n > bytes_.size() - pos_) fail("truncated (needs " + std::to_string(n) + " more bytes)");
  }
  std::string_view bytes_;
  std::string what_;
  size_t pos_ = 0;
};

Metadata::Value read_metadata_value(ByteReader& in, uint32_t type) {
  switch (type) {
    case 1: {
      int64_t v;
      in.raw(&v, 8);
      return v;
    }
    case 2: {
      double v;
      in.raw(&v, 8);
      return v;
    }
    case 3:
      return in.string(in.count(1));
    case 4: {
      std::vector<int32_t> v(in.count(4));
      in.raw(v.data(), v.size() * 4);
      return v;
    }
    case 5: {
      std::vector<std::string> v(in.count(4));
      for (auto& s : v) s = in.string(in.u32());
      return v;
    }
    default:
      in.fail("unknown metadata value type " + std::to_string(type));
  }
}

bool checked_mul(uint64_t a, uint64_t b, uint64_t* out) { return !__builtin_mul_overflow(a, b, out); }

}  // namespace

uint64_t TensorInfo::element_count() const {
  uint64_t n = 1;
  for (uint64_t d : shape) n *= d;
  return n;
}

std::string shape_string(const std::vector<uint64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

ModelFile ModelFile::open(const std::string& path) {
  auto mapping = std::make_shared<MappedFile>(path);
  ModelFile file = parse(mapping->bytes(), path);
  file.owner_ = std::move(mapping);
  return file;
}

ModelFile ModelFile::parse(std::string_view bytes, const std::string& label) {
  ModelFile file;
  file.bytes_ = bytes;
  file.label_ = label;
  auto fail = [&](const std::string& message) -> void { throw Error(label + ": " + message); };

  ByteReader header(bytes, label + ": header");
  char magic[8];
  if (bytes.size() < 12) fail("too small to be a t2r model (" + std::to_string(bytes.size()) + " bytes)");
  header.raw(magic, 8);
  if (std::memcmp(magic, kModelMagic, 8) != 0) fail("not a t2r model file (bad magic)");
  uint32_t version = header.u32();
  if (version != kModelFormatVersion) {
    fail("format version " + std::to_string(version) + " is not supported (this build reads version " +
         std::to_string(kModelFormatVersion) + ")");
  }
  if (bytes.size() < kModelHeaderSize) fail("truncated header");
  uint32_t header_size = header.u32();
  uint64_t file_size = header.u64();
  uint64_t metadata_offset = header.u64(), metadata_size = header.u64();
  uint32_t metadata_count = header.u32(), tensor_count = header.u32();
  uint64_t table_offset = header.u64(), table_size = header.u64();
  uint64_t data_offset = header.u64(), data_size = header.u64();
  uint64_t stored_checksum = header.u64();
  if (header_size != kModelHeaderSize) fail("header size " + std::to_string(header_size) + " is not 96");
  if (file_size != bytes.size()) {
    fail("file is " + std::to_string(bytes.size()) + " bytes but its header says " +
         std::to_string(file_size) + " (truncated or padded)");
  }
  // Sections must follow each other in order inside the file; checked without overflow.
  auto check_section = [&](const char* name, uint64_t offset, uint64_t size, uint64_t min_offset) {
    if (offset < min_offset || offset > file_size || size > file_size - offset) {
      fail(std::string(name) + " section [" + std::to_string(offset) + ", +" + std::to_string(size) +
           ") lies outside the file or overlaps the previous section");
    }
  };
  check_section("metadata", metadata_offset, metadata_size, kModelHeaderSize);
  check_section("tensor table", table_offset, table_size, metadata_offset + metadata_size);
  check_section("data", data_offset, data_size, table_offset + table_size);
  if (data_offset % kTensorAlignment != 0) fail("data section is not 64-byte aligned");
  if (data_offset + data_size != file_size) fail("data section does not end the file");

  Checksum64 sum;
  sum.update(bytes.data(), 80);
  const uint64_t zero = 0;
  sum.update(&zero, 8);
  sum.update(bytes.data() + 88, bytes.size() - 88);
  file.checksum_ = sum.digest();
  if (file.checksum_ != stored_checksum) fail("checksum mismatch: the file is corrupt");

  ByteReader metadata(bytes.substr(metadata_offset, metadata_size), label + ": metadata");
  for (uint32_t i = 0; i < metadata_count; ++i) {
    std::string key = metadata.name();
    if (file.metadata_.has(key)) metadata.fail("duplicate key '" + key + "'");
    uint32_t type = metadata.u32();
    file.metadata_.set(std::move(key), read_metadata_value(metadata, type));
  }
  if (!metadata.at_end()) metadata.fail("unused bytes after the last entry");

  ByteReader table(bytes.substr(table_offset, table_size), label + ": tensor table");
  // Each entry takes at least 36 bytes, so a hostile count cannot make us reserve much.
  if (tensor_count > table_size / 36) table.fail("tensor count " + std::to_string(tensor_count) + " exceeds the table");
  file.tensors_.reserve(tensor_count);
  for (uint32_t i = 0; i < tensor_count; ++i) {
    TensorInfo t;
    t.name = table.name();
    uint32_t dtype = table.u32();
    if (!dtype_is_known(dtype)) table.fail("tensor '" + t.name + "' has unknown dtype " + std::to_string(dtype));
    t.dtype = DType(dtype);
    uint32_t ndim = table.u32();
    if (ndim == 0 || ndim > kMaxDims) table.fail("tensor '" + t.name + "' has " + std::to_string(ndim) + " dimensions");
    uint64_t elements = 1;
    for (uint32_t d = 0; d < ndim; ++d) {
      uint64_t dim = table.u64();
      if (dim == 0 || !checked_mul(elements, dim, &elements)) {
        table.fail("tensor '" + t.name + "' has an invalid shape");
      }
      t.shape.push_back(dim);
    }
    t.offset = table.u64();
    t.size = table.u64();
    // Block types store whole blocks along the last dimension: size = rows * row_bytes.
    const uint64_t cols = t.shape.back();
    if (dtype_is_block(t.dtype) && (ndim < 2 || cols % kQuantBlock != 0)) {
      table.fail("tensor '" + t.name + "' " + shape_string(t.shape) + " is " + std::string(dtype_name(t.dtype)) +
                 ", which needs 2 or more dimensions and a last dimension that is a multiple of " +
                 std::to_string(kQuantBlock));
    }
    uint64_t row_size = 0, expected = 0;
    if (!checked_mul(cols / dtype_unit_elements(t.dtype), dtype_unit_bytes(t.dtype), &row_size) ||
        !checked_mul(elements / cols, row_size, &expected) || expected != t.size) {
      table.fail("tensor '" + t.name + "' " + shape_string(t.shape) + " " + std::string(dtype_name(t.dtype)) +
                 " needs " + std::to_string(expected) + " bytes, table says " + std::to_string(t.size));
    }
    if (t.offset % kTensorAlignment != 0 || t.offset > data_size || t.size > data_size - t.offset) {
      table.fail("tensor '" + t.name + "' data [" + std::to_string(t.offset) + ", +" + std::to_string(t.size) +
                 ") is misaligned or outside the data section");
    }
    t.data = bytes.data() + data_offset + t.offset;
    file.tensors_.push_back(std::move(t));
  }
  if (!table.at_end()) table.fail("unused bytes after the last entry");

  const std::vector<TensorInfo>& tensors = file.tensors_;
  std::vector<size_t> order(tensors.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return tensors[a].offset < tensors[b].offset; });
  for (size_t i = 1; i < order.size(); ++i) {
    const TensorInfo &before = tensors[order[i - 1]], &after = tensors[order[i]];
    if (before.offset + before.size > after.offset) {
      fail("tensors '" + before.name + "' and '" + after.name + "' overlap");
    }
  }
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return tensors[a].name < tensors[b].name; });
  for (size_t i = 1; i < order.size(); ++i) {
    if (tensors[order[i - 1]].name == tensors[order[i]].name) {
      fail("tensor '" + tensors[order[i]].name + "' appears twice");
    }
  }
  file.by_name_ = std::move(order);

  for (const TensorInfo& t : tensors) {
    NonFinite bad;
    if (find_non_finite(t.dtype, t.data, t.size, &bad)) {
      fail("tensor '" + t.name + "' holds " + non_finite_name(bad.value) + " at element " +
           std::to_string(bad.element) + (dtype_is_block(t.dtype) ? " (its block's scale)" : ""));
    }
  }
  return file;
}

const TensorInfo* ModelFile::find(std::string_view name) const {
  const auto it = std::lower_bound(by_name_.begin(), by_name_.end(), name,
                                   [&](size_t i, std::string_view key) { return tensors_[i].name < key; });
  return it != by_name_.end() && tensors_[*it].name == name ? &tensors_[*it] : nullptr;
}

const TensorInfo& ModelFile::require(std::string_view name, const std::vector<uint64_t>& shape) const {
  const TensorInfo* t = find(name);
  if (!t) throw Error(label_ + ": missing tensor '" + std::string(name) + "'");
  if (t->shape != shape) {
    throw Error(label_ + ": tensor '" + std::string(name) + "' has shape " + shape_string(t->shape) +
                ", expected " + shape_string(shape));
  }
  return *t;
}

void ModelFile::release(std::string_view bytes) const {
  if (owner_) release_mapped_pages(bytes);
}

}  // namespace t2r
