// The three reference translation models (../shared/models/mt-*), packed and run by t2r, against
// their fp32 reference outputs.
#include <doctest/doctest.h>

#include "reference.h"

#ifdef T2R_REFERENCE_MODELS

#include <algorithm>
#include <cmath>

#include "context.h"
#include "safetensors.h"

using namespace t2r;
using namespace t2r::test;

namespace {

const char* const kTranslationModels[] = {"mt-softmax", "mt-t2r", "mt-elu"};

// One teacher-forced sentence of reference.safetensors.
struct ForcedSentence {
  std::vector<int32_t> src, prev, tgt;
  std::vector<float> logits;  // [T, V]
};

std::vector<ForcedSentence> forced_sentences(const std::string& name) {
  SafetensorsFile file(reference_dir(name) + "/reference.safetensors");
  const int n = std::stoi(file.metadata().at("n"));
  std::vector<ForcedSentence> out;
  for (int j = 0; j < n; ++j) {
    const std::string p = std::to_string(j) + ".";
    out.push_back({tensor_to_i32(file.at(p + "src_ids")), tensor_to_i32(file.at(p + "prev_ids")),
                   tensor_to_i32(file.at(p + "tgt_ids")), tensor_to_f32(file.at(p + "logits"))});
  }
  return out;
}

// The largest |logit - reference| of a sentence decoded as one chunk (chunk = true) or token by token.
float forced_max_diff(const Model& model, const ForcedSentence& s, bool chunk) {
  const size_t T = s.prev.size(), V = size_t(model.hparams().vocab_size);
  ContextOptions options;
  options.max_batch = int(T);
  options.max_outputs = int(T);
  Context context(model, options);
  context.encode(0, s.src.data(), s.src.size());
  context.attach(0, 0);
  float most = 0;
  const auto compare = [&](size_t t, const float* logits) {
    for (size_t v = 0; v < V; ++v) most = std::max(most, std::fabs(logits[v] - s.logits[t * V + v]));
  };
  if (chunk) {
    std::vector<BatchRow> rows;
    for (size_t t = 0; t < T; ++t) rows.push_back({s.prev[t], 0, int64_t(t), true});
    const float* logits = context.decode(rows.data(), rows.size());
    for (size_t t = 0; t < T; ++t) compare(t, logits + t * V);
  } else {
    for (size_t t = 0; t < T; ++t) {
      const BatchRow row{s.prev[t], 0, int64_t(t), true};
      compare(t, context.decode(&row, 1));
    }
  }
  return most;
}

}  // namespace

TEST_CASE("translation models at f32: teacher-forced logits of every reference sentence within 1e-3") {
  for (const char* name : kTranslationModels) {
    const Model& model = packed_reference_model(name, DType::F32);
    CHECK(model.hparams().has_encoder());
    float most = 0;
    for (const ForcedSentence& s : forced_sentences(name)) {
      most = std::max({most, forced_max_diff(model, s, true), forced_max_diff(model, s, false)});
    }
    MESSAGE(std::string(name) << ": max |logit diff| " << most);
    CHECK(most < 1e-3f);
  }
}

#endif
