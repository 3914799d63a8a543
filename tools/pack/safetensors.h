// Reader for Hugging Face safetensors files: an 8-byte little-endian header length, a JSON
// header describing each tensor, then the raw tensor bytes. Everything is validated on open.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mapped_file.h"

namespace t2r {

struct SafetensorsTensor {
  std::string name;
  std::string dtype;  // as written: "F32", "F16", "BF16", "I32", "I64", "U8", ...
  std::vector<int64_t> shape;
  std::string_view bytes;  // points into the file, which must outlive this tensor
};

class SafetensorsFile {
 public:
  // Maps and validates the file; throws t2r::Error naming the path and the problem.
  explicit SafetensorsFile(const std::string& path);
  // Validates bytes the caller keeps alive (e.g. built in memory); `label` names it in errors.
  SafetensorsFile(std::string_view bytes, std::string label);

  const std::string& label() const { return label_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  std::vector<std::string> names() const;  // file order
  const SafetensorsTensor* find(std::string_view name) const;
  const SafetensorsTensor& at(std::string_view name) const;  // throws naming tensor and file

 private:
  void parse(std::string_view bytes);

  std::optional<MappedFile> file_;
  std::string label_;
  std::map<std::string, std::string> metadata_;
  std::vector<SafetensorsTensor> tensors_;            // file order
  std::map<std::string, size_t, std::less<>> index_;  // name -> position in tensors_
};

// F32, F16 and BF16 tensors, flattened in row-major order.
std::vector<float> tensor_to_f32(const SafetensorsTensor& t);
// Elements [first, first + count) of the flattened tensor into `out` (the caller checks the range).
void tensor_range_to_f32(const SafetensorsTensor& t, size_t first, size_t count, float* out);
// I32, and I64 whose values all fit in int32.
std::vector<int32_t> tensor_to_i32(const SafetensorsTensor& t);

}  // namespace t2r
