// Hugging Face config.json: every key that changes the math is read or refused by name. Runs on the
// committed fixture tests/fixtures/llama-transformers5 (see make_llama_transformers5.py): a tiny Llama
// as transformers 5 saves it, with logits computed by an independent float64 implementation.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "checkpoint_import.h"
#include "error.h"
#include "json.h"
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

// A copy of the fixture whose config.json can be rewritten; removed at the end of the test.
struct FixtureCopy {
  fs::path dir;
  FixtureCopy() {
    dir = fs::temp_directory_path() / ("t2r-hf-config-" + std::to_string(getpid()));
    fs::remove_all(dir);
    fs::copy(kFixture, dir);
  }
  ~FixtureCopy() { fs::remove_all(dir); }
  void set_config(const std::string& text) const { std::ofstream(dir / "config.json", std::ios::binary) << text; }
  // The transformers-5 config with `key` set to the JSON `value` (added, or replacing the old one).
  void set_config_key(const std::string& key, const std::string& value) const {
    std::string text = read_text(kFixture / "config.json");
    const size_t at = text.find("\n  \"" + key + "\":");
    if (at != std::string::npos) {  // up to the next top-level key (a value may span lines)
      const size_t next = std::min(text.find("\n  \"", at + 1), text.rfind("\n}"));
      text.erase(at, next - at);
      if (text[at - 1] == ',' && text.compare(at, 2, "\n}") == 0) text.erase(at - 1, 1);
    }
    text.insert(text.find('{') + 1, "\n  \"" + key + "\": " + value + ",");
    set_config(text);
  }
  std::string pack_error() const {
    try {
      import_checkpoint(dir.string());
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }
};

}  // namespace

TEST_CASE("a Llama saved by transformers 5 (rope_parameters, shards, untied lm_head) computes its logits") {
  const fs::path packed = fs::temp_directory_path() / ("t2r-hf5-" + std::to_string(getpid()) + ".t2r");
  write_model(import_checkpoint(kFixture.string()), DType::F32, packed.string());
  auto model = Model::load(packed.string());
  fs::remove(packed);
  CHECK(model->hparams().rope_theta == 50000.0);

  const json::Value expected = json::parse(read_text(kFixture / "expected_logits.json"));
  const auto& ids = expected.at("input_ids").as_array();
  const auto& rows = expected.at("logits").as_array();
  Session session(*model);
  double max_diff = 0;
  for (size_t t = 0; t < ids.size(); ++t) {
    const float* logits = session.step(int32_t(ids[t].as_int()));
    const auto& want = rows[t].as_array();
    REQUIRE(want.size() == size_t(model->hparams().vocab_size));
    for (size_t v = 0; v < want.size(); ++v) {
      max_diff = std::max(max_diff, std::fabs(double(logits[v]) - want[v].as_number()));
    }
  }
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
  copy.set_config_key("rope_parameters", R"({"rope_theta": 50000.0, "rope_type": "yarn", "factor": 4.0})");
  CHECK(copy.pack_error() == prefix + "\"rope_parameters\".\"rope_type\": \"yarn\"");
  copy.set_config_key("rope_scaling", R"({"type": "linear", "factor": 2.0})");
  CHECK(copy.pack_error() == prefix + "\"rope_scaling\": {\"type\": \"linear\", \"factor\": 2}");
  copy.set_config_key("rope_theta", "10000.0");
  CHECK(copy.pack_error() ==
        prefix + "\"rope_theta\": 10000 and \"rope_parameters\".rope_theta 50000 disagree");
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
