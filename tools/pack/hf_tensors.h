// The tensors of a Hugging Face checkpoint, in one model.safetensors or in shards named by
// model.safetensors.index.json, each read as f32 with its shape checked.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model_writer.h"
#include "safetensors.h"

namespace t2r {

class HfTensors {
 public:
  explicit HfTensors(const std::string& dir);

  bool has(const std::string& name) const { return located_.count(name) != 0; }
  // Throws naming the tensor when it is missing or has another shape.
  std::vector<float> get(const std::string& name, const std::vector<int64_t>& shape) const;
  // Rows [first, first + count) of the tensor seen as [shape[0], rest] into `out`, then drops the
  // pages they were read from: streaming a checkpoint keeps about one chunk in memory, not the file.
  void read_rows(const std::string& name, const std::vector<int64_t>& shape, uint64_t first, uint64_t count,
                 float* out) const;

 private:
  const SafetensorsTensor& find(const std::string& name, const std::vector<int64_t>& shape) const;
  std::vector<std::unique_ptr<SafetensorsFile>> shards_;
  std::map<std::string, const SafetensorsFile*> located_;
};

// A reader of the tensor's rows for a streamed write: the name and shape are checked now, the values
// read while the file is written. Keeps `tensors` alive as long as the reader.
RowReader stream_rows(const std::shared_ptr<const HfTensors>& tensors, const std::string& name,
                      const std::vector<int64_t>& shape);

}  // namespace t2r
