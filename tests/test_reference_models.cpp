// The six reference checkpoints, packed and run by t2r, against their fp32 reference outputs.
#include <doctest/doctest.h>

#include "reference.h"

#ifdef T2R_REFERENCE_MODELS

#include <cmath>

#include "session.h"

using namespace t2r;
using namespace t2r::test;

namespace {

// Greedy continuation of `prompt` for `count` tokens.
std::vector<int32_t> greedy(const Model& model, const std::vector<int32_t>& prompt, size_t count) {
  Session session(model);
  const float* logits = session.prefill(prompt.data(), prompt.size());
  std::vector<int32_t> out;
  while (out.size() < count) {
    out.push_back(argmax(logits, model.hparams().vocab_size));
    logits = session.step(out.back());
  }
  return out;
}

}  // namespace

TEST_CASE("packed at f32 every reference model reproduces the reference logits") {
  for (const auto& name : reference_model_names()) {
    CAPTURE(name);
    const Model& model = packed_reference_model(name, DType::F32);
    const ReferenceOutputs& ref = reference_outputs(name);
    const int64_t V = model.hparams().vocab_size;
    REQUIRE(ref.logits.size() == ref.input_ids.size() * size_t(V));
    Session session(model);
    double max_diff = 0;
    for (size_t t = 0; t < ref.input_ids.size(); ++t) {
      const float* logits = session.step(ref.input_ids[t]);
      for (int64_t v = 0; v < V; ++v) {
        max_diff = std::max(max_diff, std::fabs(double(logits[v]) - double(ref.logits[t * size_t(V) + size_t(v)])));
      }
    }
    MESSAGE(name << ": max |logit diff| " << max_diff << " over " << ref.input_ids.size() << " positions");
    CHECK(max_diff <= 1e-3);
  }
}

TEST_CASE("packed at f32 greedy continuations are identical to the reference") {
  for (const auto& name : reference_model_names()) {
    const Model& model = packed_reference_model(name, DType::F32);
    for (const auto& item : reference_outputs(name).json.at("greedy").as_object()) {
      const std::string& prompt = item.first;  // CAPTURE cannot take a structured binding
      const json::Value& expected = item.second;
      CAPTURE(name);
      CAPTURE(prompt);
      const std::vector<int32_t> want = ids_of(expected.at("continuation_ids"));
      CHECK(greedy(model, ids_of(expected.at("prompt_ids")), want.size()) == want);
    }
  }
}

TEST_CASE("packed at f16 and bf16 the T2R greedy continuations still match") {
  for (const char* name : {"fairseq-t2r", "llama-t2r"}) {
    for (DType dtype : {DType::F16, DType::BF16}) {
      CAPTURE(name);
      CAPTURE(dtype_name(dtype));
      const Model& model = packed_reference_model(name, dtype);
      for (const auto& item : reference_outputs(name).json.at("greedy").as_object()) {
        const std::string& prompt = item.first;  // CAPTURE cannot take a structured binding
        const json::Value& expected = item.second;
        CAPTURE(prompt);
        const std::vector<int32_t> want = ids_of(expected.at("continuation_ids"));
        CHECK(greedy(model, ids_of(expected.at("prompt_ids")), want.size()) == want);
      }
    }
  }
}

// One test case per model, so that ctest runs them in parallel.
static void check_slice_perplexity(const std::string& name) {
  const ReferenceOutputs& ref = reference_outputs(name);
  const double expected = ref.json.at("valid_slice_ppl").as_number();
  const double got = slice_perplexity(packed_reference_model(name, DType::F32), ref.valid_ids);
  MESSAGE(name << ": valid_slice_ppl " << got << " (reference " << expected << ")");
  CHECK(std::fabs(got / expected - 1) <= 0.005);
}

TEST_CASE("fairseq-softmax: validation slice perplexity within 0.5%") { check_slice_perplexity("fairseq-softmax"); }
TEST_CASE("fairseq-t2r: validation slice perplexity within 0.5%") { check_slice_perplexity("fairseq-t2r"); }
TEST_CASE("fairseq-elu: validation slice perplexity within 0.5%") { check_slice_perplexity("fairseq-elu"); }
TEST_CASE("llama-softmax: validation slice perplexity within 0.5%") { check_slice_perplexity("llama-softmax"); }
TEST_CASE("llama-t2r: validation slice perplexity within 0.5%") { check_slice_perplexity("llama-t2r"); }
TEST_CASE("llama-elu: validation slice perplexity within 0.5%") { check_slice_perplexity("llama-elu"); }

#endif
