// Hugging Face checkpoints (config.json + safetensors, single or sharded): the importer of the
// config's model_type, from the one table of supported layouts.
#include "checkpoint_import.h"
#include "hf_config.h"
#include "hf_layouts.h"

namespace t2r {
namespace {

struct Layout {
  const char* model_type;
  ImportedModel (*import)(HfConfig& config, const std::string& dir);
};

const Layout kLayouts[] = {
    {"llama", import_hf_llama},
    {"mistral", import_hf_mistral},
    {"qwen2", import_hf_qwen2},
    {"gpt2", import_hf_gpt2},
};

// LLMs linearized after pretraining, recognized by their own model types (README, "Linearized
// LLMs"); a refusal lists the transformer layouts above, whose names users try.
const Layout kLinearizedLayouts[] = {
    {"liger_mistral_gla", import_hf_liger_mistral_gla},
    {"openlm", import_hf_openlm},
};

}  // namespace

ImportedModel import_huggingface(const std::string& dir, const ImportOptions& options) {
  HfConfig config(dir + "/config.json");
  const json::Value& type = config.at("model_type");
  if (type.as_string() == "llama" && has_lolcats(config, options.lolcats)) {
    return import_hf_lolcats(config, dir, options.lolcats);
  }
  if (!options.lolcats.distill.empty() || !options.lolcats.lora.empty()) {
    config.unsupported("LoLCATs adapters need a Llama base (model_type \"llama\"), not " + json_text(type));
  }
  for (const Layout& layout : kLinearizedLayouts) {
    if (type.as_string() == layout.model_type) return layout.import(config, dir);
  }
  std::string names;
  for (const Layout& layout : kLayouts) {
    if (type.as_string() == layout.model_type) return layout.import(config, dir);
    names += std::string(names.empty() ? "" : ", ") + "\"" + layout.model_type + "\"";
  }
  config.unsupported("\"model_type\": " + json_text(type) + " (t2r reads " + names + ")");
}

}  // namespace t2r
