// One importer per Hugging Face model_type, each in its own file (hf_<model_type>.cpp), on the
// shared helpers (hf_common, hf_tensors; the Llama-shaped ones also hf_rotary_decoder, hf_rotary). Adding a layout: write its file and
// add it to the table in hf_import.cpp.
#pragma once

#include <string>

#include "checkpoint_import.h"
#include "hf_config.h"
#include "lolcats_adapters.h"

namespace t2r {

ImportedModel import_hf_llama(HfConfig& config, const std::string& dir);
ImportedModel import_hf_lolcats(HfConfig& config, const std::string& dir, const LolcatsFiles& files);
ImportedModel import_hf_liger_mistral_gla(HfConfig& config, const std::string& dir);
// OpenLM (SUPRA): config.json and one torch pickle, pytorch_model.bin.
ImportedModel import_hf_openlm(HfConfig& config, const std::string& dir);
ImportedModel import_hf_mistral(HfConfig& config, const std::string& dir);
ImportedModel import_hf_qwen2(HfConfig& config, const std::string& dir);
ImportedModel import_hf_gpt2(HfConfig& config, const std::string& dir);

}  // namespace t2r
