// Vulkan contexts on the reference checkpoints (packed at f32), with the validation layer watching:
// every sequence of a batch gives the logits of the same sequence run alone (bit for bit: the
// kernels form each row's sums in the same order whatever the batch; within 1e-5 of the logits'
// scale after batches of more than kMatmulMinRows rows, whose tiled projections sum in another
// order) and those of the
// CPU context; copies continue identically; saved states round-trip
// and move between the backends; bad batches and options are refused with the CPU's messages; the
// model's weights are uploaded once for its contexts; memory budgets are honoured.
#include <doctest/doctest.h>

#if defined(T2R_VULKAN) && defined(T2R_REFERENCE_MODELS)

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <limits>
#include <map>
#include <thread>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "context.h"
#include "error.h"
#include "reference.h"
#include "sequence_state.h"
#include "session.h"
#include "t2r.h"
#include "test_vulkan_support.h"
#include "vulkan/context.h"
#include "vulkan/ops.h"
#include "vulkan/session.h"

using namespace t2r;
using namespace t2r::test;

namespace {

constexpr int64_t kContext = 64;  // softmax layers' positions: more than any test feeds
// A prompt that is one run of the tiled section, in the chunked form of linear attention
// (vulkan::kLinearAttentionChunkMinRows rows or more) over two chunk ends.
constexpr int64_t kLongPrompt = 40;

vulkan::ContextOptions gpu_options(int sequences, int batch, int outputs) {
  vulkan::ContextOptions o;
  o.max_sequences = sequences;
  o.max_batch = batch;
  o.max_outputs = outputs;
  o.max_context = kContext;
  return o;
}

ContextOptions cpu_options(int sequences, int batch, int outputs) {
  ContextOptions o;
  o.max_sequences = sequences;
  o.max_batch = batch;
  o.max_outputs = outputs;
  o.max_context = kContext;
  o.threads = 1;  // the Vulkan device is the CPU too
  return o;
}

// An arbitrary, fixed token stream per sequence.
int32_t token_of(int sequence, int64_t position, int64_t vocab) {
  return int32_t((sequence * 131 + position * 17 + 3) % vocab);
}

// Step `step` of B sequences, in a scrambled sequence order: step 0 a prompt of 1 to 3 rows per
// sequence (logits of its last row; of every row for sequence 1), later steps one row for most
// sequences (some skip a step, so positions drift apart) and two for sequence 0 at step 2 (a
// prompt chunk among decoding rows). Batches of up to 31 rows cross the kernels' groups of 8 and
// (beyond 16 rows) take the tiled matmul.
std::vector<BatchRow> batch_rows(int B, int step, std::vector<int64_t>& positions, int64_t vocab) {
  std::vector<BatchRow> rows;
  for (int k = 0; k < B; ++k) {
    const int s = (k * 7 + 3) % B;
    const int n = step == 0 ? 1 + s % 3 : (s + step) % 4 == 0 ? 0 : step == 2 && s == 0 ? 2 : 1;
    for (int i = 0; i < n; ++i) {
      const int64_t p = positions[size_t(s)]++;
      rows.push_back(BatchRow{token_of(s, p, vocab), s, p, i + 1 == n || s == 1});
    }
  }
  return rows;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

void check_batches(const std::string& name) {
  const Model& model = packed_reference_model(name, DType::F32);
  const int64_t V = model.hparams().vocab_size;
  auto gpu = open_validated<vulkan::Context>(model, gpu_options(16, 48, 48));
  if (!gpu) return;
  auto alone = open_validated<vulkan::Context>(model, gpu_options(1, 1, 1));
  CHECK((alone->device_model() == gpu->device_model()));
  Context cpu(model, cpu_options(16, 48, 48));
  for (int B : {1, 2, 3, 5, 9, 16}) {
    CAPTURE(B);
    for (int s = 0; s < B; ++s) {
      gpu->clear(s);
      cpu.clear(s);
    }
    std::vector<int64_t> positions(size_t(B), 0);
    std::map<std::pair<int, int64_t>, std::vector<float>> batched;  // (sequence, position) -> logits
    // Whether a sequence has been through a batch of more than kMatmulMinRows rows, whose tiled
    // projections sum in another order: from there on its logits agree with it alone to 1e-5 of
    // their scale.
    std::vector<bool> tiled(size_t(B), false);
    std::map<std::pair<int, int64_t>, bool> exact;
    double worst_cpu = 0, worst_tiled = 0, max_logit = 0;
    for (int step = 0; step < 3; ++step) {
      const std::vector<BatchRow> rows = batch_rows(B, step, positions, V);
      for (const BatchRow& row : rows) {
        if (rows.size() > vulkan::Context::kMatmulMinRows) tiled[size_t(row.sequence)] = true;
        exact[{row.sequence, row.position}] = !tiled[size_t(row.sequence)];
      }
      const float* g = gpu->decode(rows.data(), rows.size());
      const float* c = cpu.decode(rows.data(), rows.size());
      REQUIRE(gpu->outputs() == cpu.outputs());
      size_t output = 0;
      for (const BatchRow& row : rows) {
        if (!row.logits) continue;
        batched[{row.sequence, row.position}].assign(g + output * size_t(V), g + (output + 1) * size_t(V));
        worst_cpu = std::max(worst_cpu, max_diff(g + output * size_t(V), c + output * size_t(V), V));
        ++output;
      }
    }
    for (int s = 0; s < B; ++s) {
      CHECK(gpu->position(s) == positions[size_t(s)]);
      alone->clear(0);
      for (int64_t p = 0; p < positions[size_t(s)]; ++p) {
        const BatchRow row{token_of(s, p, V), 0, p, true};
        const float* logits = alone->decode(&row, 1);
        auto it = batched.find({s, p});
        if (it == batched.end()) continue;
        CAPTURE(s);
        CAPTURE(p);
        if (exact.at({s, p})) {
          CHECK(max_diff(it->second.data(), logits, V) == 0);
        } else {
          worst_tiled = std::max(worst_tiled, max_diff(it->second.data(), logits, V));
          for (int64_t i = 0; i < V; ++i) max_logit = std::max(max_logit, double(std::fabs(logits[i])));
        }
      }
    }
    MESSAGE(name << ", " << B << " sequences: max |logit diff| vs the CPU context " << worst_cpu
                 << ", vs alone after tiled batches " << worst_tiled << " (max |logit| " << max_logit << ")");
    // Other arithmetic: the CPU's bound for its register tiles against its one-row kernel
    // (test_context.cpp), 1e-5 of the logits' scale.
    CHECK(worst_tiled <= 1e-5 * std::max(1.0, max_logit));
    CHECK(worst_cpu < 1e-4);
  }
  check_validation(gpu->device());
}

// Decodes `token` as the next row of each of `sequences`, asking for every row's logits.
const float* next_rows(vulkan::Context& gpu, std::initializer_list<int> sequences, int32_t token) {
  std::vector<BatchRow> rows;
  for (int s : sequences) rows.push_back(BatchRow{token, s, gpu.position(s), true});
  return gpu.decode(rows.data(), rows.size());
}

void check_sequence_states(const std::string& name) {
  const Model& model = packed_reference_model(name, DType::F32);
  const int64_t V = model.hparams().vocab_size;
  auto gpu = open_validated<vulkan::Context>(model, gpu_options(3, int(kLongPrompt), 3));
  if (!gpu) return;
  Context cpu(model, cpu_options(2, int(kLongPrompt), 2));
  std::vector<BatchRow> prompt;
  for (int64_t p = 0; p < kLongPrompt; ++p) prompt.push_back(BatchRow{token_of(0, p, V), 0, p, p + 1 == kLongPrompt});
  gpu->decode(prompt.data(), prompt.size());
  cpu.decode(prompt.data(), prompt.size());

  // The same bytes layout on both backends: the GPU's state continues on the CPU and the CPU's on
  // the GPU.
  std::vector<unsigned char> from_gpu(gpu->state_size(0)), from_cpu(cpu.state_size(0));
  REQUIRE(from_gpu.size() == from_cpu.size());
  gpu->save(0, from_gpu.data(), from_gpu.size());
  cpu.save(0, from_cpu.data(), from_cpu.size());
  CHECK(std::memcmp(from_gpu.data(), from_cpu.data(), kStateHeaderBytes) == 0);
  cpu.restore(1, from_gpu.data(), from_gpu.size());
  gpu->restore(1, from_cpu.data(), from_cpu.size());
  CHECK(cpu.position(1) == kLongPrompt);
  CHECK(gpu->position(1) == kLongPrompt);
  const BatchRow cpu_rows[2] = {{7, 0, kLongPrompt, true}, {7, 1, kLongPrompt, true}};
  const float* c = cpu.decode(cpu_rows, 2);
  const float* g = next_rows(*gpu, {0, 1}, 7);
  CHECK(max_diff(c, c + V, V) < 1e-4);
  CHECK(max_diff(g, g + V, V) < 1e-4);
  CHECK(max_diff(g, c, V) < 1e-4);

  // A copy continues exactly as its source.
  gpu->copy(0, 1);
  CHECK(gpu->position(1) == kLongPrompt + 1);
  int32_t token = argmax(g, V);
  for (int t = 0; t < 3; ++t) {
    const float* both = next_rows(*gpu, {0, 1}, token);
    CHECK(max_diff(both, both + V, V) == 0);
    token = argmax(both, V);
  }

  // A saved state round-trips on the GPU bit for bit.
  std::vector<unsigned char> saved(gpu->state_size(0));
  gpu->save(0, saved.data(), saved.size());
  gpu->restore(2, saved.data(), saved.size());
  CHECK(gpu->position(2) == gpu->position(0));
  const float* restored = next_rows(*gpu, {0, 2}, token);
  CHECK(max_diff(restored, restored + V, V) == 0);

  // Bad states are refused and leave the sequence as it was.
  const int64_t before = gpu->position(2);
  CHECK_THROWS_AS(gpu->restore(2, saved.data(), saved.size() - 4), Error);
  std::vector<unsigned char> damaged = saved;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::memcpy(damaged.data() + damaged.size() - 4, &nan, 4);
  CHECK_THROWS_WITH_AS(gpu->restore(2, damaged.data(), damaged.size()),
                       doctest::Contains("session state holds NaN"), Error);
  CHECK(gpu->position(2) == before);
  const float* still = next_rows(*gpu, {0, 2}, 11);
  CHECK(max_diff(still, still + V, V) == 0);
  check_validation(gpu->device());
}

// A long prompt in one batch (the chunked form of linear attention) against the same tokens
// stepped a row at a time: the logits of every row, and the state after it, agree within the
// CPU's bound for other arithmetic (1e-5 of their scale), as after tiled batches.
void check_chunked_prompt(const std::string& name) {
  const Model& model = packed_reference_model(name, DType::F32);
  const int64_t V = model.hparams().vocab_size;
  auto chunked = open_validated<vulkan::Context>(model, gpu_options(1, int(kLongPrompt), int(kLongPrompt)));
  if (!chunked) return;
  auto stepped = open_validated<vulkan::Context>(model, gpu_options(1, 1, 1));
  std::vector<BatchRow> prompt;
  for (int64_t p = 0; p < kLongPrompt; ++p) prompt.push_back(BatchRow{token_of(0, p, V), 0, p, true});
  const std::vector<float> logits = [&] {
    const float* g = chunked->decode(prompt.data(), prompt.size());
    return std::vector<float>(g, g + kLongPrompt * V);
  }();
  double worst = 0, max_logit = 0;
  for (int64_t p = 0; p < kLongPrompt; ++p) {
    const float* alone = stepped->decode(&prompt[size_t(p)], 1);
    worst = std::max(worst, max_diff(logits.data() + p * V, alone, V));
    for (int64_t i = 0; i < V; ++i) max_logit = std::max(max_logit, double(std::fabs(alone[i])));
  }
  std::vector<unsigned char> chunked_state(chunked->state_size(0)), stepped_state(stepped->state_size(0));
  chunked->save(0, chunked_state.data(), chunked_state.size());
  stepped->save(0, stepped_state.data(), stepped_state.size());
  CHECK(std::memcmp(chunked_state.data(), stepped_state.data(), kStateHeaderBytes) == 0);
  const int64_t floats = int64_t(chunked_state.size() - kStateHeaderBytes) / int64_t(sizeof(float));
  // The floats after the header: each layer's S and z, or keys and values.
  const auto floats_of = [&](const std::vector<unsigned char>& bytes) {
    std::vector<float> values(static_cast<size_t>(floats));
    std::memcpy(values.data(), bytes.data() + kStateHeaderBytes, values.size() * sizeof(float));
    return values;
  };
  const std::vector<float> from_chunks = floats_of(chunked_state), from_steps = floats_of(stepped_state);
  double max_state = 0;
  for (float e : from_steps) max_state = std::max(max_state, double(std::fabs(e)));
  const double worst_state = max_diff(from_chunks.data(), from_steps.data(), floats);
  MESSAGE(name << ", a prompt of " << kLongPrompt << " rows: max |logit diff| vs stepped " << worst << " (max |logit| "
               << max_logit << "), max |state diff| " << worst_state << " (max |state| " << max_state << ")");
  CHECK(worst <= 1e-5 * std::max(1.0, max_logit));
  CHECK(worst_state <= 1e-5 * std::max(1.0, max_state));
  check_validation(chunked->device());
}

}  // namespace

// Two test cases per model, so that ctest runs them in parallel.
TEST_CASE("vulkan context fairseq-softmax: batched sequences give their logits alone and the CPU's") { check_batches("fairseq-softmax"); }
TEST_CASE("vulkan context fairseq-t2r: batched sequences give their logits alone and the CPU's") { check_batches("fairseq-t2r"); }
TEST_CASE("vulkan context fairseq-elu: batched sequences give their logits alone and the CPU's") { check_batches("fairseq-elu"); }
TEST_CASE("vulkan context llama-softmax: batched sequences give their logits alone and the CPU's") { check_batches("llama-softmax"); }
TEST_CASE("vulkan context llama-t2r: batched sequences give their logits alone and the CPU's") { check_batches("llama-t2r"); }
TEST_CASE("vulkan context llama-elu: batched sequences give their logits alone and the CPU's") { check_batches("llama-elu"); }

TEST_CASE("vulkan context fairseq-softmax: copy, save and restore within and across backends") { check_sequence_states("fairseq-softmax"); }
TEST_CASE("vulkan context fairseq-t2r: copy, save and restore within and across backends") { check_sequence_states("fairseq-t2r"); }
TEST_CASE("vulkan context fairseq-elu: copy, save and restore within and across backends") { check_sequence_states("fairseq-elu"); }
TEST_CASE("vulkan context llama-softmax: copy, save and restore within and across backends") { check_sequence_states("llama-softmax"); }
TEST_CASE("vulkan context llama-t2r: copy, save and restore within and across backends") { check_sequence_states("llama-t2r"); }
TEST_CASE("vulkan context llama-elu: copy, save and restore within and across backends") { check_sequence_states("llama-elu"); }

TEST_CASE("vulkan context fairseq-t2r: a chunked prompt's logits and state agree with stepping") { check_chunked_prompt("fairseq-t2r"); }
TEST_CASE("vulkan context fairseq-elu: a chunked prompt's logits and state agree with stepping") { check_chunked_prompt("fairseq-elu"); }
TEST_CASE("vulkan context llama-t2r: a chunked prompt's logits and state agree with stepping") { check_chunked_prompt("llama-t2r"); }
TEST_CASE("vulkan context llama-elu: a chunked prompt's logits and state agree with stepping") { check_chunked_prompt("llama-elu"); }

TEST_CASE("vulkan context llama-softmax: attention split over positions follows the CPU past a split") {
  const Model& model = packed_reference_model("llama-softmax", DType::F32);
  const int64_t V = model.hparams().vocab_size, context = 2 * int64_t(vulkan::kSplitPositions);
  vulkan::ContextOptions options = gpu_options(2, 4, 2);
  options.max_context = context;
  auto gpu = open_validated<vulkan::Context>(model, options);
  if (!gpu) return;
  ContextOptions cpu_context = cpu_options(2, 4, 2);
  cpu_context.max_context = context;
  Context cpu(model, cpu_context);
  // Two sequences decoding together (section 0), every fifth step sequence 0 alone (the one-row
  // section), past a split boundary (the kernel itself is checked over three splits).
  double worst = 0;
  int64_t positions[2] = {0, 0};
  while (positions[0] < int64_t(vulkan::kSplitPositions) + 20) {
    const size_t count = positions[0] % 5 == 4 ? 1 : 2;
    BatchRow rows[2];
    for (size_t s = 0; s < count; ++s) {
      rows[s] = BatchRow{token_of(int(s), positions[s], V), int(s), positions[s], true};
      ++positions[s];
    }
    const float* g = gpu->decode(rows, count);
    const float* c = cpu.decode(rows, count);
    worst = std::max(worst, max_diff(g, c, V * int64_t(count)));
  }
  MESSAGE("llama-softmax past " << gpu->position(0) << " positions: max |logit diff| vs the CPU context " << worst);
  CHECK(worst < 1e-4);
  check_validation(gpu->device());
}

TEST_CASE("vulkan session states restore on the CPU session and the other way round") {
  for (const char* name : {"fairseq-softmax", "llama-t2r"}) {
    CAPTURE(name);
    const Model& model = packed_reference_model(name, DType::F32);
    const int64_t V = model.hparams().vocab_size;
    vulkan::SessionOptions options;
    options.max_context = kContext;
    auto gpu = open_validated<vulkan::Session>(model, options);
    if (!gpu) return;
    SessionOptions cpu_session;
    cpu_session.max_context = kContext;
    cpu_session.threads = 1;
    Session cpu(model, cpu_session);
    const int32_t prompt[4] = {5, 17, 3, 99};
    gpu->prefill(prompt, 4);
    cpu.prefill(prompt, 4);
    std::vector<unsigned char> from_gpu(gpu->state_size()), from_cpu(cpu.state_size());
    REQUIRE(from_gpu.size() == from_cpu.size());
    gpu->save_state(from_gpu.data(), from_gpu.size());
    cpu.save_state(from_cpu.data(), from_cpu.size());
    CHECK(std::memcmp(from_gpu.data(), from_cpu.data(), kStateHeaderBytes) == 0);

    // Round trip on the GPU: the saved logits come back, and the same steps give the same bits.
    const float* after = gpu->step(7);
    const std::vector<float> seven(after, after + V);
    gpu->step(9);
    gpu->restore_state(from_gpu.data(), from_gpu.size());
    CHECK(gpu->position() == 4);
    CHECK(std::memcmp(gpu->logits(), from_gpu.data() + kStateHeaderBytes, size_t(V) * sizeof(float)) == 0);
    CHECK(max_diff(gpu->step(7), seven.data(), V) == 0);

    // Across backends.
    Session cpu_from_gpu(model, cpu_session);
    cpu_from_gpu.restore_state(from_gpu.data(), from_gpu.size());
    gpu->restore_state(from_cpu.data(), from_cpu.size());
    CHECK(std::memcmp(gpu->logits(), cpu.logits(), size_t(V) * sizeof(float)) == 0);
    const float* c = cpu.step(7);
    CHECK(max_diff(cpu_from_gpu.step(7), c, V) < 1e-4);
    CHECK(max_diff(gpu->step(7), c, V) < 1e-4);
    // A version-2 state (one sequence of a context) is not a session's.
    std::vector<unsigned char> sequence(gpu->context().state_size(0));
    gpu->context().save(0, sequence.data(), sequence.size());
    CHECK_THROWS_WITH_AS(gpu->restore_state(sequence.data(), sequence.size()),
                         "session state version 2 is not supported (expected 1)", Error);
    check_validation(gpu->device());
  }
}

TEST_CASE("vulkan contexts of a model share its uploaded weights and honour memory budgets") {
  const Model& model = packed_reference_model("llama-softmax", DType::F32);
  vulkan::ContextOptions options = gpu_options(4, 4, 2);
  auto a = open_validated<vulkan::Context>(model, options);
  if (!a) return;
  std::weak_ptr<const vulkan::DeviceModel> shared = a->device_model();
  CHECK(a->weight_bytes() >= model.weight_bytes());
  {
    auto b = open_validated<vulkan::Context>(model, gpu_options(1, 1, 1));
    CHECK((b->device_model() == a->device_model()));
    CHECK(&b->device() == &a->device());
    CHECK(b->bytes() < a->bytes());  // its own states and activations only
  }

  // A context's budget counts its own memory and the weights it needs.
  const uint64_t needed = a->bytes() + a->weight_bytes();
  options.memory_budget = needed - 1;
  const std::string refused = error_of([&] { open_validated<vulkan::Context>(model, options); });
  CHECK(refused.find("needs " + std::to_string(needed) + " bytes of device memory") != std::string::npos);
  CHECK(refused.find("over the memory budget of " + std::to_string(needed - 1) + " bytes") != std::string::npos);
  options.memory_budget = needed;
  CHECK_NOTHROW(open_validated<vulkan::Context>(model, options));

  // A session's bytes() is that sum, and its budget the same limit.
  vulkan::SessionOptions session_options;
  session_options.max_context = kContext;
  auto session = open_validated<vulkan::Session>(model, session_options);
  CHECK(session->bytes() == session->context().bytes() + session->context().weight_bytes());
  session_options.memory_budget = session->bytes() - 1;
  CHECK_THROWS_AS(open_validated<vulkan::Session>(model, session_options), Error);
  session_options.memory_budget = session->bytes();
  CHECK_NOTHROW(open_validated<vulkan::Session>(model, session_options));
  check_validation(a->device());

  // The weights go with the last context that uses them.
  session.reset();
  a.reset();
  CHECK(shared.expired());
}

TEST_CASE("vulkan contexts on several threads share one device model safely") {
  const Model& model = packed_reference_model("llama-t2r", DType::F32);
  const int64_t V = model.hparams().vocab_size;
  // A context of its own decoding stream `stream`: its logits, and what the validation layer said.
  struct Run {
    std::vector<float> logits;
    std::vector<std::string> messages;
    std::string error;
  };
  auto run = [&](int stream, Run* out) {
    try {
      vulkan::ContextOptions options = gpu_options(1, 4, 1);
      options.device.validation = true;
      vulkan::Context context(model, options);
      for (int64_t p = 0; p < 6; ++p) {
        const BatchRow row{token_of(stream, p, V), 0, p, true};
        const float* logits = context.decode(&row, 1);
        out->logits.insert(out->logits.end(), logits, logits + V);
      }
      out->messages = context.device().validation_messages();
    } catch (const Error& e) {
      out->error = e.what();
    }
  };
  if (!open_validated<vulkan::Context>(model, gpu_options(1, 1, 1))) return;
  constexpr int kThreads = 4;
  std::vector<Run> alone(kThreads), together(kThreads);
  for (int t = 0; t < kThreads; ++t) run(t, &alone[size_t(t)]);
  // The first context of the threads opens the device model; the others wait for it and share it.
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(run, t, &together[size_t(t)]);
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) {
    CAPTURE(t);
    CHECK(together[size_t(t)].error == "");
    for (const std::string& m : together[size_t(t)].messages) MESSAGE("validation: " << m);
    CHECK(together[size_t(t)].messages.empty());
    REQUIRE(together[size_t(t)].logits.size() == alone[size_t(t)].logits.size());
    CHECK(together[size_t(t)].logits == alone[size_t(t)].logits);
  }
}

TEST_CASE("vulkan context refuses bad batches, sequences and options with the CPU context's messages") {
  const Model& model = packed_reference_model("fairseq-t2r", DType::F32);
  const int32_t V = int32_t(model.hparams().vocab_size);
  auto gpu = open_validated<vulkan::Context>(model, gpu_options(2, 4, 2));
  if (!gpu) return;
  Context cpu(model, cpu_options(2, 4, 2));
  const BatchRow first{1, 0, 0, true};
  gpu->decode(&first, 1);
  cpu.decode(&first, 1);
  const std::vector<std::vector<BatchRow>> bad = {
      {{1, 0, 1, false}, {2, 0, 2, false}, {3, 0, 3, false}, {4, 0, 4, false}, {5, 0, 5, false}},  // too many
      {{V, 0, 1, true}},
      {{-1, 0, 1, true}},
      {{1, 2, 0, true}},
      {{1, -1, 0, true}},
      {{1, 0, 0, true}},                                      // does not continue sequence 0
      {{1, 0, 1, false}, {1, 1, 0, false}, {1, 0, 2, false}},  // sequence 0 not consecutive
      {{1, 0, 1, true}, {1, 0, 2, true}, {1, 1, 0, true}},     // three logits, two outputs
  };
  for (const std::vector<BatchRow>& rows : bad) {
    const std::string on_gpu = error_of([&] { gpu->decode(rows.data(), rows.size()); });
    CAPTURE(on_gpu);
    CHECK(!on_gpu.empty());
    CHECK(on_gpu == error_of([&] { cpu.decode(rows.data(), rows.size()); }));
  }
  CHECK(gpu->position(0) == 1);
  CHECK(gpu->position(1) == 0);
  CHECK(error_of([&] { gpu->position(2); }) == error_of([&] { cpu.position(2); }));
  CHECK(error_of([&] { gpu->clear(-1); }) == error_of([&] { cpu.clear(-1); }));
  CHECK(error_of([&] { gpu->copy(0, 5); }) == error_of([&] { cpu.copy(0, 5); }));
  CHECK(!error_of([&] { gpu->copy(0, 5); }).empty());

  struct BadOptions {
    int sequences, batch, outputs;
    int64_t context;
  };
  for (const BadOptions& o : {BadOptions{0, 4, 0, 0}, BadOptions{1, 0, 0, 0}, BadOptions{1, 4, 5, 0},
                              BadOptions{1, 4, 0, -1}}) {
    vulkan::ContextOptions g = gpu_options(o.sequences, o.batch, o.outputs);
    g.max_context = o.context;
    ContextOptions c = cpu_options(o.sequences, o.batch, o.outputs);
    c.max_context = o.context;
    const std::string on_gpu = error_of([&] { vulkan::Context refused(model, g); });
    CHECK(!on_gpu.empty());
    CHECK(on_gpu == error_of([&] { Context refused(model, c); }));
  }

  // Shaders count positions in 32 bits: a restored linear state at 2^32 cannot go on.
  std::vector<unsigned char> state(gpu->state_size(0));
  gpu->save(0, state.data(), state.size());
  const int64_t far = int64_t(1) << 32;
  std::memcpy(state.data() + 24, &far, sizeof(far));
  gpu->restore(1, state.data(), state.size());
  const BatchRow beyond{1, 1, far, true};
  CHECK_THROWS_WITH_AS(gpu->decode(&beyond, 1), "the Vulkan backend counts positions below 2^32", Error);
  CHECK(gpu->position(1) == far);
  check_validation(gpu->device());
}

TEST_CASE("the C API's vulkan contexts decode batches as the CPU's do") {
  if (!std::getenv("T2R_REQUIRE_VULKAN") && vulkan::list_devices().empty()) return;
  const std::string path = std::string(T2R_SOURCE_DIR) + "/models/default.t2r";
  t2r_model* model = t2r_model_load(path.c_str());
  REQUIRE(model != nullptr);
  t2r_context_options options = t2r_context_default_options();
  options.max_sequences = 3;
  options.max_batch = 8;
  t2r_context* cpu = t2r_context_create(model, &options);
  options.backend = "vulkan";
  t2r_context* gpu = t2r_context_create(model, &options);
  REQUIRE(cpu != nullptr);
  REQUIRE(gpu != nullptr);
  const t2r_batch_row rows[] = {{10, 0, 0, 0}, {11, 0, 1, 1}, {12, 1, 0, 1}, {13, 2, 0, 1}};
  size_t cpu_outputs = 0, gpu_outputs = 0;
  const float* a = t2r_decode(cpu, rows, 4, &cpu_outputs);
  const float* b = t2r_decode(gpu, rows, 4, &gpu_outputs);
  REQUIRE(a != nullptr);
  REQUIRE(b != nullptr);
  CHECK(cpu_outputs == 3);
  CHECK(gpu_outputs == 3);
  t2r_model_info info;
  t2r_model_get_info(model, &info);
  CHECK(max_diff(a, b, 3 * info.vocab_size) < 1e-4);
  CHECK(t2r_sequence_copy(gpu, 0, 2) == 0);
  CHECK(t2r_sequence_position(gpu, 2) == 2);
  const t2r_batch_row wrong[] = {{10, 1, 0, 1}};
  CHECK(t2r_decode(gpu, wrong, 1, nullptr) == nullptr);
  CHECK(std::string(t2r_last_error()) == "batch row 0: sequence 1 continues at position 1, not 0");
  t2r_context_free(gpu);
  t2r_context_free(cpu);
  t2r_model_free(model);
}

#endif

#if defined(T2R_VULKAN) && defined(T2R_REFERENCE_MODELS)
TEST_CASE("vulkan context refuses the linearized LLMs' attention by name") {
  const struct {
    const char* name;
    const char* refusal;
  } cases[] = {{"lolcats-llama3", "does not compute hedgehog attention (readout normalized, decay none, a window of 64)"},
               {"supra-mistral", "does not compute relu-rotary attention (readout group-norm, decay per-head)"},
               {"liger-mistral-gla", "does not compute head-softmax attention (readout plain, decay key-gate, a window of 64)"}};
  for (const auto& c : cases) {
    CAPTURE(c.name);
    const Model& model = t2r::test::packed_reference_model(c.name, DType::F32);
    const std::string refused = error_of([&] { vulkan::Context context(model, vulkan::ContextOptions{}); });
    CHECK(refused.find(c.refusal) != std::string::npos);
  }
}
#endif
