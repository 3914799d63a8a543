// Hugging Face config.json: every key that changes the math is read or refused by name. Runs on the
// committed fixtures: tests/fixtures/llama-transformers5 (see make_llama_transformers5.py), a tiny
// Llama as transformers 5 saves it, and the other layouts of make_rotary_layouts.py, each with
// logits computed by an independent float64 implementation.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "checkpoint_import.h"
#include "test_support.h"
#include "error.h"
#include "json.h"
#include "hyperparams.h"
#include "schema.h"
#include "session.h"

using namespace t2r;
namespace fs = std::filesystem;

namespace {

const fs::path kFixture = fs::path(T2R_SOURCE_DIR) / "tests/fixtures/llama-transformers5";

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A copy of a fixture whose config.json can be rewritten; removed at the end of the test.
struct FixtureCopy {
  fs::path source, dir;
  explicit FixtureCopy(const fs::path& fixture = kFixture) : source(fixture) {
    dir = fs::temp_directory_path() / ("t2r-hf-config-" + std::to_string(getpid()));
    fs::remove_all(dir);
    fs::copy(source, dir);
  }
  ~FixtureCopy() { fs::remove_all(dir); }
  void set_config(const std::string& text) const { std::ofstream(dir / "config.json", std::ios::binary) << text; }
  // The fixture's `base` config with `key` set to the JSON `value` (added, or replacing the old one).
  void set_config_key(const std::string& key, const std::string& value,
                      const std::string& base = "config.json") const {
    std::string text = read_text(source / base);
    const size_t at = text.find("\n  \"" + key + "\":");
    if (at != std::string::npos) {  // up to the next top-level key (a value may span lines)
      const size_t next = std::min(text.find("\n  \"", at + 1), text.rfind("\n}"));
      text.erase(at, next - at);
      if (text[at - 1] == ',' && text.compare(at, 2, "\n}") == 0) text.erase(at - 1, 1);
    }
    text.insert(text.find('{') + 1, "\n  \"" + key + "\": " + value + ",");
    set_config(text);
  }
  std::string pack_error() const { return t2r::test::import_error(dir.string()); }
};

}  // namespace

// The logits of `ids` from the packed model, against the oracle's rows; returns the largest difference.
double max_logit_diff(const Model& model, const json::Value& ids, const json::Value& rows) {
  Session session(model);
  double max_diff = 0;
  for (size_t t = 0; t < ids.as_array().size(); ++t) {
    const float* logits = session.step(int32_t(ids.as_array()[t].as_int()));
    const auto& want = rows.as_array()[t].as_array();
    REQUIRE(want.size() == size_t(model.hparams().vocab_size));
    for (size_t v = 0; v < want.size(); ++v) {
      max_diff = std::max(max_diff, std::fabs(double(logits[v]) - want[v].as_number()));
    }
  }
  return max_diff;
}

TEST_CASE("a Llama saved by transformers 5 (rope_parameters, shards, untied lm_head) computes its logits") {
  const fs::path packed = fs::temp_directory_path() / ("t2r-hf5-" + std::to_string(getpid()) + ".t2r");
  write_model(import_checkpoint(kFixture.string()), DType::F32, packed.string());
  auto model = Model::load(packed.string());
  fs::remove(packed);
  CHECK(model->hparams().rotary.theta == 50000.0);

  const json::Value expected = json::parse(read_text(kFixture / "expected_logits.json"));
  const double max_diff = max_logit_diff(*model, expected.at("input_ids"), expected.at("logits"));
  MESSAGE("max |logit diff| against the float64 oracle: " << max_diff);
  CHECK(max_diff < 1e-4);
}

TEST_CASE("the transformers 5 and the older config forms give identical model files") {
  FixtureCopy copy;
  const fs::path a = copy.dir / "a.t2r", b = copy.dir / "b.t2r";
  write_model(import_checkpoint(copy.dir.string()), DType::F16, a.string());
  copy.set_config(read_text(kFixture / "config.transformers4.json"));
  write_model(import_checkpoint(copy.dir.string()), DType::F16, b.string());
  CHECK(read_text(a) == read_text(b));
}

TEST_CASE("config keys that would change the math are refused by name, never defaulted") {
  FixtureCopy copy;
  const std::string prefix = (copy.dir / "config.json").string() + ": unsupported model: ";
  copy.set_config_key("rope_theta", "10000.0");
  CHECK(copy.pack_error() ==
        prefix + "\"rope_theta\": 10000 and \"rope_parameters\".\"rope_theta\" 50000 disagree");
  copy.set_config_key("sliding_window", "4096");
  CHECK(copy.pack_error() == prefix + "\"sliding_window\": 4096");
  copy.set_config_key("partial_rotary_factor", "0.5");
  CHECK(copy.pack_error() == prefix + "\"partial_rotary_factor\": 0.5");
  copy.set_config_key("attention_logit_softcapping", "50.0");
  CHECK(copy.pack_error() == prefix + "\"attention_logit_softcapping\": 50");
  copy.set_config_key("dtype", "\"float8_e4m3fn\"");
  CHECK(copy.pack_error() == prefix + "\"dtype\": \"float8_e4m3fn\"");
  copy.set_config_key("qk_layernorm", "true");
  CHECK(copy.pack_error() == prefix + "\"qk_layernorm\": true is not understood (a key that may change the math "
                                      "is refused rather than guessed)");
  // Keys that only describe training or generation are ignored on purpose.
  copy.set_config_key("temperature", "0.7");
  CHECK(copy.pack_error() == "");
  copy.set_config_key("rope_scaling", "null");
  CHECK(copy.pack_error() == "");
}

TEST_CASE("rotary scaling (linear, llama3, yarn) computes transformers' logits in either config form") {
  FixtureCopy copy;
  const json::Value expected = json::parse(read_text(kFixture / "expected_rope_logits.json"));
  const fs::path current = copy.dir / "current.t2r", older = copy.dir / "older.t2r";
  for (const json::Value& c : expected.at("cases").as_array()) {
    const std::string parameters = c.at("rope_parameters").as_string();
    CAPTURE(parameters);
    copy.set_config_key("rope_parameters", parameters);
    write_model(import_checkpoint(copy.dir.string()), DType::F32, current.string());
    auto model = Model::load(current.string());
    CHECK(model->hparams().rotary.scaling != RotaryScaling::None);
    const double max_diff = max_logit_diff(*model, expected.at("input_ids"), c.at("logits"));
    MESSAGE("max |logit diff| against the float64 oracle: " << max_diff);
    CHECK(max_diff < 1e-4);

    // The older form: top-level rope_theta (already in that config) and rope_scaling keyed "type".
    std::string scaling = parameters;
    scaling.replace(scaling.find("\"rope_type\""), 11, "\"type\"");
    scaling.erase(scaling.find(", \"rope_theta\""));
    scaling += "}";
    copy.set_config_key("rope_scaling", scaling, "config.transformers4.json");
    write_model(import_checkpoint(copy.dir.string()), DType::F32, older.string());
    CHECK(read_text(current) == read_text(older));
  }
}

TEST_CASE("rotary types and parameters t2r does not compute are refused by name") {
  FixtureCopy copy;
  const std::string prefix = (copy.dir / "config.json").string() + ": unsupported model: ";
  const auto refusal = [&](const std::string& parameters) {
    copy.set_config_key("rope_parameters", parameters);
    return copy.pack_error();
  };
  const std::string computed = " (t2r computes default, linear, llama3 and yarn)";
  CHECK(refusal(R"({"rope_theta": 50000.0, "rope_type": "dynamic", "factor": 2.0})") ==
        prefix + "\"rope_parameters\".\"rope_type\": \"dynamic\"" + computed);
  CHECK(refusal(R"({"rope_theta": 50000.0, "rope_type": "longrope", "short_factor": [1], "long_factor": [2]})") ==
        prefix + "\"rope_parameters\".\"rope_type\": \"longrope\"" + computed);
  CHECK(refusal(R"({"rope_theta": 50000.0, "rope_type": "su"})") ==
        prefix + "\"rope_parameters\".\"rope_type\": \"su\"" + computed);
  CHECK(refusal(R"({"rope_theta": 50000.0, "rope_type": "linear"})") == prefix + "no \"rope_parameters\".\"factor\"");
  CHECK(refusal(R"({"rope_theta": 50000.0, "rope_type": "linear", "factor": -2})") ==
        prefix + "\"rope_parameters\".\"factor\": -2");
  CHECK(refusal(R"({"rope_theta": 50000.0, "rope_type": "linear", "factor": 2, "low_freq_factor": 1})") ==
        prefix + "\"rope_parameters\".\"low_freq_factor\": 1 is not a parameter of this rotary type");
  CHECK(refusal(R"({"rope_theta": 50000.0, "rope_type": "default", "factor": 2})") ==
        prefix + "\"rope_parameters\".\"factor\": 2 is not a parameter of this rotary type");
  CHECK(refusal(R"({"rope_theta": 50000.0, "rope_type": "llama3", "factor": 8, "low_freq_factor": 4,
                    "high_freq_factor": 1, "original_max_position_embeddings": 8192})") ==
        prefix + "\"rope_parameters\".\"high_freq_factor\": 1 must exceed \"rope_parameters\".\"low_freq_factor\": 4");
  CHECK(refusal(R"({"rope_theta": 50000.0, "rope_type": "yarn", "factor": 4, "original_max_position_embeddings": 1024})") ==
        prefix + "\"rope_parameters\".\"factor\": 4 disagrees with max_position_embeddings / "
                 "\"rope_parameters\".\"original_max_position_embeddings\" = 1 (transformers uses the latter)");
  CHECK(refusal(R"({"rope_theta": 50000.0, "rope_type": "yarn", "factor": 4, "original_max_position_embeddings": 256.5})") ==
        prefix + "\"rope_parameters\".\"original_max_position_embeddings\": 256.5");
  CHECK(refusal(R"({"rope_theta": 50000.0, "rope_type": "linear", "type": "yarn", "factor": 2})") ==
        prefix + "\"rope_parameters\".\"rope_type\": \"linear\" and \"rope_parameters\".\"type\": \"yarn\" disagree");
  CHECK(refusal(R"({"rope_theta": 50000.0, "partial_rotary_factor": 0.5})") ==
        prefix + "\"rope_parameters\".\"partial_rotary_factor\": 0.5");
  CHECK(refusal(R"({"rope_theta": -1})") == prefix + "rope_theta -1");

  // The older form: the same checks under its own name, and never both forms at once.
  copy.set_config_key("rope_scaling", R"({"type": "dynamic", "factor": 2.0})", "config.transformers4.json");
  CHECK(copy.pack_error() == prefix + "\"rope_scaling\".\"type\": \"dynamic\"" + computed);
  copy.set_config_key("rope_scaling", R"({"rope_type": "linear", "factor": 2.0})");
  CHECK(copy.pack_error() == prefix + "both \"rope_scaling\": {\"rope_type\": \"linear\", \"factor\": 2} and "
                                      "\"rope_parameters\": {\"rope_theta\": 50000, \"rope_type\": \"default\"} "
                                      "(one form or the other)");
}

TEST_CASE("mistral (sliding window), qwen2 (q, k, v biases), gpt2 and their t2r forms compute their logits") {
  for (const std::string name :
       {"mistral-sliding-window", "mistral-t2r", "qwen2-qkv-bias", "qwen2-t2r", "gpt2", "gpt2-t2r"}) {
    CAPTURE(name);
    const fs::path fixture = fs::path(T2R_SOURCE_DIR) / "tests/fixtures" / name;
    const fs::path packed = fs::temp_directory_path() / ("t2r-hf-layout-" + std::to_string(getpid()) + ".t2r");
    write_model(import_checkpoint(fixture.string()), DType::F32, packed.string());
    auto model = Model::load(packed.string());
    fs::remove(packed);
    const json::Value expected = json::parse(read_text(fixture / "expected_logits.json"));
    const double max_diff = max_logit_diff(*model, expected.at("input_ids"), expected.at("logits"));
    MESSAGE(name << ": max |logit diff| against the float64 oracle: " << max_diff);
    // gpt2-t2r's small T2R denominators amplify rounding: the oracle itself, evaluated in float32,
    // is 3.5e-4 away from its float64 logits.
    CHECK(max_diff < (name == "gpt2-t2r" ? 5e-4 : 1e-4));
  }
}

TEST_CASE("a layout's keys are read or refused by name") {
  const fs::path fixtures = fs::path(T2R_SOURCE_DIR) / "tests/fixtures";
  {
    FixtureCopy copy(fixtures / "mistral-sliding-window");
    const std::string prefix = (copy.dir / "config.json").string() + ": unsupported model: ";
    copy.set_config_key("sliding_window", "0");
    CHECK(copy.pack_error() == prefix + "\"sliding_window\": 0");
    copy.set_config_key("attention_bias", "true");  // not a MistralConfig key
    CHECK(copy.pack_error().find(prefix + "\"attention_bias\": true is not understood") == 0);
    copy.set_config_key("sliding_window", "null");
    CHECK(copy.pack_error() == "");
  }
  {
    FixtureCopy copy(fixtures / "qwen2-qkv-bias");
    const std::string prefix = (copy.dir / "config.json").string() + ": unsupported model: ";
    copy.set_config_key("use_sliding_window", "true");
    CHECK(copy.pack_error() == prefix + "\"use_sliding_window\": true");
    copy.set_config_key("layer_types", R"(["full_attention", "sliding_attention"])");
    CHECK(copy.pack_error() == prefix + "\"layer_types\": [\"full_attention\", \"sliding_attention\"]");
    copy.set_config_key("layer_types", R"(["full_attention", "full_attention"])");
    CHECK(copy.pack_error() == "");
    copy.set_config_key("tie_word_embeddings", "false");  // then lm_head.weight must exist
    CHECK(copy.pack_error() == "checkpoint has no tensor 'lm_head.weight'");
  }
  {
    FixtureCopy copy;
    const std::string prefix = (copy.dir / "config.json").string() + ": unsupported model: ";
    copy.set_config_key("model_type", "\"gpt_neox\"");
    CHECK(copy.pack_error() == prefix + "\"model_type\": \"gpt_neox\" (t2r reads \"llama\", \"mistral\", \"qwen2\", \"gpt2\")");
    copy.set_config_key("mlp_bias", "true");
    CHECK(copy.pack_error() == prefix + "\"mlp_bias\": true");
    copy.set_config_key("attention_bias", "true");  // the fixture has no biases to read
    CHECK(copy.pack_error() == "checkpoint has no tensor 'model.layers.0.self_attn.q_proj.bias'");
    copy.set_config_key("hidden_act", "\"gelu\"");
    CHECK(copy.pack_error() == prefix + "\"hidden_act\": \"gelu\"");
    copy.set_config_key("use_sliding_window", "true");
    CHECK(copy.pack_error() == prefix + "\"use_sliding_window\": true");
    copy.set_config_key("final_logit_softcapping", "30.0");
    CHECK(copy.pack_error() == prefix + "\"final_logit_softcapping\": 30");
    copy.set_config_key("torch_dtype", "\"int8\"");
    CHECK(copy.pack_error() == prefix + "\"torch_dtype\": \"int8\"");
    copy.set_config_key("max_window_layers", "2");  // a Qwen2 key: unknown to Llama
    CHECK(copy.pack_error().find(prefix + "\"max_window_layers\": 2 is not understood") == 0);
    copy.set_config_key("head_dim", "6");  // read: the projections then have the wrong shape
    CHECK(copy.pack_error().find("has an unexpected shape") != std::string::npos);
    copy.set_config_key("head_dim", "7");
    CHECK(copy.pack_error() == prefix + "head_dim must be positive and even");
  }
}

TEST_CASE("rms_norm_eps, tie_word_embeddings and head_dim are read into the model") {
  FixtureCopy copy(fs::path(T2R_SOURCE_DIR) / "tests/fixtures/qwen2-qkv-bias");
  copy.set_config_key("rms_norm_eps", "0.001");
  const ImportedModel m = import_checkpoint(copy.dir.string());
  const Hyperparams hp = Hyperparams::from_metadata(m.metadata);
  CHECK(hp.norm_eps == doctest::Approx(0.001));
  CHECK(hp.head_dim == 8);
  CHECK(hp.architecture == "qwen2");
  bool has_output = false, has_q_bias = false;
  for (const ImportedTensor& t : m.tensors) {
    has_output |= t.name == schema::kOutput;
    has_q_bias |= t.name == schema::bias(schema::layer(0, schema::kAttnQ));
  }
  CHECK_FALSE(has_output);  // tied: the output is the embedding
  CHECK(has_q_bias);
}

TEST_CASE("a sliding window is read into every softmax layer, and changes the logits past it") {
  FixtureCopy copy(fs::path(T2R_SOURCE_DIR) / "tests/fixtures/mistral-sliding-window");
  const fs::path packed = copy.dir / "model.t2r";
  write_model(import_checkpoint(copy.dir.string()), DType::F32, packed.string());
  CHECK(Model::load(packed.string())->hparams().attention(1).window == 5);
  // Without the window the first five positions keep the oracle's logits and the later ones do not.
  copy.set_config_key("sliding_window", "null");
  write_model(import_checkpoint(copy.dir.string()), DType::F32, packed.string());
  auto full = Model::load(packed.string());
  CHECK(full->hparams().attention(0).window == 0);
  const json::Value expected = json::parse(read_text(copy.source / "expected_logits.json"));
  const auto& ids = expected.at("input_ids").as_array();
  const auto& rows = expected.at("logits").as_array();
  CHECK(max_logit_diff(*full, json::Value::array({ids.begin(), ids.begin() + 5}),
                       json::Value::array({rows.begin(), rows.begin() + 5})) < 1e-4);
  CHECK(max_logit_diff(*full, expected.at("input_ids"), expected.at("logits")) > 1e-2);
}

TEST_CASE("a checkpoint without tokenizer files packs as an ids-only model with its logits and eos") {
  FixtureCopy copy;
  fs::remove(copy.dir / "tokenizer.json");
  const ImportedModel imported = import_checkpoint(copy.dir.string());
  REQUIRE(imported.warnings.size() == 1);
  CHECK(imported.warnings[0].find("tokenizer.json is missing: the model is ids-only") != std::string::npos);
  const fs::path packed = copy.dir / "model.t2r";
  write_model(imported, DType::F32, packed.string());
  auto model = Model::load(packed.string());
  CHECK_FALSE(model->has_tokenizer());
  CHECK(model->eos_id() == 256);
  CHECK_THROWS_WITH_AS(model->tokenizer(), doctest::Contains("this model has no tokenizer"), Error);
  const json::Value expected = json::parse(read_text(kFixture / "expected_logits.json"));
  CHECK(max_logit_diff(*model, expected.at("input_ids"), expected.at("logits")) < 1e-4);
}

TEST_CASE("gpt2: its keys are read or refused by name; learned positions end the context") {
  FixtureCopy copy(fs::path(T2R_SOURCE_DIR) / "tests/fixtures/gpt2");
  const std::string prefix = (copy.dir / "config.json").string() + ": unsupported model: ";
  copy.set_config_key("activation_function", "\"gelu\"");
  CHECK(copy.pack_error() == prefix + "\"activation_function\": \"gelu\" (t2r computes gelu_new)");
  copy.set_config_key("scale_attn_by_inverse_layer_idx", "true");
  CHECK(copy.pack_error() == prefix + "\"scale_attn_by_inverse_layer_idx\": true");
  copy.set_config_key("scale_attn_weights", "false");
  CHECK(copy.pack_error() == prefix + "\"scale_attn_weights\": false");
  copy.set_config_key("add_cross_attention", "true");
  CHECK(copy.pack_error() == prefix + "\"add_cross_attention\": true");
  copy.set_config_key("n_ctx", "64");
  CHECK(copy.pack_error() == prefix + "\"n_ctx\": 64 differs from \"n_positions\": 32");
  copy.set_config_key("tie_word_embeddings", "false");
  CHECK(copy.pack_error() == "checkpoint has no tensor 'lm_head.weight'");
  copy.set_config_key("layer_norm_epsilon", "0.001");
  const Hyperparams hp = Hyperparams::from_metadata(import_checkpoint(copy.dir.string()).metadata);
  CHECK(hp.norm_eps == doctest::Approx(0.001));
  CHECK(hp.positions == PositionKind::Learned);
  CHECK(hp.ffn == FfnKind::GeluTanh);
  CHECK(hp.ffn_dim == 128);  // n_inner null: 4 d

  const fs::path packed = copy.dir / "model.t2r";
  write_model(import_checkpoint(copy.dir.string()), DType::Q8_0, packed.string());
  auto model = Model::load(packed.string());
  CHECK(model->file().find(schema::kPositionEmbedding)->dtype == DType::F32);  // added as stored
  SessionOptions too_long;
  too_long.max_context = 33;
  CHECK_THROWS_WITH_AS(Session(*model, too_long), "a context of 33 positions is longer than the model's 32 learned positions",
                       Error);

  // The T2R form has no KV cache to end its context: its positions stop at the table.
  const fs::path linear = copy.dir / "t2r.t2r";
  write_model(import_checkpoint((fs::path(T2R_SOURCE_DIR) / "tests/fixtures/gpt2-t2r").string()), DType::F32,
              linear.string());
  auto t2r_model = Model::load(linear.string());
  Session session(*t2r_model);
  for (int i = 0; i < 32; ++i) session.step(7);
  CHECK_THROWS_WITH_AS(session.step(7), "position 32 is beyond the model's 32 learned positions; reset the sequence", Error);
  Session prompt(*t2r_model);
  const std::vector<int32_t> ids(33, 7);
  CHECK_THROWS_WITH_AS(prompt.prefill(ids.data(), ids.size()),
                       "position 32 is beyond the model's 32 learned positions; reset the sequence", Error);
}
