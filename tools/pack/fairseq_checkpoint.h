// A fairseq checkpoint as its importers read it (the T2R reference code's language models and
// translation models): its args, its state dict by name, and the sublayers both layouts share,
// written into an ImportedModel under t2r's names (format/schema.h).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "checkpoint_import.h"
#include "hyperparams.h"
#include "torch_checkpoint.h"

namespace t2r {

// A decoder attention's form in the fork's args: softmax, T2R ('mlp': relu(W x + b) with W from
// fc3 or fc4, scaled by sigma / tau) or elu+1.
struct FairseqAttention {
  std::string kind = "softmax";  // "softmax", "t2r", "elu" (t2r's attention kind names)
  uint64_t features = 0;         // t2r: r, from the feature map's shape
};

class FairseqCheckpoint {
 public:
  explicit FairseqCheckpoint(const std::string& path);  // reads checkpoint.pt
  const std::string& path() const { return path_; }

  // args: a missing key is an error unless a fallback is given; null reads as the fallback.
  int64_t integer(const char* key) const;
  bool flag(const char* key, bool fallback) const;
  std::string string(const char* key, const std::string& fallback) const;
  bool has(const char* key) const;  // present and not null
  [[noreturn]] void unsupported(const std::string& what) const;
  // Refuses, by name, each arg of `keys` that is set (true or not null): features t2r does not run.
  void refuse_set(std::initializer_list<const char*> keys) const;

  bool has_tensor(const std::string& name) const { return state_.count(name) > 0; }
  const std::vector<int64_t>& shape(const std::string& name) const;
  // The tensor in f32, checked against `shape`.
  std::vector<float> tensor(const std::string& name, const std::vector<int64_t>& shape) const;

  // The decoder's hyperparameters both layouts share: decoder_* sizes, LayerNorm (eps 1e-5), relu,
  // the sqrt(d) embedding scale unless no_scale_embedding, fairseq's sinusoidal positions, and
  // `self` for every layer's attention. Refuses inconsistent sizes.
  Hyperparams decoder_hyperparams(const std::string& architecture, int64_t vocab_size, const AttentionSpec& self) const;
  // The attention the args give: use_rfa, random_feature, attn_act; r from `feature_map`'s weight
  // [H r, d_h] (fc3 or fc4 of layer 0) for T2R.
  FairseqAttention decoder_attention(const std::string& feature_map, uint64_t heads) const;
  // Its AttentionSpec: T2R folded (floor 0.01), elu+1 (floor 1e-6) or softmax.
  static AttentionSpec attention_spec(const FairseqAttention& attention, uint64_t head_dim);

  // Writers of the shared sublayers; `dst` names each t2r part (a schema part -> its full name).
  using Names = std::function<std::string(const std::string&)>;
  void add_linear(ImportedModel& m, const std::string& src, const std::string& dst, uint64_t rows, uint64_t cols) const;
  void add_norm(ImportedModel& m, const std::string& src, const std::string& dst, uint64_t d) const;
  // src: "<layer>.self_attn" / "<layer>.encoder_attn"; feature_map: "<layer>.fc3" / "<layer>.fc4" (T2R).
  // T2R folds W' = sigma W / tau into the q and k projections (q also takes the 1/sqrt(d_h) scale).
  void add_attention(ImportedModel& m, const std::string& src, const std::string& feature_map,
                     const FairseqAttention& attention, uint64_t heads, uint64_t d, const Names& dst) const;
  void add_ffn(ImportedModel& m, const std::string& layer, uint64_t d, uint64_t ffn, const Names& dst) const;

 private:
  std::string path_;
  TorchCheckpoint checkpoint_;
  std::map<std::string, const TorchTensor*> state_;
};

// The two layouts (import_fairseq picks one by args.arch): transformer_lm (fairseq_import.cpp) and
// transformer translation models (fairseq_translation_import.cpp); `dir` holds the checkpoint.
ImportedModel import_fairseq_lm(const FairseqCheckpoint& checkpoint, const std::string& dir);
ImportedModel import_fairseq_translation(const FairseqCheckpoint& checkpoint, const std::string& dir);

}  // namespace t2r
