// The tensors of a Hugging Face checkpoint, in one model.safetensors or in shards named by
// model.safetensors.index.json, each read as f32 with its shape checked.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "safetensors.h"

namespace t2r {

class HfTensors {
 public:
  explicit HfTensors(const std::string& dir);

  bool has(const std::string& name) const { return located_.count(name) != 0; }
  // Throws naming the tensor when it is missing or has another shape.
  std::vector<float> get(const std::string& name, const std::vector<int64_t>& shape) const;

 private:
  std::vector<std::unique_ptr<SafetensorsFile>> shards_;
  std::map<std::string, const SafetensorsFile*> located_;
};

}  // namespace t2r
