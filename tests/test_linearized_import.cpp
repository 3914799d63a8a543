// Packing the linearized-LLM layouts refuses what t2r does not compute and broken adapter files,
// each by name; the LoLCATs adapters may come from t2r-pack's flags instead of the config's block;
// a model file's linear-attention keys that do not go together are refused at load.
#include <doctest/doctest.h>

#include "reference.h"

#ifdef T2R_REFERENCE_MODELS

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <algorithm>
#include <sstream>

#include "checkpoint_import.h"
#include "context.h"
#include "error.h"
#include "model_writer.h"
#include "test_support.h"

using namespace t2r;
using namespace t2r::test;
using t2r::test::heap_allocations;
namespace fs = std::filesystem;

namespace {

// A writable copy of a reference checkpoint; removed at the end of the test.
struct CheckpointCopy {
  fs::path dir;
  explicit CheckpointCopy(const std::string& name) {
    dir = fs::temp_directory_path() / ("t2r-linearized-" + name + "-" + std::to_string(getpid()));
    fs::remove_all(dir);
    fs::copy(reference_dir(name), dir, fs::copy_options::recursive);
    for (const auto& entry : fs::recursive_directory_iterator(dir)) {
      fs::permissions(entry.path(), fs::perms::owner_write, fs::perm_options::add);
    }
    fs::permissions(dir, fs::perms::owner_write, fs::perm_options::add);
  }
  ~CheckpointCopy() { fs::remove_all(dir); }
  std::string config() const {
    std::ifstream in(dir / "config.json");
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  // config.json with the first `from` replaced by `to`.
  void edit_config(const std::string& from, const std::string& to) const {
    std::string text = config();
    const size_t at = text.find(from);
    REQUIRE(at != std::string::npos);
    text.replace(at, from.size(), to);
    std::ofstream(dir / "config.json", std::ios::binary) << text;
  }
  std::string pack_error(const ImportOptions& options = {}) const {
    try {
      import_checkpoint(dir.string(), options);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }
};

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Two sequences, and batches of up to 80 rows (a prompt chunk past the 64-token window).
ContextOptions two_sequences() {
  ContextOptions options;
  options.max_sequences = 2;
  options.max_batch = 80;
  options.max_outputs = 80;
  return options;
}

// What packing a copy of reference `name` says when its config.json has `from` replaced by `to`.
std::string refusal(const std::string& name, const std::string& from, const std::string& to) {
  CheckpointCopy copy(name);
  copy.edit_config(from, to);
  return copy.pack_error();
}

}  // namespace

TEST_CASE("LoLCATs: a setting t2r does not compute is refused by name, with its value") {
  CHECK(contains(refusal("lolcats-llama3", "\"lolcats_llama_window_tk\"", "\"lolcats_llama_window_sw\""),
                 "lolcats.attention.attention_type \"lolcats_llama_window_sw\""));
  CHECK(contains(refusal("lolcats-llama3", "\"affine_attention_factors\": false", "\"affine_attention_factors\": true"),
                 "lolcats.attention.affine_attention_factors true"));
  CHECK(contains(refusal("lolcats-llama3", "\"r\": 8", "\"r\": 16"),
                 "lolcats.finetune.kwargs.r 16, but the LoRA tensors have rank 8"));
}

TEST_CASE("LoLCATs: missing or swapped adapter files are refused naming the file and tensor") {
  CheckpointCopy missing("lolcats-llama3");
  fs::remove(missing.dir / "ft-lora/model.pt");
  CHECK(contains(missing.pack_error(), "ft-lora/model.pt"));
  CheckpointCopy swapped("lolcats-llama3");
  fs::copy_file(swapped.dir / "distill/model.pt", swapped.dir / "ft-lora/model.pt", fs::copy_options::overwrite_existing);
  CHECK(contains(swapped.pack_error(), "no tensor 'layers.0.self_attn.q_proj.lora_A.weight'"));
  CheckpointCopy not_a_pickle("lolcats-llama3");
  std::ofstream(not_a_pickle.dir / "distill/model.pt", std::ios::binary) << "not a zip archive";
  CHECK(contains(not_a_pickle.pack_error(), "distill/model.pt"));
}

TEST_CASE("LoLCATs: adapters named by t2r-pack's flags pack the same model as the config's block") {
  CheckpointCopy copy("lolcats-llama3");
  const std::string config = copy.config();
  const size_t block = config.find(",\n  \"lolcats\"");
  REQUIRE(block != std::string::npos);
  std::ofstream(copy.dir / "config.json", std::ios::binary) << config.substr(0, block) + "\n}\n";
  CHECK(contains(copy.pack_error(), ""));  // without the block or flags: a plain Llama
  ImportOptions options;
  options.lolcats.distill = (copy.dir / "distill/model.pt").string();
  options.lolcats.lora = (copy.dir / "ft-lora/model.pt").string();
  const ImportedModel by_flags = import_checkpoint(copy.dir.string(), options);
  const ImportedModel by_block = import_checkpoint(reference_dir("lolcats-llama3"));
  REQUIRE(by_flags.tensors.size() == by_block.tensors.size());
  for (size_t i = 0; i < by_flags.tensors.size(); ++i) {
    CAPTURE(by_flags.tensors[i].name);
    CHECK(by_flags.tensors[i].name == by_block.tensors[i].name);
    CHECK(by_flags.tensors[i].read() == by_block.tensors[i].read());
  }
  REQUIRE(by_flags.notes.size() == 1);
  CHECK(contains(by_flags.notes[0], "window 64"));
  CHECK(contains(by_flags.notes[0], "LoRA rank 8 alpha 16"));
  // Flags on a layout that is not a Llama base.
  CheckpointCopy liger("liger-mistral-gla");
  CHECK(contains(liger.pack_error(options), "LoLCATs adapters need a Llama base"));
}

TEST_CASE("SUPRA: OpenLM settings t2r does not compute are refused by name") {
  CHECK(contains(refusal("supra-mistral", "\"use_retnet_slopes\": false", "\"use_retnet_slopes\": true"),
                 "\"use_retnet_slopes\": true"));
  CHECK(contains(refusal("supra-mistral", "\"linear_attn\"", "\"torch_attn\""),
                 "\"attn_name\": \"torch_attn\" (t2r reads \"linear_attn\")"));
  CheckpointCopy truncated("supra-mistral");
  fs::resize_file(truncated.dir / "pytorch_model.bin", 4096);
  CHECK(contains(truncated.pack_error(), "pytorch_model.bin"));
}

// The error loading `model`'s tensors again under its metadata with `edits` applied ("" if it loads).
std::string reloaded_error(const Model& model, const std::vector<std::pair<std::string, Metadata::Value>>& edits) {
  ModelWriter writer;
  writer.metadata() = model.file().metadata();
  for (const auto& [key, value] : edits) writer.metadata().set(key, value);
  for (const TensorInfo& t : model.file().tensors()) writer.add_stored_tensor(t);
  const std::string path = packed_reference_path("edited", DType::F32);
  writer.write(path);
  std::string error;
  try {
    Model::load(path);
  } catch (const Error& e) {
    error = e.what();
  }
  std::remove(path.c_str());
  return error;
}

TEST_CASE("linear-attention metadata that does not go together is refused at load by name") {
  const Model& liger = packed_reference_model("liger-mistral-gla", DType::F32);
  const auto liger_error = [&](const std::string& key, const std::string& value) {
    return reloaded_error(liger, {{key, value}});
  };
  CHECK(contains(liger_error("attention.readout", "normalized"),
                 "attention.window_mix = 'mean' needs attention.readout = 'plain'"));
  CHECK(contains(liger_error("attention.decay", "per-head"), "attention.state_per_kv_head needs"));
  CHECK(contains(liger_error("attention.window_mix", "sum"),
                 "attention.window_mix = 'sum' is not one of shared-normalizer, mean"));
  CHECK(contains(liger_error("attention.kind", "gla"), "attention.kind = 'gla' is not one of softmax, t2r, elu"));
  CHECK(contains(liger_error("attention.window_mix", "shared-normalizer"),
                 "attention.window_mix = 'shared-normalizer' needs attention.readout = 'normalized'"));
  // Metadata alone must not make the kernels read past a buffer: a gate per key dimension needs r = d_h,
  // and a window folding its leaving keys into S maps them with hedgehog's key map.
  const Model& lolcats = packed_reference_model("lolcats-llama3", DType::F32);
  CHECK(contains(reloaded_error(lolcats, {{"attention.decay", std::string("key-gate")},
                                          {"attention.gate_temperature", 16.0},
                                          {"attention.feature_dim", int64_t(32)}}),
                 "attention.decay = 'key-gate' needs 16 features per head"));
  CHECK(contains(reloaded_error(lolcats, {{"attention.kind", std::string("elu")}, {"attention.denominator_floor", 1e-6}}),
                 "attention.window_mix = 'shared-normalizer' needs the hedgehog feature map"));
}

TEST_CASE("linearized LLMs: a saved state, window included, continues exactly where it was saved") {
  for (const std::string name : {"lolcats-llama3", "supra-mistral", "liger-mistral-gla"}) {
    CAPTURE(name);
    const Model& model = packed_reference_model(name, DType::F32);
    Context context(model, two_sequences());
    std::vector<BatchRow> rows(80);
    for (size_t i = 0; i < 80; ++i) rows[i] = {int32_t(i + 10), 0, int64_t(i), false};
    context.decode(rows.data(), 80);  // past the 64-token window
    std::vector<unsigned char> state(context.state_size(0));
    context.save(0, state.data(), state.size());
    context.restore(1, state.data(), state.size());
    const size_t V = size_t(model.hparams().vocab_size);
    const BatchRow next[2] = {{7, 0, 80, true}, {7, 1, 80, true}};
    context.decode(next, 2);
    CHECK(std::equal(context.logits(0), context.logits(0) + V, context.logits(1)));
  }
}

TEST_CASE("linearized LLMs decode and prefill without allocating") {
  for (const std::string name : {"lolcats-llama3", "supra-mistral", "liger-mistral-gla"}) {
    CAPTURE(name);
    const Model& model = packed_reference_model(name, DType::F32);
    Context context(model, two_sequences());
    std::vector<BatchRow> rows(80);
    const size_t before = heap_allocations();
    for (size_t i = 0; i < 80; ++i) rows[i] = {int32_t(i + 10), 0, int64_t(i), true};
    context.decode(rows.data(), 80);  // a prompt chunk across the window's edge
    for (int step = 0; step < 70; ++step) {
      rows[0] = {int32_t(step + 3), 0, context.position(0), true};
      rows[1] = {int32_t(step + 5), 1, context.position(1), true};
      context.decode(rows.data(), 2);
    }
    CHECK(heap_allocations() - before == 0);
  }
}

#endif
