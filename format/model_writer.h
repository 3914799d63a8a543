// Writing a t2r model file. Tensors are converted to their stored dtype as they are added;
// write() goes to a temporary file renamed into place, so a failure leaves nothing behind.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dtype.h"
#include "metadata.h"
#include "model_file.h"

namespace t2r {

class ModelWriter {
 public:
  Metadata& metadata() { return metadata_; }

  void add_tensor(std::string name, DType dtype, std::vector<uint64_t> shape, const float* values);
  // A tensor of another (validated) model file, copied as stored: rewriting a file's metadata.
  void add_stored_tensor(const TensorInfo& tensor);
  uint64_t tensor_bytes() const;

  // Returns the file size. Throws t2r::Error (and removes the temporary file) on failure.
  uint64_t write(const std::string& path) const;
  std::vector<unsigned char> serialize() const;

 private:
  struct Entry {
    std::string name;
    DType dtype;
    std::vector<uint64_t> shape;
    std::vector<unsigned char> bytes;
  };
  Metadata metadata_;
  std::vector<Entry> entries_;
};

}  // namespace t2r
