// Reading a t2r model file (format/SPEC.md): every count, offset, size and shape is checked
// against the file before anything uses it, the checksum is verified, and tensors holding NaN
// or infinity are refused.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "dtype.h"
#include "metadata.h"

namespace t2r {

constexpr char kModelMagic[8] = {'T', '2', 'R', 'M', 'O', 'D', 'E', 'L'};
constexpr uint32_t kModelFormatVersion = 1;
constexpr uint32_t kModelHeaderSize = 96;
constexpr uint64_t kTensorAlignment = 64;
constexpr uint32_t kMaxNameLength = 256;
constexpr uint32_t kMaxDims = 4;

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<uint64_t> shape;
  uint64_t offset = 0;  // relative to the data section
  uint64_t size = 0;    // bytes
  const void* data = nullptr;  // inside the file's bytes, 64-byte aligned in the file

  uint64_t element_count() const;
};

class ModelFile {
 public:
  // Memory-maps `path` and validates it.
  static ModelFile open(const std::string& path);
  // Validates bytes owned by the caller, who keeps them alive as long as the ModelFile.
  static ModelFile parse(std::string_view bytes, const std::string& label);

  const std::string& label() const { return label_; }
  uint64_t checksum() const { return checksum_; }
  uint64_t file_size() const { return bytes_.size(); }
  const Metadata& metadata() const { return metadata_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find(std::string_view name) const;
  // Throws t2r::Error naming the tensor when it is missing or its shape differs.
  const TensorInfo& require(std::string_view name, const std::vector<uint64_t>& shape) const;
  // Drops the mapped pages of `bytes` (inside the file) from this process's memory, for data copied
  // elsewhere; reading them again maps them in again. Does nothing for parsed bytes.
  void release(std::string_view bytes) const;

 private:
  std::shared_ptr<const void> owner_;  // keeps a mapping alive
  std::string_view bytes_;
  std::string label_;
  uint64_t checksum_ = 0;
  Metadata metadata_;
  std::vector<TensorInfo> tensors_;  // in table order
  std::vector<size_t> by_name_;      // indices into tensors_ sorted by name, for find()
};

std::string shape_string(const std::vector<uint64_t>& shape);

}  // namespace t2r
