// What every Hugging Face layout reads the same way: the storage dtype, eos_token_id, this
// project's "t2r" and "length_adaptive" blocks, and the tokenizer files (or their absence).
#pragma once

#include <cstdint>
#include <string>

#include "architecture.h"
#include "checkpoint_import.h"
#include "hf_config.h"

namespace t2r {

// torch_dtype or transformers 5's dtype: float32, float16 or bfloat16 (the tensors say the rest).
void check_storage_dtype(HfConfig& config);
// eos_token_id: one id, or a list whose first ends documents; -1 when absent.
int64_t read_eos(HfConfig& config, int64_t vocab_size);
// The project's T2R / ELU convention: a "t2r" block {feature_dim, feature_map, denominator_floor};
// softmax attention without it. The feature map is never folded: it follows the query scale.
AttentionSpec read_t2r_block(HfConfig& config, int64_t head_dim);
// This project's record of LengthDrop training; refused where it disagrees with the runtime.
void check_length_adaptive(HfConfig& config);
// tokenizer.json into the metadata, or a warning and an ids-only model (keeping `eos_id` >= 0).
void put_hf_tokenizer(ImportedModel& out, const std::string& dir, int64_t vocab_size, int64_t eos_id);
// "softmax attention", "t2r attention (feature size r)", "elu attention".
std::string attention_text(const AttentionSpec& spec);

}  // namespace t2r
