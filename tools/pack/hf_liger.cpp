// model_type "liger_mistral_gla" (Liger, linear-moe-hub/Liger-Mistral-GLA-7B): a plain Mistral
// checkpoint, no new tensors, whose attention becomes gated linear attention (phi = softmax over
// the head before rotary, per-dimension decay sigmoid(k)^(1/16), S per kv head) averaged with a
// 64-token softmax window, as fla-org/distillation-fla's liger_gla computes it. The window, the
// gate's 16 and the even mix are constants of that code, not config keys.
#include "hf_layouts.h"
#include "hf_rotary_decoder.h"

namespace t2r {
namespace {
constexpr int64_t kLigerWindow = 64;
constexpr float kLigerGateTemperature = 16;
}  // namespace

ImportedModel import_hf_liger_mistral_gla(HfConfig& config, const std::string& dir) {
  RotaryDecoder decoder = read_rotary_decoder(config, "liger_mistral_gla");
  if (decoder.attention.is_linear()) config.unsupported("a \"t2r\" block in a Liger checkpoint");
  config.find("sliding_window");  // the Mistral base's, unused: Liger's window is its own constant
  decoder.attention = liger_attention_spec(decoder.head_dim, kLigerWindow, kLigerGateTemperature);
  return build_rotary_decoder(decoder, config, dir);
}

}  // namespace t2r
