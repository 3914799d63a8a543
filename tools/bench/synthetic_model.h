// Models of real sizes with random weights, for measuring speed without a checkpoint. They run
// the same code as packed checkpoints; only their outputs are meaningless.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dtype.h"
#include "model_writer.h"

namespace t2r::bench {

struct SyntheticConfig {
  std::string name;
  int64_t vocab_size, dim, n_layers, n_heads, n_kv_heads, ffn_dim, feature_dim;
  bool tied_output;
  int64_t encoder_layers = 0;  // > 0: a translation model (synthetic_translation_model)
};

// "shipped": the dimensions of models/default.t2r. "gpt2-small": 12 layers, d 768, 12 heads,
// ffn 2048, vocab 32000, untied (134M parameters, the llama-architecture model that
// ../shared/NOTES.md measured llama.cpp on). "llama3.1-8b", "mistral-7b": below. "tiny": one layer, d 64, 2 heads sharing one kv
// head, vocab 256 (a few KB to a few hundred KB: seeds and subjects for the fuzzers).
// Translation sizes (6+6 layers unless said, all embeddings shared, feature size 32 for self and
// cross attention): "mt-reference" is the shape of ../shared/models/mt-* (d 128, 3+3 layers,
// 4 heads, ffn 512, vocab 4008); "mt-base" and "mt-big" are the T2R paper's transformer base
// (d 512, 8 heads, ffn 2048) and big (d 1024, 16 heads, ffn 4096), vocab 32768.
bool synthetic_config(const std::string& name, SyntheticConfig* out);

// A Llama-layout model (rotary, RMSNorm, SwiGLU) with T2R or softmax attention, ready to write
// or serialize. The same arguments give the same bytes.
ModelWriter synthetic_model(const SyntheticConfig& config, bool t2r, DType dtype);
// The same with each layer's attention given: "t2r", "softmax", or a linearized LLM's "lolcats",
// "supra" or "liger" per layer (a hybrid model when they differ); layer_kinds has config.n_layers
// entries. "llama3.1-8b" and "mistral-7b" are those models' shapes (8.0B and 7.2B parameters).
ModelWriter synthetic_model(const SyntheticConfig& config, const std::vector<std::string>& layer_kinds, DType dtype);
// A translation model in the layout the fairseq importer writes (post-LN, LayerNorm, ReLU
// feed-forward with biases, sinusoidal positions, a softmax encoder), its decoder's self and cross
// attention T2R (folded relu feature maps) or softmax; ids only (eos 2, as fairseq's dictionary).
ModelWriter synthetic_translation_model(const SyntheticConfig& config, bool t2r, DType dtype);

}  // namespace t2r::bench
