// A loaded model: the memory-mapped file, its validated hyperparameters, the weights bound in
// place, and the tokenizer. Immutable after load, so any number of sessions can share it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels.h"
#include "model_file.h"
#include "tokenizer.h"

namespace t2r {

enum class AttentionKind { Softmax, T2R, Elu };
enum class NormKind { LayerNorm, RmsNorm };
enum class FfnKind { Relu, SwiGlu };
enum class PositionKind { Sinusoidal, Rotary };

struct Hyperparams {
  std::string architecture;
  int64_t vocab_size = 0, dim = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0,
          ffn_dim = 0, max_positions = 0;
  NormKind norm = NormKind::LayerNorm;
  float norm_eps = 0;
  FfnKind ffn = FfnKind::Relu;
  float embedding_scale = 1;
  PositionKind positions = PositionKind::Sinusoidal;
  int64_t position_offset = 0;
  double rope_theta = 0;
  AttentionKind attention = AttentionKind::Softmax;
  int64_t feature_dim = 0;  // r; head_dim for elu; 0 for softmax
  bool feature_map_folded = false;
  float denominator_floor = 0;

  // Reads and checks every key (throws t2r::Error naming the bad one).
  static Hyperparams from_metadata(const Metadata& m);
  bool linear_attention() const { return attention != AttentionKind::Softmax; }
};

struct Norm {
  const float* weight = nullptr;
  const float* bias = nullptr;  // layernorm only
};

struct LayerWeights {
  Norm attn_norm, ffn_norm;
  cpu::Matrix q, k, v, o;  // q, k empty when the feature map is folded
  const float *q_bias = nullptr, *k_bias = nullptr, *v_bias = nullptr, *o_bias = nullptr;
  cpu::Matrix feature_map;  // [H r, d_h]: t2r, not folded
  const float* feature_map_bias = nullptr;
  cpu::Matrix feature_q, feature_k;  // [H r, d]: t2r, folded
  const float *feature_q_bias = nullptr, *feature_k_bias = nullptr;
  cpu::Matrix up, gate, down;
  const float *up_bias = nullptr, *down_bias = nullptr;
};

class Model {
 public:
  // Maps and validates the file; throws t2r::Error with the path and what is wrong.
  static std::unique_ptr<Model> load(const std::string& path);
  static std::unique_ptr<Model> from_file(ModelFile file);

  const ModelFile& file() const { return file_; }
  const Hyperparams& hparams() const { return hp_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const std::vector<LayerWeights>& layers() const { return layers_; }
  const cpu::Matrix& embedding() const { return embedding_; }
  const cpu::Matrix& output() const { return output_; }
  const Norm& output_norm() const { return output_norm_; }
  // Rotary inverse frequencies (head_dim / 2) or sinusoidal frequencies (dim / 2).
  const std::vector<float>& position_freq() const { return position_freq_; }
  uint64_t parameter_count() const;
  uint64_t weight_bytes() const;

 private:
  explicit Model(ModelFile file);
  ModelFile file_;
  Hyperparams hp_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::vector<LayerWeights> layers_;
  cpu::Matrix embedding_, output_;
  Norm output_norm_;
  std::vector<float> position_freq_;
};

}  // namespace t2r
