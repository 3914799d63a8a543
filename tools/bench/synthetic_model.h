// Models of real sizes with random weights, for measuring speed without a checkpoint. They run
// the same code as packed checkpoints; only their outputs are meaningless.
#pragma once

#include <cstdint>
#include <string>

#include "dtype.h"

namespace t2r::bench {

struct SyntheticConfig {
  std::string name;
  int64_t vocab_size, dim, n_layers, n_heads, n_kv_heads, ffn_dim, feature_dim;
  bool tied_output;
};

// "shipped": the dimensions of models/default.t2r. "gpt2-small": 12 layers, d 768, 12 heads,
// ffn 2048, vocab 32000, untied (134M parameters, the llama-architecture model that
// ../shared/NOTES.md measured llama.cpp on).
bool synthetic_config(const std::string& name, SyntheticConfig* out);

// Writes a Llama-layout model (rotary, RMSNorm, SwiGLU) with T2R or softmax attention to `path`.
void write_synthetic_model(const SyntheticConfig& config, bool t2r, DType dtype, const std::string& path);

}  // namespace t2r::bench
