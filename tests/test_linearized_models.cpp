// The three published linearized-LLM layouts (LoLCATs, SUPRA, Liger; ../shared/models/README.md),
// packed from their files as released and run by t2r, against their fp32 step references: logits
// at every position, greedy continuations, chunked prefill against stepping, and the final state.
#include <doctest/doctest.h>

#include "reference.h"

#ifdef T2R_REFERENCE_MODELS

#include <algorithm>
#include <cmath>

#include "context.h"
#include "safetensors.h"
#include "sequence_state.h"

using namespace t2r;
using namespace t2r::test;

namespace {

const char* const kLinearized[] = {"lolcats-llama3", "supra-mistral", "liger-mistral-gla"};

// reference.safetensors of a linearized model: logits only at `logit_ids` columns.
struct StepReference {
  std::vector<int32_t> input_ids, logit_ids, argmax;
  std::vector<float> logits, logsumexp;  // [T, 512], [T]
  std::vector<float> state_S, state_z, window_k, window_v;  // absent ones empty
  explicit StepReference(const std::string& name) {
    SafetensorsFile file(reference_dir(name) + "/reference.safetensors");
    input_ids = tensor_to_i32(file.at("input_ids"));
    logit_ids = tensor_to_i32(file.at("logit_ids"));
    argmax = tensor_to_i32(file.at("argmax_step"));
    logits = tensor_to_f32(file.at("logits_step"));
    logsumexp = tensor_to_f32(file.at("logsumexp_step"));
    state_S = tensor_to_f32(file.at("state_S"));
    if (file.find("state_z")) state_z = tensor_to_f32(file.at("state_z"));
    if (file.find("window_k")) window_k = tensor_to_f32(file.at("window_k"));
    if (file.find("window_v")) window_v = tensor_to_f32(file.at("window_v"));
  }
};

double logsumexp(const float* x, int64_t n) {
  const double m = *std::max_element(x, x + n);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(double(x[i]) - m);
  return m + std::log(sum);
}

// Feeds `tokens` to sequence 0 of a fresh context in chunks of `chunk` rows; returns every row's logits.
std::vector<float> run(Context& context, const std::vector<int32_t>& tokens, size_t chunk) {
  const size_t V = size_t(context.model().hparams().vocab_size);
  std::vector<float> all(tokens.size() * V);
  std::vector<BatchRow> rows(chunk);
  for (size_t done = 0; done < tokens.size(); done += chunk) {
    const size_t n = std::min(chunk, tokens.size() - done);
    for (size_t i = 0; i < n; ++i) rows[i] = BatchRow{tokens[done + i], 0, int64_t(done + i), true};
    context.decode(rows.data(), n);
    for (size_t i = 0; i < n; ++i) std::copy(context.logits(i), context.logits(i) + V, all.begin() + (done + i) * V);
  }
  return all;
}

// The state blocks of sequence 0, in the saved order (runtime/sequence_state.h).
std::vector<float> state_blocks(const Context& context) {
  std::vector<float> blocks(state_payload_floats(context.model().hparams(), context.state_layout(), context.position(0)));
  context.save_blocks(0, blocks.data());
  return blocks;
}

double max_diff(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double most = 0;
  for (size_t i = 0; i < a.size(); ++i) most = std::max(most, std::fabs(double(a[i]) - double(b[i])));
  return most;
}

// How far logits [T, V] are from the reference's: at its 512 columns, in logsumexp, in argmax.
struct Agreement {
  double logit_diff = 0, logsumexp_diff = 0;
  int argmax_agree = 0;
};
Agreement compare(const std::vector<float>& logits, int64_t V, const StepReference& ref) {
  Agreement a;
  for (size_t t = 0; t < ref.input_ids.size(); ++t) {
    const float* row = logits.data() + t * size_t(V);
    for (size_t c = 0; c < ref.logit_ids.size(); ++c) {
      a.logit_diff = std::max(a.logit_diff, std::fabs(double(row[ref.logit_ids[c]]) - double(ref.logits[t * 512 + c])));
    }
    a.logsumexp_diff = std::max(a.logsumexp_diff, std::fabs(logsumexp(row, V) - double(ref.logsumexp[t])));
    a.argmax_agree += argmax(row, V) == ref.argmax[t];
  }
  return a;
}

ContextOptions options(int max_batch) {
  ContextOptions o;
  o.max_batch = max_batch;
  o.max_outputs = max_batch;
  o.threads = 2;
  return o;
}

}  // namespace

TEST_CASE("linearized LLMs packed at f32 reproduce the step reference at every position") {
  for (const std::string name : kLinearized) {
    CAPTURE(name);
    const Model& model = packed_reference_model(name, DType::F32);
    const StepReference ref(name);
    const int64_t V = model.hparams().vocab_size;
    Context context(model, options(1));
    const Agreement a = compare(run(context, ref.input_ids, 1), V, ref);
    MESSAGE(name << ": max |logit diff| " << a.logit_diff << ", max |logsumexp diff| " << a.logsumexp_diff << " over "
                 << ref.input_ids.size() << " positions");
    CHECK(a.logit_diff <= 1e-3);
    CHECK(a.logsumexp_diff <= 1e-3);
    CHECK(a.argmax_agree == int(ref.input_ids.size()));

    // The state after the sequence: S (and z), and the window with its oldest key first.
    const Hyperparams& hp = model.hparams();
    const std::vector<float> blocks = state_blocks(context);
    const size_t L = size_t(hp.n_layers), S = ref.state_S.size(), Z = ref.state_z.size();
    const std::vector<float> got_S(blocks.begin(), blocks.begin() + long(S));
    const std::vector<float> got_z(blocks.begin() + long(S), blocks.begin() + long(S + Z));
    double state_diff = max_diff(got_S, ref.state_S);
    if (Z > 0) state_diff = std::max(state_diff, max_diff(got_z, ref.state_z));
    if (!ref.window_k.empty()) {
      const size_t W = size_t(hp.attention(0).linear.window), Hkv = size_t(hp.n_kv_heads), dh = size_t(hp.head_dim);
      const size_t T = ref.input_ids.size(), oldest = T - W;
      std::vector<float> keys(ref.window_k.size()), values(ref.window_v.size());
      for (size_t l = 0; l < L; ++l) {
        const float* layer = blocks.data() + S + Z + l * 2 * Hkv * W * dh;  // keys then values
        for (size_t g = 0; g < Hkv; ++g)
          for (size_t i = 0; i < W; ++i)
            for (size_t j = 0; j < dh; ++j) {
              const size_t slot = (oldest + i) % W, at = ((l * Hkv + g) * W + i) * dh + j;
              keys[at] = layer[(g * W + slot) * dh + j];
              values[at] = layer[Hkv * W * dh + (g * W + slot) * dh + j];
            }
      }
      state_diff = std::max({state_diff, max_diff(keys, ref.window_k), max_diff(values, ref.window_v)});
    }
    MESSAGE(name << ": max |state diff| " << state_diff);
    CHECK(state_diff <= 1e-4);
  }
}

TEST_CASE("linearized LLMs packed at f32 give the reference's greedy continuations") {
  for (const std::string name : kLinearized) {
    const Model& model = packed_reference_model(name, DType::F32);
    const int64_t V = model.hparams().vocab_size;
    for (const auto& item : reference_outputs(name).json.at("greedy").as_object()) {
      const std::string& prompt = item.first;
      CAPTURE(name);
      CAPTURE(prompt);
      const std::vector<int32_t> ids = ids_of(item.second.at("prompt_ids"));
      const std::vector<int32_t> want = ids_of(item.second.at("continuation_ids"));
      Context context(model, options(64));
      std::vector<float> logits = run(context, ids, 16);  // the prompt in chunks, then one row a step
      std::vector<int32_t> got;
      const float* last = logits.data() + (ids.size() - 1) * size_t(V);
      while (got.size() < want.size()) {
        got.push_back(argmax(last, V));
        const BatchRow row{got.back(), 0, context.position(0), true};
        last = context.decode(&row, 1);
      }
      CHECK(got == want);
    }
  }
}

TEST_CASE("linearized LLMs: chunked prefill equals stepping, in logits and state") {
  for (const std::string name : kLinearized) {
    CAPTURE(name);
    const Model& model = packed_reference_model(name, DType::F32);
    const StepReference ref(name);
    Context stepped(model, options(1));
    const std::vector<float> step_logits = run(stepped, ref.input_ids, 1);
    for (size_t chunk : {7, 64}) {  // crossing the window's edge inside a chunk, and one window per chunk
      CAPTURE(chunk);
      Context chunked(model, options(64));
      const double logit_diff = max_diff(run(chunked, ref.input_ids, chunk), step_logits);
      const double state_diff = max_diff(state_blocks(chunked), state_blocks(stepped));
      MESSAGE(name << ", chunks of " << chunk << ": max |logit diff| " << logit_diff << ", max |state diff| "
                   << state_diff);
      CHECK(logit_diff <= 1e-4);
      CHECK(state_diff <= 1e-4);
    }
  }
}

// Bounds from measurements (2026-12, these random-weight models; each is the largest of the three with
// some room): f16 keeps every argmax, and q4_0's error, large for untrained weights of d 32 and 64, is
// about the size of its rounding step. The logsumexp bound keeps q4_0 honest: a wrong block layout
// would move it by far more.
TEST_CASE("linearized LLMs packed at f16, bf16, q8_0 and q4_0 stay close to the step reference") {
  const struct {
    DType dtype;
    double logit, logsumexp;
    int argmax;  // of 150 positions
  } bounds[] = {{DType::F16, 0.1, 0.01, 150}, {DType::BF16, 1.0, 0.1, 145}, {DType::Q8_0, 2.0, 0.2, 125},
                {DType::Q4_0, 20.0, 2.0, 25}};
  for (const std::string name : kLinearized) {
    const StepReference ref(name);
    for (const auto& bound : bounds) {
      const DType dtype = bound.dtype;
      CAPTURE(name);
      CAPTURE(dtype_name(dtype));
      const Model& model = packed_reference_model(name, dtype);
      const int64_t V = model.hparams().vocab_size;
      Context context(model, options(64));
      const Agreement a = compare(run(context, ref.input_ids, 64), V, ref);
      MESSAGE(name << " at " << dtype_name(dtype) << ": max |logit diff| " << a.logit_diff << ", max |logsumexp diff| "
                   << a.logsumexp_diff << ", argmax agrees at " << a.argmax_agree << " of " << ref.input_ids.size());
      CHECK(a.logit_diff <= bound.logit);
      CHECK(a.logsumexp_diff <= bound.logsumexp);
      CHECK(a.argmax_agree >= bound.argmax);
    }
  }
}

#endif
