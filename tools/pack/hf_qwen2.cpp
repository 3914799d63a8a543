// model_type "qwen2": a Llama with biases on q_proj, k_proj and v_proj (not o_proj). Its sliding
// window applies only when use_sliding_window is set, and then only to the layers from
// max_window_layers on: that mix is refused; without it the two window keys change nothing.
#include "hf_layouts.h"
#include "hf_rotary_decoder.h"

namespace t2r {

ImportedModel import_hf_qwen2(HfConfig& config, const std::string& dir) {
  RotaryDecoder decoder = read_rotary_decoder(config, "qwen2");
  decoder.qkv_bias = true;
  config.require_absent_or("use_sliding_window", json::Value::boolean(false));
  config.find("sliding_window");     // unused without use_sliding_window
  config.find("max_window_layers");  // likewise
  if (const json::Value* types = config.find("layer_types")) {
    for (const json::Value& type : types->as_array()) {
      if (type.as_string() != "full_attention") config.unsupported("\"layer_types\": " + json_text(*types));
    }
  }
  return build_rotary_decoder(decoder, config, dir);
}

}  // namespace t2r
