// Block quantization (q8_0, q4_0): ggml's layouts and quantizers, the file format's rules for
// block tensors, t2r-pack's choice of stored dtype, and the reference models packed at q8_0/q4_0.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "checkpoint_import.h"
#include "checksum.h"
#include "error.h"
#include "model_file.h"
#include "model_writer.h"
#include "quantize.h"
#include "reference.h"

using namespace t2r;

TEST_CASE("q8_0 and q4_0 blocks match ggml's on hand-computed inputs") {
  float x[32];
  for (int j = 0; j < 32; ++j) x[j] = float(j - 16);

  // q8_0: d = 16 / 127, stored as f16 0x3008; q = round(x * 127 / 16), halves away from zero.
  BlockQ8_0 q8;
  quantize_q8_0(x, 32, &q8);
  const int8_t want_q8[32] = {-127, -119, -111, -103, -95, -87, -79, -71, -64, -56, -48, -40, -32, -24, -16, -8,
                              0,    8,    16,   24,   32,  40,  48,  56,  64,  71,  79,  87,  95,  103, 111, 119};
  CHECK(q8.d == 0x3008);
  CHECK(std::memcmp(q8.qs, want_q8, 32) == 0);

  // q4_0: the value of largest magnitude is -16, so d = 2 (0x4000) and nibble = min(15,
  // trunc(x / 2 + 8.5)); byte j holds element j low and element j + 16 high.
  BlockQ4_0 q4;
  quantize_q4_0(x, 32, &q4);
  const uint8_t want_q4[16] = {0x80, 0x91, 0x91, 0xa2, 0xa2, 0xb3, 0xb3, 0xc4,
                               0xc4, 0xd5, 0xd5, 0xe6, 0xe6, 0xf7, 0xf7, 0xf8};
  CHECK(q4.d == 0x4000);
  CHECK(std::memcmp(q4.qs, want_q4, 16) == 0);
  float back[32];
  dequantize_q4_0(&q4, 32, back);
  CHECK(back[0] == -16.0f);
  CHECK(back[31] == 14.0f);  // 15 saturates at nibble 15: 2 * (15 - 8)

  // A positive extreme flips the sign of d: same nibbles, d = -2 (0xc000).
  for (int j = 0; j < 32; ++j) x[j] = float(16 - j);
  quantize_q4_0(x, 32, &q4);
  CHECK(q4.d == 0xc000);
  CHECK(std::memcmp(q4.qs, want_q4, 16) == 0);

  // All zeros: d = 0 (for q4_0 -0, from 0 / -8) and every nibble is 8.
  std::memset(x, 0, sizeof x);
  quantize_q8_0(x, 32, &q8);
  quantize_q4_0(x, 32, &q4);
  CHECK(q8.d == 0);
  CHECK(q4.d == 0x8000);
  for (int j = 0; j < 16; ++j) CHECK(q4.qs[j] == 0x88);
}

TEST_CASE("quantize then dequantize stays within a step of the input") {
  std::mt19937 rng(7);
  std::normal_distribution<float> dist(0, 1);
  std::vector<float> x(32 * 200), y(x.size());
  for (float& v : x) v = dist(rng);
  std::vector<BlockQ8_0> q8(200);
  std::vector<BlockQ4_0> q4(200);
  quantize_q8_0(x.data(), x.size(), q8.data());
  quantize_q4_0(x.data(), x.size(), q4.data());
  dequantize_q8_0(q8.data(), x.size(), y.data());
  for (size_t b = 0; b < 200; ++b) {
    float amax = 0;
    for (size_t j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[32 * b + j]));
    // Half a step, plus the f16 rounding of d (2^-11 relative) times up to 127 steps.
    for (size_t j = 0; j < 32; ++j) REQUIRE(std::fabs(y[32 * b + j] - x[32 * b + j]) <= amax / 127 * 0.57f);
  }
  dequantize_q4_0(q4.data(), x.size(), y.data());
  for (size_t b = 0; b < 200; ++b) {
    float amax = 0;
    for (size_t j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[32 * b + j]));
    // Half a step, except that the extreme opposite to d's sign saturates one step short.
    for (size_t j = 0; j < 32; ++j) REQUIRE(std::fabs(y[32 * b + j] - x[32 * b + j]) <= amax / 8 * 1.01f);
  }
}

namespace {

std::vector<unsigned char> file_with(DType dtype, std::vector<uint64_t> shape) {
  uint64_t count = 1;
  for (uint64_t d : shape) count *= d;
  std::vector<float> values(count);
  for (size_t i = 0; i < count; ++i) values[i] = std::sin(float(i));
  ModelWriter w;
  w.add_tensor("a", dtype, std::move(shape), values.data());
  return w.serialize();
}

std::string parse_error(std::vector<unsigned char> bytes, uint32_t patched_dtype) {
  uint64_t table_offset;
  std::memcpy(&table_offset, bytes.data() + 48, 8);
  std::memcpy(bytes.data() + table_offset + 4 + 1, &patched_dtype, 4);  // name length, "a", dtype
  std::memset(bytes.data() + 80, 0, 8);
  const uint64_t sum = checksum64(bytes.data(), bytes.size());
  std::memcpy(bytes.data() + 80, &sum, 8);
  try {
    ModelFile::parse(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), "test.t2r");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("block tensors round trip through the writer and reader") {
  const std::vector<unsigned char> bytes = file_with(DType::Q4_0, {2, 3, 64});
  const std::string copy(bytes.begin(), bytes.end());
  const ModelFile file = ModelFile::parse(copy, "test.t2r");
  const TensorInfo& t = file.require("a", {2, 3, 64});
  CHECK(t.dtype == DType::Q4_0);
  CHECK(t.size == 6 * 2 * 18);
  std::vector<float> values(6 * 64);
  for (size_t i = 0; i < values.size(); ++i) values[i] = std::sin(float(i));
  std::vector<BlockQ4_0> want(12);
  quantize_q4_0(values.data(), values.size(), want.data());
  CHECK(std::memcmp(t.data, want.data(), t.size) == 0);
}

TEST_CASE("block tensors need rows of whole blocks") {
  CHECK_THROWS_WITH_AS(file_with(DType::Q8_0, {3, 40}),
                       "tensor 'a' [3, 40] cannot be stored as q8_0: it needs 2 or more dimensions and a last "
                       "dimension that is a multiple of 32",
                       Error);
  CHECK_THROWS_AS(file_with(DType::Q4_0, {64}), Error);
  // Files that claim a block dtype for a tensor that cannot hold one, or with the wrong size.
  CHECK(parse_error(file_with(DType::F32, {64}), 3).find("tensor 'a' [64] is q8_0, which needs 2 or more dimensions") !=
        std::string::npos);
  CHECK(parse_error(file_with(DType::F32, {2, 48}), 4).find("is q4_0, which needs") != std::string::npos);
  CHECK(parse_error(file_with(DType::F16, {2, 32}), 3).find("[2, 32] q8_0 needs 68 bytes, table says 128") !=
        std::string::npos);
}

TEST_CASE("t2r-pack quantizes weight matrices and keeps the rest") {
  auto stored = [](const char* name, std::vector<uint64_t> shape, DType asked) {
    return stored_dtype(ImportedTensor{name, std::move(shape), {}, {}}, asked);
  };
  CHECK(stored("token_embedding", {8192, 256}, DType::Q8_0) == DType::Q8_0);
  CHECK(stored("layers.0.ffn.down.weight", {256, 768}, DType::Q4_0) == DType::Q4_0);
  CHECK(stored("layers.0.attn.feature_q.weight", {128, 256}, DType::Q8_0) == DType::Q8_0);
  CHECK(stored("layers.0.attn.feature_map.weight", {4, 32, 64}, DType::Q8_0) == DType::F16);
  CHECK(stored("layers.0.ffn.up.weight", {100, 40}, DType::Q8_0) == DType::F16);  // rows not whole blocks
  CHECK(stored("layers.0.ffn.up.bias", {100}, DType::Q8_0) == DType::F32);
  CHECK(stored("layers.0.attn.feature_map.bias", {4, 32}, DType::Q4_0) == DType::F32);
  CHECK(stored("layers.0.attn.feature_map.weight", {4, 32, 64}, DType::BF16) == DType::BF16);
}

#ifdef T2R_REFERENCE_MODELS

#include "session.h"

namespace {

using namespace t2r::test;

// Feeds prompt + reference continuation to the model packed at `dtype` and at f32: at every
// position the greedy choice must be the reference's, except where the f32 model's two best
// logits lie within `tie` of each other (a near tie that rounding the weights may decide either
// way; free-running greedy decoding diverges from there on).
void check_greedy(const std::string& name, DType dtype, float tie) {
  const Model& model = packed_reference_model(name, dtype);
  const Model& f32 = packed_reference_model(name, DType::F32);
  const int64_t V = model.hparams().vocab_size;
  for (const auto& item : reference_outputs(name).json.at("greedy").as_object()) {
    const std::string& prompt = item.first;  // not a structured binding: CAPTURE captures it
    const json::Value& expected = item.second;
    CAPTURE(prompt);
    const std::vector<int32_t> prompt_ids = ids_of(expected.at("prompt_ids"));
    const std::vector<int32_t> want = ids_of(expected.at("continuation_ids"));
    Session quantized(model), exact(f32);
    quantized.prefill(prompt_ids.data(), prompt_ids.size() - 1);
    exact.prefill(prompt_ids.data(), prompt_ids.size() - 1);
    int32_t token = prompt_ids.back();
    for (size_t i = 0; i < want.size(); ++i) {
      const float* logits = quantized.step(token);
      const int32_t choice = int32_t(std::max_element(logits, logits + V) - logits);
      const float* ref = exact.step(token);
      float second = -INFINITY;
      for (int64_t v = 0; v < V; ++v) {
        if (v != want[i]) second = std::max(second, ref[v]);
      }
      CAPTURE(i);
      if (ref[want[i]] - second >= tie) {
        CHECK(choice == want[i]);
      } else if (choice != want[i]) {
        MESSAGE(name << " at " << dtype_name(dtype) << ", '" << prompt << "' token " << i << ": a near tie ("
                     << ref[want[i]] - second << " logits at f32) went the other way");
      }
      token = want[i];
    }
  }
}

// The f32 pack reproduces the reference perplexity within 0.5% (test_reference_models.cpp), so
// the reference value stands for f32 here.
void report_quantized_perplexity(const std::string& name) {
  const ReferenceOutputs& ref = reference_outputs(name);
  const double f32 = ref.json.at("valid_slice_ppl").as_number();
  const double q8 = slice_perplexity(packed_reference_model(name, DType::Q8_0), ref.valid_ids);
  const double q4 = slice_perplexity(packed_reference_model(name, DType::Q4_0), ref.valid_ids);
  MESSAGE(name << ": valid_slice_ppl f32 " << f32 << ", q8_0 " << q8 << " (" << (q8 / f32 - 1) * 100 << "%), q4_0 "
               << q4 << " (" << (q4 / f32 - 1) * 100 << "%)");
  CHECK(std::fabs(q8 / f32 - 1) < 0.02);
  CHECK(q4 / f32 < 1.10);
  CHECK(q4 / f32 > 0.98);
}

}  // namespace

TEST_CASE("fairseq-t2r at q8_0: greedy choices match the reference but for near ties") {
  check_greedy("fairseq-t2r", DType::Q8_0, 0.05f);
}
TEST_CASE("llama-t2r at q8_0: greedy choices match the reference but for near ties") {
  check_greedy("llama-t2r", DType::Q8_0, 0.05f);
}

TEST_CASE("fairseq-softmax: perplexity at q8_0 and q4_0") { report_quantized_perplexity("fairseq-softmax"); }
TEST_CASE("fairseq-t2r: perplexity at q8_0 and q4_0") { report_quantized_perplexity("fairseq-t2r"); }
TEST_CASE("fairseq-elu: perplexity at q8_0 and q4_0") { report_quantized_perplexity("fairseq-elu"); }
TEST_CASE("llama-softmax: perplexity at q8_0 and q4_0") { report_quantized_perplexity("llama-softmax"); }
TEST_CASE("llama-t2r: perplexity at q8_0 and q4_0") { report_quantized_perplexity("llama-t2r"); }
TEST_CASE("llama-elu: perplexity at q8_0 and q4_0") { report_quantized_perplexity("llama-elu"); }

#endif
