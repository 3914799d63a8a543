// The Vulkan context on the forms the Hugging Face layouts add (tests/fixtures, float64 oracle
// logits): yarn's rotary attention factor on softmax attention, q, k, v biases, a T2R qwen2, and a
// sliding window as long as the context; and the refusals at context creation of what its shaders
// do not compute (a context beyond the window, yarn's factor on linear attention, GPT-2's learned
// positions and gelu_new).
#include <doctest/doctest.h>

#ifdef T2R_VULKAN

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "checkpoint_import.h"
#include "error.h"
#include "json.h"
#include "test_vulkan_support.h"
#include "vulkan/context.h"

using namespace t2r;
using namespace t2r::test;
namespace fs = std::filesystem;

namespace {

const fs::path kFixtures = fs::path(T2R_SOURCE_DIR) / "tests/fixtures";

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The fixture packed at f32, its default rotary replaced by `rope_parameters` when given.
std::unique_ptr<Model> pack(const std::string& fixture, const std::string& rope_parameters = "") {
  const fs::path dir = fs::temp_directory_path() / ("t2r-vulkan-hf-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::copy(kFixtures / fixture, dir);
  if (!rope_parameters.empty()) {
    std::string config = read_text(dir / "config.json");
    const size_t at = config.find("\"rope_parameters\": {"), end = config.find('}', at);
    config.replace(at, end + 1 - at, "\"rope_parameters\": " + rope_parameters);
    std::ofstream(dir / "config.json", std::ios::binary) << config;
  }
  const fs::path packed = dir / "model.t2r";
  write_model(import_checkpoint(dir.string()), DType::F32, packed.string());
  auto model = Model::load(packed.string());
  fs::remove_all(dir);
  return model;
}

vulkan::ContextOptions options(int64_t max_context) {
  vulkan::ContextOptions o;
  o.max_sequences = 1;
  o.max_batch = 1;
  o.max_context = max_context;
  return o;
}

// The first `count` rows of the oracle's logits, one token at a time on the device.
void check_logits(const Model& model, const json::Value& expected, const json::Value& rows, size_t count) {
  auto gpu = open_validated<vulkan::Context>(model, options(int64_t(count)));
  if (!gpu) return;
  double max_diff = 0;
  for (size_t t = 0; t < count; ++t) {
    const BatchRow row{int32_t(expected.at("input_ids").as_array()[t].as_int()), 0, int64_t(t), true};
    const float* logits = gpu->decode(&row, 1);
    const auto& want = rows.as_array()[t].as_array();
    for (size_t v = 0; v < want.size(); ++v) max_diff = std::max(max_diff, std::fabs(logits[v] - want[v].as_number()));
  }
  MESSAGE("max |logit diff| against the float64 oracle: " << max_diff);
  CHECK(max_diff < 1e-3);
  check_validation(gpu->device());
}

std::string refusal(const Model& model, int64_t max_context) {
  try {
    vulkan::Context context(model, options(max_context));
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("vulkan context: yarn, q k v biases, a T2R qwen2 and a sliding window give the oracle's logits") {
  const json::Value rope = json::parse(read_text(kFixtures / "llama-transformers5/expected_rope_logits.json"));
  for (const json::Value& c : rope.at("cases").as_array()) {
    CAPTURE(c.at("rope_parameters").as_string());
    check_logits(*pack("llama-transformers5", c.at("rope_parameters").as_string()), rope, c.at("logits"), 12);
  }
  for (const std::string name : {"qwen2-qkv-bias", "qwen2-t2r", "mistral-t2r", "mistral-sliding-window"}) {
    CAPTURE(name);
    const json::Value expected = json::parse(read_text(kFixtures / name / "expected_logits.json"));
    const size_t rows = name == "mistral-sliding-window" ? 5 : 12;  // within the window
    check_logits(*pack(name), expected, expected.at("logits"), rows);
  }
}

TEST_CASE("vulkan context: a context beyond the sliding window, yarn on linear attention and gpt2 are refused") {
  if (vulkan::list_devices().empty()) return;
  CHECK(refusal(*pack("mistral-sliding-window"), 6) ==
        "the Vulkan backend does not compute sliding windows: a context of 6 positions is longer than the model's "
        "window of 5; choose a max context of at most 5 or the CPU backend");
  CHECK(refusal(*pack("gpt2"), 8) ==
        "the Vulkan backend does not compute learned positions (a GPT-2 layout); use the CPU backend");
  CHECK(refusal(*pack("qwen2-t2r", R"({"rope_theta": 10000.0, "rope_type": "yarn", "factor": 4.0})"), 8) ==
        "the Vulkan backend cannot run linear attention with a rotary attention factor (yarn, 1.138629); use the CPU "
        "backend");
}

#endif  // T2R_VULKAN
