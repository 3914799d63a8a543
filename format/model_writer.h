// Writing a t2r model file. Tensors are converted to their stored dtype as they are added, or,
// streamed, while the file is written, a chunk of rows at a time; write() goes to a temporary file
// renamed into place, so a failure leaves nothing behind.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "dtype.h"
#include "metadata.h"
#include "model_file.h"

namespace t2r {

// Rows [first, first + count) of a tensor seen as [shape[0], rest], into `out`.
using RowReader = std::function<void(uint64_t first, uint64_t count, float* out)>;
// Called after each tensor is written: (tensors written, of, their bytes).
using WriteProgress = std::function<void(size_t done, size_t total, uint64_t bytes)>;

class ModelWriter {
 public:
  Metadata& metadata() { return metadata_; }

  void add_tensor(std::string name, DType dtype, std::vector<uint64_t> shape, const float* values);
  // A tensor read through `rows` only while the file is written (its values are checked then).
  void add_streamed_tensor(std::string name, DType dtype, std::vector<uint64_t> shape, RowReader rows);
  // A tensor of another (validated) model file, copied as stored: rewriting a file's metadata.
  void add_stored_tensor(const TensorInfo& tensor);

  // Returns the file size. Throws t2r::Error (and removes the temporary file) on failure.
  uint64_t write(const std::string& path, const WriteProgress& progress = {}) const;
  std::vector<unsigned char> serialize() const;

 private:
  struct Entry {
    std::string name;
    DType dtype;
    std::vector<uint64_t> shape;
    std::vector<unsigned char> bytes;  // converted, or empty when streamed
    RowReader rows;                    // streamed
    uint64_t size;                     // stored bytes
  };
  // Checks name, shape and dtype; returns the rows of the tensor as a matrix [rows, shape.back()].
  uint64_t check_tensor(const std::string& name, DType dtype, const std::vector<uint64_t>& shape) const;
  std::vector<unsigned char> prefix() const;  // header (checksum zero), metadata, table, padding
  // emit(bytes, size) for the tensors' data in file order, padding between them.
  template <typename Emit>
  void emit_tensors(Emit emit, const WriteProgress& progress) const;
  Metadata metadata_;
  std::vector<Entry> entries_;
};

}  // namespace t2r
