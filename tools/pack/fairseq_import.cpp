// fairseq transformer_lm checkpoints as written by the T2R reference code (pre-LN decoder,
// sinusoidal positions, tied embeddings; softmax, T2R 'mlp' or 'elu' attention).
#include <cmath>
#include <map>

#include "checkpoint_import.h"
#include "error.h"
#include "feature_map_fold.h"
#include "hyperparams.h"
#include "schema.h"
#include "tokenizer_import.h"
#include "tokenizer_metadata.h"
#include "torch_checkpoint.h"

namespace t2r {
namespace {

class FairseqArgs {
 public:
  FairseqArgs(const json::Value& args, std::string path) : args_(args), path_(std::move(path)) {}
  const json::Value* find(const char* key) const { return args_.find(key); }
  int64_t integer(const char* key) const { return get(key).as_int(); }
  bool flag(const char* key, bool fallback) const {
    const json::Value* v = args_.find(key);
    return v && !v->is_null() ? v->as_bool() : fallback;
  }
  std::string string(const char* key, const std::string& fallback) const {
    const json::Value* v = args_.find(key);
    return v && !v->is_null() ? v->as_string() : fallback;
  }
  [[noreturn]] void unsupported(const std::string& what) const {
    throw Error(path_ + ": unsupported fairseq model: " + what);
  }

 private:
  const json::Value& get(const char* key) const {
    const json::Value* v = args_.find(key);
    if (!v) throw Error(path_ + ": args has no '" + key + "'");
    return *v;
  }
  const json::Value& args_;
  std::string path_;
};

}  // namespace

ImportedModel import_fairseq(const std::string& dir) {
  const std::string path = dir + "/checkpoint.pt";
  TorchCheckpoint checkpoint = read_torch_checkpoint(path);
  FairseqArgs args(checkpoint.args, path);

  const std::string arch = args.string("arch", "");
  if (arch.rfind("transformer_lm", 0) != 0) args.unsupported("arch '" + arch + "' (expected transformer_lm)");
  if (!args.flag("decoder_normalize_before", false)) args.unsupported("post-LN decoder (decoder_normalize_before)");
  if (args.flag("decoder_learned_pos", false)) args.unsupported("learned positions");
  if (args.flag("no_token_positional_embeddings", false)) args.unsupported("no positional embeddings");
  if (args.flag("layernorm_embedding", false)) args.unsupported("layernorm_embedding");
  if (args.flag("adaptive_input", false)) args.unsupported("adaptive input");
  if (args.find("adaptive_softmax_cutoff") && !args.find("adaptive_softmax_cutoff")->is_null()) {
    args.unsupported("adaptive softmax");
  }
  if (args.string("activation_fn", "relu") != "relu") args.unsupported("activation " + args.string("activation_fn", ""));

  const uint64_t L = uint64_t(args.integer("decoder_layers")), d = uint64_t(args.integer("decoder_embed_dim")),
                 F = uint64_t(args.integer("decoder_ffn_embed_dim")),
                 H = uint64_t(args.integer("decoder_attention_heads"));
  if (L == 0 || d == 0 || F == 0 || H == 0 || d % H != 0) args.unsupported("inconsistent sizes in args");
  const uint64_t dh = d / H;

  std::string attention = "softmax";
  uint64_t r = 0;
  if (args.flag("use_rfa", false)) {
    const std::string feature = args.string("random_feature", "");
    if (feature == "mlp") {
      attention = "t2r";
      r = uint64_t(args.integer("causal_proj_dim"));
      if (args.string("attn_act", "relu") != "relu") args.unsupported("feature map activation " + args.string("attn_act", ""));
      if (args.flag("use_input_gate", false)) args.unsupported("use_input_gate");
    } else if (feature == "elu") {
      attention = "elu";
    } else {
      args.unsupported("random_feature '" + feature + "'");
    }
  }

  std::map<std::string, const TorchTensor*> state;
  for (const auto& t : checkpoint.state_dict) state[t.name] = &t;
  auto tensor = [&](const std::string& name, std::vector<int64_t> shape) {
    auto it = state.find(name);
    if (it == state.end()) throw Error(path + ": missing tensor '" + name + "'");
    if (it->second->shape != shape) throw Error(path + ": tensor '" + name + "' has an unexpected shape");
    return torch_tensor_to_f32(*it->second);
  };
  const int64_t V = state.count("decoder.embed_tokens.weight") ? state["decoder.embed_tokens.weight"]->shape.at(0) : 0;
  if (V <= 0) throw Error(path + ": missing tensor 'decoder.embed_tokens.weight'");

  ImportedModel m;
  const auto id = [](uint64_t v) { return int64_t(v); };
  Hyperparams hp;
  hp.architecture = "fairseq_transformer_lm";
  hp.vocab_size = V;
  hp.dim = id(d);
  hp.n_layers = id(L);
  hp.n_heads = hp.n_kv_heads = id(H);
  hp.head_dim = id(dh);
  hp.ffn_dim = id(F);
  hp.norm = NormKind::LayerNorm;
  hp.norm_eps = 1e-5f;
  hp.ffn = FfnKind::Relu;
  hp.embedding_scale = args.flag("no_scale_embedding", false) ? 1.0f : float(std::sqrt(double(d)));
  hp.positions = PositionKind::Sinusoidal;
  hp.position_offset = 2;  // padding_idx 1, positions start at padding_idx + 1
  hp.max_positions = args.find("max_target_positions") ? args.integer("max_target_positions") : 1024;
  const AttentionSpec spec = attention == "t2r"   ? t2r_attention_spec(id(r), true, 0.01f)
                             : attention == "elu" ? elu_attention_spec(id(dh), 1e-6f)
                                                  : softmax_attention_spec();
  hp.layers.assign(L, LayerSpec{spec});
  hp.to_metadata(m.metadata);
  m.metadata.set("general.source", path);

  const std::vector<int64_t> vec_d = {int64_t(d)}, mat_dd = {int64_t(d), int64_t(d)};
  m.add(schema::kTokenEmbedding, {uint64_t(V), d}, tensor("decoder.embed_tokens.weight", {V, int64_t(d)}));
  if (!args.flag("share_decoder_input_output_embed", false)) {
    m.add(schema::kOutput, {uint64_t(V), d}, tensor("decoder.output_projection.weight", {V, int64_t(d)}));
  }
  m.add(schema::weight(schema::kOutputNorm), {d}, tensor("decoder.layer_norm.weight", vec_d));
  m.add(schema::bias(schema::kOutputNorm), {d}, tensor("decoder.layer_norm.bias", vec_d));

  for (uint64_t l = 0; l < L; ++l) {
    const std::string src = "decoder.layers." + std::to_string(l) + ".";
    const auto dst = [&](const std::string& part) { return schema::layer(l, part); };
    m.add(schema::weight(dst(schema::kAttnNorm)), {d}, tensor(src + "self_attn_layer_norm.weight", vec_d));
    m.add(schema::bias(dst(schema::kAttnNorm)), {d}, tensor(src + "self_attn_layer_norm.bias", vec_d));
    std::vector<float> qw = tensor(src + "self_attn.q_proj.weight", mat_dd), qb = tensor(src + "self_attn.q_proj.bias", vec_d);
    std::vector<float> kw = tensor(src + "self_attn.k_proj.weight", mat_dd), kb = tensor(src + "self_attn.k_proj.bias", vec_d);
    if (attention == "t2r") {
      // W_phi[h] = sigma[h] * fc3[h] / tau: sigma scales the d_h columns of each head's map.
      std::vector<float> w = tensor(src + "fc3.weight", {int64_t(H * r), int64_t(dh)});
      std::vector<float> b = tensor(src + "fc3.bias", {int64_t(H * r)});
      const float tau = tensor(src + "self_attn.tau", {1})[0];
      if (!(tau != 0)) throw Error(path + ": " + src + "self_attn.tau is zero");
      std::vector<float> sigma(H * dh, 1.0f);
      if (args.flag("reparam_proj", false)) sigma = tensor(src + "self_attn.sigma", {int64_t(H), 1, int64_t(dh)});
      for (uint64_t h = 0; h < H; ++h) {
        for (uint64_t i = 0; i < r; ++i) {
          for (uint64_t j = 0; j < dh; ++j) w[(h * r + i) * dh + j] = float(double(w[(h * r + i) * dh + j]) * sigma[h * dh + j] / tau);
        }
      }
      FoldedProjection fq = fold_feature_map(w, b, qw, qb, 1.0 / std::sqrt(double(dh)), H, r, dh, d);
      FoldedProjection fk = fold_feature_map(w, b, kw, kb, 1.0, H, r, dh, d);
      m.add(schema::weight(dst(schema::kFeatureQ)), {H * r, d}, std::move(fq.weight));
      m.add(schema::bias(dst(schema::kFeatureQ)), {H * r}, std::move(fq.bias));
      m.add(schema::weight(dst(schema::kFeatureK)), {H * r, d}, std::move(fk.weight));
      m.add(schema::bias(dst(schema::kFeatureK)), {H * r}, std::move(fk.bias));
    } else {
      m.add(schema::weight(dst(schema::kAttnQ)), {d, d}, std::move(qw));
      m.add(schema::bias(dst(schema::kAttnQ)), {d}, std::move(qb));
      m.add(schema::weight(dst(schema::kAttnK)), {d, d}, std::move(kw));
      m.add(schema::bias(dst(schema::kAttnK)), {d}, std::move(kb));
    }
    m.add(schema::weight(dst(schema::kAttnV)), {d, d}, tensor(src + "self_attn.v_proj.weight", mat_dd));
    m.add(schema::bias(dst(schema::kAttnV)), {d}, tensor(src + "self_attn.v_proj.bias", vec_d));
    m.add(schema::weight(dst(schema::kAttnO)), {d, d}, tensor(src + "self_attn.out_proj.weight", mat_dd));
    m.add(schema::bias(dst(schema::kAttnO)), {d}, tensor(src + "self_attn.out_proj.bias", vec_d));
    m.add(schema::weight(dst(schema::kFfnNorm)), {d}, tensor(src + "final_layer_norm.weight", vec_d));
    m.add(schema::bias(dst(schema::kFfnNorm)), {d}, tensor(src + "final_layer_norm.bias", vec_d));
    m.add(schema::weight(dst(schema::kFfnUp)), {F, d}, tensor(src + "fc1.weight", {int64_t(F), int64_t(d)}));
    m.add(schema::bias(dst(schema::kFfnUp)), {F}, tensor(src + "fc1.bias", {int64_t(F)}));
    m.add(schema::weight(dst(schema::kFfnDown)), {d, F}, tensor(src + "fc2.weight", {int64_t(d), int64_t(F)}));
    m.add(schema::bias(dst(schema::kFfnDown)), {d}, tensor(src + "fc2.bias", vec_d));
  }

  TokenizerData tokenizer = import_fairseq_tokenizer(dir);
  if (tokenizer.vocab_size != V) {
    throw Error(path + ": dict.txt gives " + std::to_string(tokenizer.vocab_size) + " symbols but the embedding has " +
                std::to_string(V) + " rows");
  }
  write_tokenizer_metadata(tokenizer, m.metadata);
  m.description = "fairseq transformer_lm, " + attention + " attention" +
                  (attention == "t2r" ? " (feature size " + std::to_string(r) + ", folded into q/k)" : "") + ", " +
                  std::to_string(L) + " layers, d " + std::to_string(d) + ", " + std::to_string(H) + " heads, ffn " +
                  std::to_string(F) + ", vocab " + std::to_string(V);
  return m;
}

}  // namespace t2r
