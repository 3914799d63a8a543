// model_type "llama": the rotary decoder, with biases on all four attention projections when
// attention_bias is set. Llama has no sliding window; mlp_bias is not computed.
#include "hf_layouts.h"
#include "hf_rotary_decoder.h"

namespace t2r {

ImportedModel import_hf_llama(HfConfig& config, const std::string& dir) {
  RotaryDecoder decoder = read_rotary_decoder(config, "llama");
  decoder.qkv_bias = decoder.o_bias = config.flag("attention_bias", false);
  config.require_absent_or("mlp_bias", json::Value::boolean(false));
  config.require_absent_or("sliding_window", json::Value());
  config.require_absent_or("use_sliding_window", json::Value::boolean(false));
  return build_rotary_decoder(decoder, config, dir);
}

}  // namespace t2r
