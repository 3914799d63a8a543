// model_type "llama": the rotary decoder, with biases on all four attention projections when
// attention_bias is set. Llama has no sliding window; mlp_bias is not computed. With LoLCATs
// adapters (lolcats_adapters.h) the base's attention becomes their linearized attention.
#include "hf_layouts.h"
#include "hf_rotary_decoder.h"
#include "lolcats_adapters.h"

namespace t2r {

namespace {
RotaryDecoder read_llama(HfConfig& config) {
  RotaryDecoder decoder = read_rotary_decoder(config, "llama");
  decoder.qkv_bias = decoder.o_bias = config.flag("attention_bias", false);
  config.require_absent_or("mlp_bias", json::Value::boolean(false));
  config.require_absent_or("sliding_window", json::Value());
  config.require_absent_or("use_sliding_window", json::Value::boolean(false));
  return decoder;
}
}  // namespace

ImportedModel import_hf_llama(HfConfig& config, const std::string& dir) {
  return build_rotary_decoder(read_llama(config), config, dir);
}

ImportedModel import_hf_lolcats(HfConfig& config, const std::string& dir, const LolcatsFiles& files) {
  RotaryDecoder decoder = read_llama(config);
  if (decoder.attention.is_linear()) config.unsupported("a \"t2r\" block together with LoLCATs adapters");
  std::string used;
  read_lolcats(config, files, dir, decoder, used);
  ImportedModel model = build_rotary_decoder(decoder, config, dir);
  model.notes.push_back(used);
  return model;
}

}  // namespace t2r
