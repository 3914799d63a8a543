// The Llama-shaped decoder that several Hugging Face layouts share (llama, mistral, qwen2):
// RMSNorm before attention and feed-forward, rotary q and k, grouped-query attention, SwiGLU,
// tensors named model.layers.N.{self_attn.{q,k,v,o}_proj, mlp.{gate,up,down}_proj, ...}. A layout
// file reads its own keys into the description, then builds the model with these helpers.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "architecture.h"
#include "hyperparams.h"
#include "checkpoint_import.h"
#include "hf_config.h"

namespace t2r {

struct RotaryDecoder {
  std::string model_type;
  int64_t vocab_size = 0, dim = 0, ffn_dim = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0,
          max_positions = 0;
  double norm_eps = 0;
  bool tied = false;
  RotarySpec rotary;
  AttentionSpec attention;    // softmax, or the form of the config's "t2r" block
  bool qkv_bias = false;      // q_proj, k_proj and v_proj have biases
  bool o_bias = false;        // o_proj has a bias
  int64_t sliding_window = 0; // softmax: each position attends to the last this many (0: all)
  // Low-rank adapters merged at pack time (LoLCATs' LoRA), by source tensor name: W += scale B A,
  // added to each chunk of rows as the weight is streamed, so no merged copy is ever held.
  struct LowRank {
    std::vector<float> a, b;  // A [rank, cols], B [rows, rank]
    int64_t rank = 0;
    float scale = 1;
  };
  std::map<std::string, LowRank> low_rank;
  // Tensors the attention form adds (t2r names: feature maps, window weights).
  std::vector<ImportedTensor> attention_tensors;
};

// The keys every Llama-shaped layout has, with their transformers defaults: sizes, rms_norm_eps,
// tie_word_embeddings, hidden_act (silu only), the storage dtype, rotary, the "t2r" and
// "length_adaptive" blocks; and the refusal of keys none of them computes (soft-capping,
// partial rotary). The layout fills biases and the window.
RotaryDecoder read_rotary_decoder(HfConfig& config, const std::string& model_type);

// The hyperparameters of the decoder: RMSNorm, SwiGLU, rotary, its attention in every layer (the
// layout's sliding window on softmax attention). Also for layouts with their own tensor names (openlm).
Hyperparams rotary_decoder_hyperparams(const RotaryDecoder& decoder);

// Checks that every key of the config was read or is ignored on purpose, then reads the tensors,
// the tokenizer and eos_token_id from `dir`.
ImportedModel build_rotary_decoder(const RotaryDecoder& decoder, HfConfig& config, const std::string& dir);

}  // namespace t2r
