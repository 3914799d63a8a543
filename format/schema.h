// The tensor names of a model file (format/SPEC.md, "Tensors"): spelled here once, used by the
// packer and the synthetic models to write and by the runtime to read.
#pragma once

#include <cstdint>
#include <string>

namespace t2r::schema {

inline const std::string kTokenEmbedding = "token_embedding";
inline const std::string kOutput = "output";          // absent: tied to the token embedding
inline const std::string kOutputNorm = "output_norm";  // a norm: .weight (and .bias for layernorm)
inline const std::string kPositionEmbedding = "position_embedding";  // learned positions [max_positions, d]

// Parts of layer N, named "layers.N.<part>".
inline const std::string kAttnNorm = "attn_norm";
inline const std::string kFfnNorm = "ffn_norm";
inline const std::string kAttnQ = "attn.q", kAttnK = "attn.k", kAttnV = "attn.v", kAttnO = "attn.o";
inline const std::string kFeatureMap = "attn.feature_map";  // unfolded relu-mlp feature map [H, r, d_h]
inline const std::string kFeatureQ = "attn.feature_q";      // folded relu-mlp feature maps [H r, d]
inline const std::string kFeatureK = "attn.feature_k";
// Hedgehog feature maps, one for queries and one for keys [H, r / 2, d_h] (no bias).
inline const std::string kHedgehogQ = "attn.hedgehog_q", kHedgehogK = "attn.hedgehog_k";
inline const std::string kWindowWeight = "attn.window_weight";  // [H] f32: the window terms' weight
inline const std::string kDecay = "attn.decay";                 // [H] f32: gamma_h of a per-head decay
inline const std::string kFfnUp = "ffn.up", kFfnGate = "ffn.gate", kFfnDown = "ffn.down";
// A translation decoder layer's attention to the encoder output: its norm, and the parts of
// attn.* under "cross." (cross.q, cross.k, cross.v, cross.o, cross.feature_q, ...).
inline const std::string kCrossNorm = "cross_norm";
inline std::string cross(const std::string& attention_part) { return "cross." + attention_part.substr(5); }

// A translation model's encoder: "encoder." before the names above (encoder.layers.N.attn.q,
// encoder.output_norm for pre-norm encoders); encoder.token_embedding absent: tied to the
// decoder's token_embedding.
inline std::string encoder(const std::string& name) { return "encoder." + name; }

inline std::string layer(int64_t index, const std::string& part) {
  return "layers." + std::to_string(index) + "." + part;
}
inline std::string weight(const std::string& part) { return part + ".weight"; }
inline std::string bias(const std::string& part) { return part + ".bias"; }

}  // namespace t2r::schema
