// Contexts: many sequences in one batch, each with the results it has alone; sequence operations;
// a batch's bad rows refused before anything changes; no allocation while decoding.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "context.h"
#include "error.h"
#include "reference.h"
#include "sequence_state.h"
#include "synthetic_model.h"
#include "t2r.h"
#include "test_support.h"

using namespace t2r;
using t2r::test::heap_allocations;
using t2r::test::TinyModel;

namespace {

// One sequence's part of a schedule: its chunks (token counts), the first at step `start`.
struct Plan {
  size_t start;
  std::vector<size_t> chunks;
};

// B sequences with different start steps and prompt lengths, then single-token steps: every batch
// mixes prompt chunks of some sequences with decoding rows of others, at different positions.
std::vector<Plan> mixed_schedule(size_t sequences, size_t steps) {
  std::vector<Plan> plans;
  for (size_t s = 0; s < sequences; ++s) {
    Plan p{s % 3, {1 + (s * 5) % 7}};
    while (p.start + p.chunks.size() < steps) p.chunks.push_back(1);
    plans.push_back(p);
  }
  return plans;
}

// The token of sequence s at position t: different sequences read different text.
int32_t token_at(const std::vector<int32_t>& text, size_t s, size_t t) { return text[(7 * s + t) % text.size()]; }

// Logits after each chunk of each sequence, running the schedule in one context of every sequence.
// every_row: the logits of every row, not just of each chunk's last.
std::vector<std::vector<float>> run_batched(const Model& model, const std::vector<Plan>& plans,
                                            const std::vector<int32_t>& text, size_t steps, bool every_row) {
  const size_t V = size_t(model.hparams().vocab_size);
  ContextOptions options;
  options.max_sequences = int(plans.size());
  options.max_batch = 64;
  options.max_outputs = 64;
  options.max_context = 64;
  options.threads = 2;
  Context context(model, options);
  std::vector<std::vector<float>> out(plans.size());
  std::vector<BatchRow> rows;
  for (size_t step = 0; step < steps; ++step) {
    rows.clear();
    std::vector<size_t> asked;  // sequence of each output, in row order
    for (size_t s = 0; s < plans.size(); ++s) {
      if (step < plans[s].start || step - plans[s].start >= plans[s].chunks.size()) continue;
      const size_t count = plans[s].chunks[step - plans[s].start];
      const int64_t at = context.position(int(s));
      for (size_t i = 0; i < count; ++i) {
        const bool logits = every_row || i + 1 == count;
        rows.push_back({token_at(text, s, size_t(at) + i), int32_t(s), at + int64_t(i), logits});
        if (logits) asked.push_back(s);
      }
    }
    const float* logits = context.decode(rows.data(), rows.size());
    REQUIRE(context.outputs() == asked.size());
    for (size_t i = 0; i < asked.size(); ++i) out[asked[i]].insert(out[asked[i]].end(), logits + i * V, logits + (i + 1) * V);
  }
  return out;
}

// The same sequence alone in a context of one, with the same chunks.
std::vector<float> run_alone(const Model& model, const Plan& plan, const std::vector<int32_t>& text, size_t s,
                             bool every_row) {
  const size_t V = size_t(model.hparams().vocab_size);
  ContextOptions options;
  options.max_outputs = 64;
  options.max_context = 64;
  options.threads = 2;
  Context context(model, options);
  std::vector<float> out;
  std::vector<BatchRow> rows;
  for (size_t count : plan.chunks) {
    rows.clear();
    const int64_t at = context.position(0);
    for (size_t i = 0; i < count; ++i) {
      rows.push_back({token_at(text, s, size_t(at) + i), 0, at + int64_t(i), every_row || i + 1 == count});
    }
    const float* logits = context.decode(rows.data(), rows.size());
    out.insert(out.end(), logits, logits + context.outputs() * V);
  }
  return out;
}

}  // namespace

TEST_CASE("a context refuses bad rows and options before changing anything") {
  const TinyModel t2r(true), softmax(false);
  ContextOptions options;
  options.max_sequences = 2;
  options.max_batch = 4;
  options.threads = 1;
  Context context(*t2r.model, options);
  const BatchRow good[] = {{5, 0, 0, true}, {6, 1, 0, true}};
  context.decode(good, 2);
  std::vector<unsigned char> before(context.state_size(0));
  context.save(0, before.data(), before.size());
  const auto error = [&](std::vector<BatchRow> rows) {
    try {
      context.decode(rows.data(), rows.size());
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  CHECK(error({{5, 0, 1, false}, {5, 0, 2, false}, {5, 0, 3, false}, {5, 1, 1, false}, {5, 1, 2, false}}) ==
        "a batch of 5 rows is more than this context's max batch (4)");
  CHECK(error({{5, 0, 1, true}, {256, 1, 1, true}}) == "token id 256 is outside the vocabulary (0..255)");
  CHECK(error({{5, 2, 0, true}}) == "sequence 2 does not exist (this context holds 2)");
  CHECK(error({{5, 0, 0, true}}) == "batch row 0: sequence 0 continues at position 1, not 0");
  CHECK(error({{5, 0, 1, false}, {5, 0, 3, false}}) == "batch row 1: sequence 0 continues at position 2, not 3");
  CHECK(error({{5, 0, 1, false}, {5, 1, 1, false}, {5, 0, 2, false}}) ==
        "batch row 2: the rows of sequence 0 must be consecutive");
  CHECK(error({{5, 0, 1, true}, {5, 0, 2, true}, {5, 1, 1, true}}) ==
        "a batch asks for the logits of 3 rows, more than this context's max outputs (2)");
  CHECK(context.position(0) == 1);
  CHECK(context.position(1) == 1);
  std::vector<unsigned char> after(context.state_size(0));
  context.save(0, after.data(), after.size());
  CHECK(before == after);
  CHECK_THROWS_WITH_AS(context.position(-1), "sequence -1 does not exist (this context holds 2)", Error);

  options.max_sequences = 0;
  CHECK_THROWS_WITH_AS(Context(*t2r.model, options), "max sequences must be in [1, 4096]", Error);
  options.max_sequences = 2;
  options.max_outputs = 5;
  CHECK_THROWS_WITH_AS(Context(*t2r.model, options), "max outputs must be in [0, max batch] (0: max sequences)", Error);

  // A softmax sequence's KV cache holds max_context positions.
  ContextOptions small;
  small.max_sequences = 2;
  small.max_context = 2;
  small.threads = 1;
  Context bounded(*softmax.model, small);
  const BatchRow two[] = {{1, 0, 0, false}, {1, 0, 1, true}};
  bounded.decode(two, 2);
  const BatchRow third[] = {{1, 1, 0, true}, {1, 0, 2, true}};
  CHECK_THROWS_WITH_AS(bounded.decode(third, 2), "the KV cache is full (2 positions); start a larger session", Error);
  CHECK(bounded.position(1) == 0);
}

TEST_CASE("sequence copy, clear, save and restore act on one sequence") {
  for (bool linear : {true, false}) {
    CAPTURE(linear);
    const TinyModel tiny(linear);
    const size_t V = 256;
    ContextOptions options;
    options.max_sequences = 3;
    options.max_context = 32;
    options.threads = 1;
    Context context(*tiny.model, options);
    const BatchRow prompt[] = {{10, 0, 0, false}, {20, 0, 1, false}, {30, 0, 2, true}};
    context.decode(prompt, 3);
    // A prompt prefilled once, forked: sequences 1 and 2 continue exactly as 0 does.
    context.copy(0, 1);
    context.copy(0, 2);
    CHECK(context.position(2) == 3);
    const BatchRow next[] = {{40, 0, 3, true}, {40, 1, 3, true}, {40, 2, 3, true}};
    const float* logits = context.decode(next, 3);
    CHECK(std::memcmp(logits, logits + V, V * 4) == 0);
    CHECK(std::memcmp(logits, logits + 2 * V, V * 4) == 0);
    const std::vector<float> after_four(logits, logits + V);

    // Saved and restored into another sequence (of another context), it continues the same.
    std::vector<unsigned char> saved(context.state_size(1));
    context.save(1, saved.data(), saved.size());
    CHECK(saved.size() == kStateHeaderBytes + state_payload_floats(tiny.model->hparams(), context.state_layout(), 4) * 4);
    Context other(*tiny.model, options);
    other.restore(2, saved.data(), saved.size());
    CHECK(other.position(2) == 4);
    CHECK(other.position(0) == 0);
    const BatchRow fifth[] = {{50, 2, 4, true}};
    const BatchRow fifth_here[] = {{50, 1, 4, true}};
    const std::vector<float> there(other.decode(fifth, 1), other.logits(0) + V);
    CHECK(std::vector<float>(context.decode(fifth_here, 1), context.logits(0) + V) == there);
    std::vector<unsigned char> bad = saved;
    bad[8] = 1;
    CHECK_THROWS_WITH_AS(other.restore(0, bad.data(), bad.size()),
                         "session state version 1 is not supported (expected 2)", Error);
    CHECK(other.position(0) == 0);

    // Cleared, a sequence starts over and gives the logits of a fresh one.
    context.clear(0);
    CHECK(context.position(0) == 0);
    Context fresh(*tiny.model, options);
    const BatchRow first[] = {{10, 0, 0, true}};
    const std::vector<float> want(fresh.decode(first, 1), fresh.logits(0) + V);
    CHECK(std::vector<float>(context.decode(first, 1), context.logits(0) + V) == want);
  }
}

#ifdef T2R_REFERENCE_MODELS

using namespace t2r::test;

TEST_CASE("every sequence of a batch has the logits it has alone, for 1 to 16 sequences") {
  for (const auto& name : reference_model_names()) {
    CAPTURE(name);
    const Model& model = packed_reference_model(name, DType::F32);
    const std::vector<int32_t>& text = reference_outputs(name).input_ids;
    for (size_t B : {1, 2, 3, 8, 16}) {
      CAPTURE(B);
      const size_t steps = 5;
      const std::vector<Plan> plans = mixed_schedule(B, steps);
      const auto batched = run_batched(model, plans, text, steps, false);
      // A decoding row alone is a one-row product (the streaming kernel); in a batch it is one of
      // several rows through register tiles, which sum in another order: ulp-level differences.
      double max_diff = 0, max_logit = 0;
      for (size_t s = 0; s < B; ++s) {
        const std::vector<float> alone = run_alone(model, plans[s], text, s, false);
        REQUIRE(alone.size() == batched[s].size());
        for (size_t i = 0; i < alone.size(); ++i) {
          max_diff = std::max(max_diff, double(std::fabs(alone[i] - batched[s][i])));
          max_logit = std::max(max_logit, double(std::fabs(alone[i])));
        }
        if (B == 1) CHECK(alone == batched[s]);  // the same kernels on the same rows: bit for bit
      }
      MESSAGE(name << ", " << B << " sequences: max |logit diff| " << max_diff << ", max |logit| " << max_logit);
      CHECK(max_diff <= 1e-5 * std::max(1.0, max_logit));
    }
    // Prompt chunks of several rows (the logits of each row asked for) go through the same tiles in
    // a batch and alone: bit for bit.
    std::vector<Plan> prompts;
    for (size_t s = 0; s < 6; ++s) prompts.push_back({0, {2 + s, 3, 2}});
    const auto batched = run_batched(model, prompts, text, 3, true);
    for (size_t s = 0; s < prompts.size(); ++s) CHECK(batched[s] == run_alone(model, prompts[s], text, s, true));
  }
}

TEST_CASE("decoding a batch allocates nothing, up to the planned maximum") {
  for (const char* name : {"llama-t2r", "llama-softmax"}) {
    CAPTURE(name);
    const Model& model = packed_reference_model(name, DType::F32);
    ContextOptions options;
    options.max_sequences = 16;
    options.max_batch = 64;
    options.max_outputs = 64;
    options.max_context = 128;
    Context context(model, options);
    std::vector<BatchRow> rows(64);
    std::vector<unsigned char> state(16 << 20);
    const size_t before = heap_allocations();
    for (int step = 0; step < 3; ++step) {
      for (size_t s = 0; s < 16; ++s) rows[s] = {int32_t(s + 3), int32_t(s), context.position(int(s)), true};
      context.decode(rows.data(), 16);
    }
    for (size_t i = 0; i < 64; ++i) rows[i] = {int32_t(i + 1), 5, context.position(5) + int64_t(i), true};
    context.decode(rows.data(), 64);  // a whole prompt chunk, every row's logits
    context.copy(5, 6);
    context.save(6, state.data(), context.state_size(6));
    context.restore(7, state.data(), context.state_size(6));
    context.clear(5);
    CHECK(heap_allocations() - before == 0);
  }
}

#endif

TEST_CASE("the C API decodes batches and operates on sequences, with errors as -1 or NULL and a message") {
  const std::string path = std::string(T2R_SOURCE_DIR) + "/models/default.t2r";
  t2r_model* model = t2r_model_load(path.c_str());
  REQUIRE(model != nullptr);
  t2r_context_options options = t2r_context_default_options();
  options.max_sequences = 2;
  options.max_batch = 4;
  options.threads = 1;
  t2r_context* context = t2r_context_create(model, &options);
  REQUIRE(context != nullptr);
  const t2r_batch_row prompt[] = {{10, 0, 0, 0}, {11, 0, 1, 1}, {12, 1, 0, 1}};
  size_t outputs = 0;
  CHECK(t2r_decode(context, prompt, 3, &outputs) != nullptr);
  CHECK(outputs == 2);
  CHECK(t2r_sequence_position(context, 0) == 2);
  CHECK(t2r_sequence_position(context, 1) == 1);
  CHECK(t2r_sequence_copy(context, 0, 1) == 0);
  CHECK(t2r_sequence_position(context, 1) == 2);
  const int64_t bytes = t2r_sequence_save(context, 1, nullptr, 0);
  REQUIRE(bytes > 0);
  std::vector<unsigned char> state(static_cast<size_t>(bytes));
  CHECK(t2r_sequence_save(context, 1, state.data(), state.size()) == bytes);
  CHECK(t2r_sequence_clear(context, 1) == 0);
  CHECK(t2r_sequence_position(context, 1) == 0);
  CHECK(t2r_sequence_restore(context, 1, state.data(), state.size()) == 0);
  CHECK(t2r_sequence_position(context, 1) == 2);

  const t2r_batch_row wrong[] = {{10, 0, 5, 1}};
  CHECK(t2r_decode(context, wrong, 1, nullptr) == nullptr);
  CHECK(std::string(t2r_last_error()) == "batch row 0: sequence 0 continues at position 2, not 5");
  const t2r_batch_row five[5] = {};
  CHECK(t2r_decode(context, five, 5, nullptr) == nullptr);
  CHECK(std::string(t2r_last_error()) == "a batch of 5 rows is more than this context's max batch (4)");
  CHECK(t2r_sequence_copy(context, 0, 2) == -1);
  CHECK(std::string(t2r_last_error()) == "sequence 2 does not exist (this context holds 2)");
  CHECK(t2r_decode(nullptr, prompt, 1, nullptr) == nullptr);
  CHECK(std::string(t2r_last_error()) == "context is NULL");
  CHECK(t2r_sequence_restore(context, 0, state.data(), 3) == -1);
  CHECK(std::string(t2r_last_error()) == "not a t2r session state");
  options.backend = "tpu";
  CHECK(t2r_context_create(model, &options) == nullptr);
  CHECK(std::string(t2r_last_error()) == "unknown backend 'tpu' (cpu or vulkan)");
  t2r_context_free(context);
  t2r_model_free(model);
}

TEST_CASE("a hybrid model mixes linear and softmax layers, each read from its own description") {
  bench::SyntheticConfig config;
  bench::synthetic_config("tiny", &config);
  config.n_layers = 3;
  const std::vector<unsigned char> bytes = bench::synthetic_model(config, {"t2r", "softmax", "t2r"}, DType::F32).serialize();
  auto model = Model::from_file(
      ModelFile::parse(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), "hybrid"));
  const Hyperparams& hp = model->hparams();
  CHECK(hp.attention_summary() == "hybrid");
  CHECK(hp.attention(0).is_linear());
  CHECK(!hp.attention(1).is_linear());
  CHECK(model->file().metadata().get_string_array("attention.layer_kinds") ==
        std::vector<std::string>{"t2r", "softmax", "t2r"});
  // The metadata round trip gives the same description.
  Metadata written;
  hp.to_metadata(written);
  const Hyperparams again = Hyperparams::from_metadata(written);
  for (size_t l = 0; l < 3; ++l) {
    CHECK(attention_kind_name(again.attention(l)) == attention_kind_name(hp.attention(l)));
    CHECK(again.attention(l).linear.features == hp.attention(l).linear.features);
  }

  ContextOptions options;
  options.max_sequences = 2;
  options.max_context = 16;
  options.threads = 1;
  Context context(*model, options);
  // The state of a sequence: S and z for layers 0 and 2, a 16-position cache for layer 1.
  const StateLayout& layout = context.state_layout();
  const size_t r = size_t(config.feature_dim), dh = size_t(hp.head_dim), H = size_t(hp.n_heads);
  CHECK(layout.layers[0].state_floats == H * r * dh);
  CHECK(layout.layers[1].cache_row_floats == size_t(hp.n_kv_heads) * dh);
  CHECK(layout.floats == 2 * (H * r * dh + H * r) + 2 * 16 * size_t(hp.n_kv_heads) * dh);
  CHECK(context.max_context() == 16);

  // A prompt chunk gives the logits of stepping, and a batch what each sequence gets alone.
  const size_t V = size_t(hp.vocab_size);
  const BatchRow chunk[] = {{3, 0, 0, false}, {4, 0, 1, false}, {5, 0, 2, true}, {9, 1, 0, true}};
  const float* batched = context.decode(chunk, 4);
  const std::vector<float> chunk_logits(batched, batched + V), other_logits(batched + V, batched + 2 * V);
  Context alone(*model, options);
  const BatchRow steps[][1] = {{{3, 0, 0, true}}, {{4, 0, 1, true}}, {{5, 0, 2, true}}};
  const float* stepped = nullptr;
  for (const auto& row : steps) stepped = alone.decode(row, 1);
  double diff = 0;
  for (size_t v = 0; v < V; ++v) diff = std::max(diff, double(std::fabs(stepped[v] - chunk_logits[v])));
  CHECK(diff < 1e-5);
  const BatchRow first_of_other[] = {{9, 1, 0, true}};
  const std::vector<float> other_alone(alone.decode(first_of_other, 1), alone.logits(0) + V);
  for (size_t v = 0; v < V; ++v) diff = std::max(diff, double(std::fabs(other_alone[v] - other_logits[v])));
  CHECK(diff < 1e-5);
  // Its saved state holds both kinds of blocks and restores exactly.
  std::vector<unsigned char> saved(context.state_size(0));
  context.save(0, saved.data(), saved.size());
  CHECK(saved.size() == kStateHeaderBytes + (2 * (H * r * dh + H * r) + 2 * 3 * size_t(hp.n_kv_heads) * dh) * 4);
  alone.restore(1, saved.data(), saved.size());
  const BatchRow next_here[] = {{6, 0, 3, true}}, next_there[] = {{6, 1, 3, true}};
  const std::vector<float> here(context.decode(next_here, 1), context.logits(0) + V);
  CHECK(std::vector<float>(alone.decode(next_there, 1), alone.logits(0) + V) == here);
}
