#include "checkpoint_import.h"

#include <cmath>

#include "error.h"
#include "mapped_file.h"
#include "model_writer.h"
#include "schema.h"

namespace t2r {
void ImportedModel::add(std::string name, std::vector<uint64_t> shape, std::vector<float> values) {
  uint64_t count = 1;
  for (uint64_t d : shape) count *= d;
  if (count != values.size()) {
    throw Error("internal: tensor '" + name + "' has " + std::to_string(values.size()) + " values for its shape");
  }
  for (float v : values) {
    if (!std::isfinite(v)) throw Error("checkpoint tensor for '" + name + "' contains NaN or infinity");
  }
  tensors.push_back({std::move(name), std::move(shape), std::move(values), {}});
}

void ImportedModel::add_streamed(std::string name, std::vector<uint64_t> shape, RowReader rows) {
  tensors.push_back({std::move(name), std::move(shape), {}, std::move(rows)});
}

std::vector<float> ImportedTensor::read() const {
  if (!rows) return values;
  uint64_t count = 1;
  for (uint64_t d : shape) count *= d;
  std::vector<float> all(count);
  rows(0, shape[0], all.data());
  return all;
}

uint64_t ImportedModel::parameter_count() const {
  uint64_t n = 0;
  for (const auto& t : tensors) {
    uint64_t count = 1;
    for (uint64_t d : t.shape) count *= d;
    n += count;
  }
  return n;
}

ImportedModel import_checkpoint(const std::string& dir, const ImportOptions& options) {
  if (is_regular_file(dir + "/checkpoint.pt")) return import_fairseq(dir);
  if (is_regular_file(dir + "/config.json")) return import_huggingface(dir, options);
  throw Error(dir + ": not a checkpoint directory (expected checkpoint.pt for fairseq or config.json for "
              "Hugging Face)");
}

namespace {
bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
}  // namespace

DType stored_dtype(const ImportedTensor& t, DType matrix_dtype) {
  // Learned positions are added to the input as they are (and are small: positions x d).
  if (t.shape.size() < 2 || ends_with(t.name, ".bias") || t.name == schema::kPositionEmbedding) return DType::F32;
  if (!dtype_is_block(matrix_dtype)) return matrix_dtype;
  if (t.shape.back() % kQuantBlock != 0) return DType::F16;
  // The unfolded feature map [H, r, d_h] is under 1% of a model's weights, so quantizing it saves
  // next to nothing, while its error would enter phi(q) and phi(k) of every head, numerator and
  // denominator alike, right before a relu that turns small errors into features switching on or
  // off. (The folded feature_q / feature_k are full [H r, d] projections and are quantized.)
  if (ends_with(t.name, ".attn.feature_map.weight")) return DType::F16;
  // LoLCATs' Hedgehog maps [H, f, d_h] likewise: small, and right before a softmax per head.
  if (ends_with(t.name, ".attn.hedgehog_q.weight") || ends_with(t.name, ".attn.hedgehog_k.weight")) return DType::F16;
  return matrix_dtype;
}

uint64_t write_model(const ImportedModel& model, DType matrix_dtype, const std::string& path,
                     const WriteProgress& progress) {
  ModelWriter writer;
  writer.metadata() = model.metadata;
  for (const auto& t : model.tensors) {
    if (t.rows) {
      writer.add_streamed_tensor(t.name, stored_dtype(t, matrix_dtype), t.shape, t.rows);
    } else {
      writer.add_tensor(t.name, stored_dtype(t, matrix_dtype), t.shape, t.values.data());
    }
  }
  return writer.write(path, progress);
}

}  // namespace t2r
