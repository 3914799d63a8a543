// model_type "mistral": a Llama without biases whose softmax attention sees only the last
// sliding_window positions (null: all of them).
#include "hf_layouts.h"
#include "hf_rotary_decoder.h"

namespace t2r {

ImportedModel import_hf_mistral(HfConfig& config, const std::string& dir) {
  RotaryDecoder decoder = read_rotary_decoder(config, "mistral");
  if (const json::Value* window = config.find("sliding_window")) {
    if (window->as_int() <= 0) config.unsupported("\"sliding_window\": " + json_text(*window));
    decoder.sliding_window = window->as_int();
  }
  return build_rotary_decoder(decoder, config, dir);
}

}  // namespace t2r
