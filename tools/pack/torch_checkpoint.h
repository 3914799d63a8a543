// Reader for fairseq checkpoints written by torch.save (zip archive + pickled data.pkl).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "json.h"
#include "mapped_file.h"

namespace t2r {

struct TorchTensor {
  std::string name;
  std::string dtype;  // "F32", "F16", "BF16", "F64", "I32", "I64"
  std::vector<int64_t> shape;
  std::vector<int64_t> stride;     // in elements
  int64_t storage_offset = 0;      // in elements
  std::string_view storage_bytes;  // the whole storage `<prefix>/data/<key>`, inside the file
};

struct TorchCheckpoint {
  std::optional<MappedFile> file;  // owns the bytes the tensors view, when read from a path
  // The `args` Namespace as a JSON object: ints, floats, strings, bools, None -> null,
  // lists/tuples -> arrays, dicts with string keys -> objects; members of other types skipped.
  json::Value args;
  std::vector<TorchTensor> state_dict;  // the top-level 'model' dict, in file order
};

// Opens, validates (archive structure, CRC-32s, every tensor lying inside its storage) and
// unpickles without executing anything. Throws t2r::Error naming the file and the problem.
TorchCheckpoint read_torch_checkpoint(const std::string& path);
// The same for bytes the caller keeps alive as long as the result; `label` names them in errors.
TorchCheckpoint parse_torch_checkpoint(std::string_view bytes, const std::string& label);

// A torch.save'd state dict as training scripts write it: the top-level dict's 'model_state_dict'
// (LoLCATs' trainer: {'model_state_dict', 'step', <metric>}) or, without one, the top-level dict
// itself (a bare state_dict(); OrderedDict attributes such as _metadata are not entries). Every
// entry must be a tensor; `args` stays null.
TorchCheckpoint read_torch_state_dict(const std::string& path);

// Gathers the tensor's elements in row-major order, honouring shape, stride and offset.
// F32, F16, BF16 and F64 only.
std::vector<float> torch_tensor_to_f32(const TorchTensor& t);
// Rows [first, first + count) of the tensor (along its first dimension), in row-major order, into `out`.
void torch_rows_to_f32(const TorchTensor& t, int64_t first, int64_t count, float* out);

}  // namespace t2r
