// LoLCATs (HazyResearch/lolcats): a Llama 3.1 base directory plus the two adapter checkpoints of its
// release repos, the distilled attention (Hedgehog feature maps and window factors) and the LoRA
// finetune, merged into the base weights at pack time (W += lora_alpha / r B A).
#pragma once

#include <string>

#include "hf_config.h"
#include "hf_rotary_decoder.h"

namespace t2r {

// The adapters come from the config's "lolcats" block (this project's convention; the repo keeps
// these settings in yaml) or from t2r-pack flags (LolcatsFiles). True when either names them.
bool has_lolcats(HfConfig& config, const LolcatsFiles& files);
// Fills decoder.attention (hedgehog feature maps with a 64-token window whose leaving keys join S
// and z), decoder.attention_tensors and decoder.low_rank; appends what it used to `used`.
// Settings absent from the block default to the released configuration (window 64, softmax_dim,
// LoRA alpha 16, the LoRA rank and feature size from the tensor shapes). Throws naming what differs.
void read_lolcats(HfConfig& config, const LolcatsFiles& files, const std::string& dir, RotaryDecoder& decoder,
                  std::string& used);

}  // namespace t2r
