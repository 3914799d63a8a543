// The rotary positions of a Hugging Face config, in either generation's form: transformers 5's
// "rope_parameters", or the older top-level "rope_theta" with "rope_scaling" (keyed "rope_type"
// or the older "type"). Both forms give the same RotarySpec. default, linear, llama3 and yarn are
// read with transformers' defaults and derived values (modeling_rope_utils); dynamic, longrope,
// any other type and any parameter a type does not take are refused by name with their value.
#pragma once

#include "architecture.h"
#include "hf_config.h"

namespace t2r {

// `max_positions` is the config's max_position_embeddings (yarn's default pretraining context).
RotarySpec read_hf_rotary(HfConfig& config, int64_t max_positions);

}  // namespace t2r
