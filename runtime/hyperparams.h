// A model's hyperparameters: the sizes, the kinds of norm, feed-forward and positions, and each
// layer's attention. from_metadata and to_metadata are the one schema of the model-level metadata
// keys (format/SPEC.md): the runtime reads with one, the packer and the synthetic models write with
// the other.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "architecture.h"
#include "metadata.h"

namespace t2r {

struct Hyperparams {
  std::string architecture;  // informational: "llama", "fairseq_transformer_lm", ...
  int64_t vocab_size = 0, dim = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0, ffn_dim = 0,
          max_positions = 0;
  NormKind norm = NormKind::LayerNorm;
  NormPosition norm_position = NormPosition::Pre;  // of the decoder's blocks
  float norm_eps = 0;
  FfnKind ffn = FfnKind::Relu;
  float embedding_scale = 1;
  PositionKind positions = PositionKind::Sinusoidal;
  int64_t position_offset = 0;  // sinusoidal
  RotarySpec rotary;            // rotary
  std::vector<LayerSpec> layers;  // n_layers entries

  // A translation model's encoder: a stack of non-causal softmax blocks over the source, with the
  // decoder's dim, norm kind, feed-forward kind, embedding scale and positions. n_layers 0: none
  // (a decoder-only model); with one, every decoder layer has a cross attention.
  struct Encoder {
    int64_t vocab_size = 0, n_layers = 0, n_heads = 0, ffn_dim = 0, max_positions = 0;
    NormPosition norm_position = NormPosition::Pre;
    int64_t head_dim(int64_t model_dim) const { return model_dim / n_heads; }
  } encoder;

  // Reads and checks every key (throws t2r::Error naming the bad one).
  static Hyperparams from_metadata(const Metadata& m);
  // Writes the keys from_metadata reads (general.source and the tokenizer are the caller's).
  void to_metadata(Metadata& m) const;

  const AttentionSpec& attention(size_t layer) const { return layers[layer].attention; }
  bool has_encoder() const { return encoder.n_layers > 0; }
  bool has_linear_cross_attention() const { return has_encoder() && layers[0].cross.is_linear(); }
  bool has_linear_attention() const;
  bool has_softmax_attention() const;
  // The attention kind name of every layer ("softmax", "t2r", "elu"), or "hybrid" when they differ
  // (static, NUL-terminated text).
  std::string_view attention_summary() const;
  // r of the first linear-attention layer; 0 without linear attention.
  int64_t feature_dim() const;
  // The widest linear attention's H r, cross attention included (0 without linear attention):
  // activation buffers are sized by it.
  int64_t max_linear_features() const;
};

}  // namespace t2r
