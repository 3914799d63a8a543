// A loaded model: the memory-mapped file, its validated hyperparameters, the weights of each block
// bound in place, and the tokenizer. Immutable after load, so any number of sessions can share it.
#pragma once

#include <cstdint>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "hyperparams.h"
#include "kernels.h"
#include "model_file.h"
#include "tokenizer.h"

namespace t2r {

// A projection: y = W x + b, the bias optional.
struct Linear {
  cpu::Matrix weight;
  const float* bias = nullptr;
  bool present() const { return weight.data != nullptr; }
};

struct Norm {
  const float* weight = nullptr;
  const float* bias = nullptr;  // layernorm only
};

// Which fields are bound follows the layer's AttentionSpec.
struct AttentionWeights {
  Linear q, k, v, o;            // q and k absent when the feature map is folded
  Linear feature_q, feature_k;  // relu-mlp, folded: [H r, d]
  Linear feature_map;           // relu-mlp, not folded: [H r, d_h], r rows per head
  Linear hedgehog_q, hedgehog_k;  // hedgehog: [H r/2, d_h], r/2 rows per head
  const float* window_weight = nullptr;  // a shared-normalizer window: [H]
  const float* decay = nullptr;          // a per-head decay: [H]
};

struct FfnWeights {
  Linear up, gate, down;  // gate: swiglu only
};

struct BlockWeights {
  Norm attn_norm, ffn_norm;
  AttentionWeights attention;
  Norm cross_norm;         // a translation decoder's layers only
  AttentionWeights cross;  // its cross attention: k and v read the encoder output
  FfnWeights ffn;
};

class Model {
 public:
  // Maps and validates the file; throws t2r::Error with the path and what is wrong.
  static std::unique_ptr<Model> load(const std::string& path);
  static std::unique_ptr<Model> from_file(ModelFile file);

  const ModelFile& file() const { return file_; }
  const Hyperparams& hparams() const { return hp_; }
  // Throws t2r::Error for an ids-only model (packed without tokenizer files): it reads and writes
  // token ids only.
  const Tokenizer& tokenizer() const;
  bool has_tokenizer() const { return tokenizer_ != nullptr; }
  // A translation model's source side: the target's tokenizer numbered by the source dictionary.
  const Tokenizer& source_tokenizer() const;
  int32_t eos_id() const { return eos_id_; }  // -1 when an ids-only model names none
  const std::vector<BlockWeights>& blocks() const { return blocks_; }
  const cpu::Matrix& embedding() const { return embedding_; }
  const cpu::Matrix& output() const { return output_; }
  // Learned positions: [max_positions, dim] f32, row p added to the input at position p.
  const float* position_table() const { return position_table_; }
  const Norm& output_norm() const { return output_norm_; }  // absent (null weight) for post-norm models
  // A translation model's encoder (hparams().has_encoder()): its blocks, token embedding (the
  // decoder's when tied) and final norm (pre-norm encoders only).
  const std::vector<BlockWeights>& encoder_blocks() const { return encoder_blocks_; }
  const cpu::Matrix& encoder_embedding() const { return encoder_embedding_; }
  const Norm& encoder_output_norm() const { return encoder_output_norm_; }
  // Rotary inverse frequencies (head_dim / 2) or sinusoidal frequencies (dim / 2).
  const std::vector<float>& position_freq() const { return position_freq_; }
  uint64_t parameter_count() const;
  uint64_t weight_bytes() const;
  // Bytes of the weights copied at load into the layout the CPU kernel path multiplies fastest
  // (cpu::pack; 0 when it reads every matrix from the mapped file as stored).
  uint64_t packed_bytes() const { return packed_bytes_; }

 private:
  explicit Model(ModelFile file);
  void pack_weights();
  struct AlignedDelete {
    void operator()(unsigned char* p) const { ::operator delete(p, std::align_val_t(64)); }
  };
  ModelFile file_;
  std::unique_ptr<unsigned char[], AlignedDelete> packed_;
  uint64_t packed_bytes_ = 0;
  Hyperparams hp_;
  std::unique_ptr<Tokenizer> tokenizer_, source_tokenizer_;  // null for an ids-only model
  int32_t eos_id_ = -1;
  std::vector<BlockWeights> blocks_, encoder_blocks_;
  cpu::Matrix embedding_, output_, encoder_embedding_;
  Norm encoder_output_norm_;
  const float* position_table_ = nullptr;
  Norm output_norm_;
  std::vector<float> position_freq_;
};

}  // namespace t2r
