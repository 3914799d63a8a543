// Access to ../shared/models for the tests: each checkpoint packed once per dtype per test run,
// and its reference outputs.
#pragma once

#ifdef T2R_REFERENCE_MODELS

#include <memory>
#include <string>
#include <vector>

#include "dtype.h"
#include "json.h"
#include "model.h"

namespace t2r::test {

inline const std::vector<std::string>& reference_model_names() {
  static const std::vector<std::string> names = {"fairseq-softmax", "fairseq-t2r", "fairseq-elu",
                                                 "llama-softmax",   "llama-t2r",   "llama-elu"};
  return names;
}

std::string reference_dir(const std::string& name);
// Packs the checkpoint (once per name and dtype in this process) and loads it.
const Model& packed_reference_model(const std::string& name, DType dtype);
std::string packed_reference_path(const std::string& name, DType dtype);

struct ReferenceOutputs {
  std::vector<int32_t> input_ids;
  std::vector<float> logits;  // [T, V]
  std::vector<int32_t> valid_ids;
  std::string text;
  json::Value json;  // reference.json
};
const ReferenceOutputs& reference_outputs(const std::string& name);

// Helpers the model tests share.
std::vector<int32_t> ids_of(const json::Value& array);  // a JSON array of ids
int32_t argmax(const float* x, int64_t n);
// valid_slice_ppl as ../shared/models/README.md defines it: 512-token windows from an empty state.
double slice_perplexity(const Model& model, const std::vector<int32_t>& ids);

}  // namespace t2r::test

#endif
