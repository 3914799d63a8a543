// Vulkan sessions against the CPU session (the shipped model) and against the six reference
// checkpoints' fp32 outputs, with the validation layer watching when installed.
#include <doctest/doctest.h>

#ifdef T2R_VULKAN

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <vector>

#include "error.h"
#include "reference.h"
#include "session.h"
#include "test_vulkan_support.h"
#include "vulkan/context.h"
#include "vulkan/session.h"

using namespace t2r;
using t2r::test::max_diff;

namespace {

// A validated Vulkan session, or none without a Vulkan device (test_vulkan_support.h).
std::unique_ptr<vulkan::Session> open_session(const Model& model, int64_t max_context = 0) {
  vulkan::SessionOptions options;
  options.max_context = max_context;
  return test::open_validated<vulkan::Session>(model, options);
}

void check_validation(const vulkan::Session& session) { test::check_validation(session.device()); }

}  // namespace

TEST_CASE("vulkan session on the shipped model follows the CPU session and resets") {
  auto model = Model::load(std::string(T2R_SOURCE_DIR) + "/models/default.t2r");
  auto gpu = open_session(*model);
  if (!gpu) return;
  const int64_t V = model->hparams().vocab_size;
  Session cpu(*model);
  CHECK(gpu->max_context() == -1);
  CHECK(gpu->bytes() > model->weight_bytes());
  CHECK(std::all_of(gpu->logits(), gpu->logits() + V, [](float x) { return x == 0; }));

  std::vector<int32_t> tokens = {model->tokenizer().eos_id()};
  std::vector<float> first;
  for (int t = 0; t < 24; ++t) {
    const float* g = gpu->step(tokens.back());
    const float* c = cpu.step(tokens.back());
    CHECK(max_diff(g, c, V) < 1e-4);
    if (t == 0) first.assign(g, g + V);
    tokens.push_back(test::argmax(c, V));
  }
  CHECK(gpu->position() == 24);
  CHECK_THROWS_AS(gpu->step(int32_t(V)), Error);
  CHECK_THROWS_AS(gpu->step(-1), Error);

  gpu->reset();
  CHECK(gpu->position() == 0);
  CHECK(max_diff(gpu->step(tokens[0]), first.data(), V) == 0);
  // prefill is stepping token by token.
  gpu->reset();
  cpu.reset();
  CHECK(max_diff(gpu->prefill(tokens.data(), tokens.size()), cpu.prefill(tokens.data(), tokens.size()), V) < 1e-4);
  check_validation(*gpu);
}

#ifdef T2R_REFERENCE_MODELS

using namespace t2r::test;

namespace {

// Logits of the reference input within 1e-3 of the fp32 reference, and the greedy continuations
// of reference.json exactly, on the model packed at f32.
void check_reference_model(const std::string& name) {
  const Model& model = packed_reference_model(name, DType::F32);
  auto session = open_session(model);
  if (!session) return;
  const ReferenceOutputs& ref = reference_outputs(name);
  const int64_t V = model.hparams().vocab_size;
  double worst = 0;
  for (size_t t = 0; t < ref.input_ids.size(); ++t) {
    worst = std::max(worst, max_diff(session->step(ref.input_ids[t]), ref.logits.data() + t * size_t(V), V));
  }
  MESSAGE(name << " on " << session->device().name() << ": max |logit diff| " << worst << " over "
               << ref.input_ids.size() << " positions");
  CHECK(worst <= 1e-3);

  // The whole input as one batch, every row asking for logits: a prompt whose projections are
  // tiled matrix products.
  const size_t n = ref.input_ids.size();
  REQUIRE(n > vulkan::Context::kMatmulMinRows);
  vulkan::ContextOptions options;
  options.max_batch = int(n);
  options.max_outputs = int(n);
  auto context = open_validated<vulkan::Context>(model, options);
  std::vector<BatchRow> rows;
  for (size_t t = 0; t < n; ++t) rows.push_back(BatchRow{ref.input_ids[t], 0, int64_t(t), true});
  const float* prompt_logits = context->decode(rows.data(), rows.size());
  double worst_prompt = 0;
  for (size_t t = 0; t < n; ++t) {
    worst_prompt = std::max(worst_prompt, max_diff(prompt_logits + t * size_t(V), ref.logits.data() + t * size_t(V), V));
  }
  MESSAGE(name << " as one batch of " << n << " rows: max |logit diff| " << worst_prompt);
  CHECK(worst_prompt <= 1e-3);
  test::check_validation(context->device());

  for (const auto& item : ref.json.at("greedy").as_object()) {
    const std::string& prompt = item.first;  // CAPTURE cannot take a structured binding
    const json::Value& expected = item.second;
    CAPTURE(prompt);
    const std::vector<int32_t> prompt_ids = ids_of(expected.at("prompt_ids"));
    const std::vector<int32_t> want = ids_of(expected.at("continuation_ids"));
    session->reset();
    const float* logits = session->prefill(prompt_ids.data(), prompt_ids.size());
    std::vector<int32_t> got;
    while (got.size() < want.size()) {
      got.push_back(argmax(logits, V));
      logits = session->step(got.back());
    }
    CHECK(got == want);
  }
  check_validation(*session);
}

// The CPU session and a Vulkan session on the checkpoint packed at q8_0 or q4_0 agree to float
// rounding: both multiply the weights by activations quantized to q8 blocks with integer dot
// products. Rounding differences (the backends sum in different orders) still move the odd
// activation across a q8 rounding step, which changes the logits by about 0.1 (as between the CPU's
// own AVX-512, AVX2 and scalar paths) and, through the state, every later position's too; so at
// each position the GPU steps from the CPU's state, and most positions must agree to 1e-4.
void check_quantized_model(const std::string& name, DType dtype) {
  const Model& model = packed_reference_model(name, dtype);
  auto gpu = open_session(model, 64);
  if (!gpu) return;
  SessionOptions options;
  options.max_context = 64;
  Session cpu(model, options);
  const int64_t V = model.hparams().vocab_size;
  std::vector<unsigned char> state;
  std::vector<double> diffs;
  for (int32_t token : reference_outputs(name).input_ids) {
    state.resize(cpu.state_size());  // a KV cache's grows with the position
    cpu.save_state(state.data(), state.size());
    gpu->restore_state(state.data(), state.size());
    diffs.push_back(max_diff(gpu->step(token), cpu.step(token), V));
  }
  const size_t agreeing = size_t(std::count_if(diffs.begin(), diffs.end(), [](double d) { return d < 1e-4; }));
  std::sort(diffs.begin(), diffs.end());
  MESSAGE(name << " at " << dtype_name(dtype) << " on " << gpu->device().name() << ": " << agreeing << " of "
               << diffs.size() << " positions within 1e-4 of the CPU's logits; max |logit diff| median "
               << diffs[diffs.size() / 2] << ", worst " << diffs.back());
  CHECK(2 * agreeing > diffs.size());
  check_validation(*gpu);
}

}  // namespace

// One test case per model, so that ctest runs them in parallel.
TEST_CASE("vulkan fairseq-softmax: reference logits and greedy continuations") { check_reference_model("fairseq-softmax"); }
TEST_CASE("vulkan fairseq-t2r: reference logits and greedy continuations") { check_reference_model("fairseq-t2r"); }
TEST_CASE("vulkan fairseq-elu: reference logits and greedy continuations") { check_reference_model("fairseq-elu"); }
TEST_CASE("vulkan llama-softmax: reference logits and greedy continuations") { check_reference_model("llama-softmax"); }
TEST_CASE("vulkan llama-t2r: reference logits and greedy continuations") { check_reference_model("llama-t2r"); }
TEST_CASE("vulkan llama-elu: reference logits and greedy continuations") { check_reference_model("llama-elu"); }

// llama-t2r is the shipped model (models/default.t2r, at bf16).
TEST_CASE("vulkan llama-t2r at q8_0 and q4_0: logits follow the CPU session's") {
  check_quantized_model("llama-t2r", DType::Q8_0);
  check_quantized_model("llama-t2r", DType::Q4_0);
}
TEST_CASE("vulkan fairseq-softmax at q8_0 and q4_0: logits follow the CPU session's") {
  check_quantized_model("fairseq-softmax", DType::Q8_0);
  check_quantized_model("fairseq-softmax", DType::Q4_0);
}

TEST_CASE("vulkan softmax session refuses a token beyond its KV cache") {
  const Model& model = packed_reference_model("llama-softmax", DType::F32);
  auto session = open_session(model, 4);
  if (!session) return;
  CHECK(session->max_context() == 4);
  const int32_t tokens[4] = {1, 2, 3, 4};
  session->prefill(tokens, 4);
  CHECK_THROWS_AS(session->step(5), Error);
  session->reset();
  CHECK_NOTHROW(session->step(5));
  check_validation(*session);
}

#endif
#endif
