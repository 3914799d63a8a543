#include "fairseq_checkpoint.h"

#include <cmath>

#include "error.h"
#include "feature_map_fold.h"
#include "schema.h"

namespace t2r {

FairseqCheckpoint::FairseqCheckpoint(const std::string& path)
    : path_(path), checkpoint_(read_torch_checkpoint(path)) {
  for (const TorchTensor& t : checkpoint_.state_dict) state_[t.name] = &t;
}

int64_t FairseqCheckpoint::integer(const char* key) const {
  const json::Value* v = checkpoint_.args.find(key);
  if (!v || v->is_null()) throw Error(path_ + ": args has no '" + key + "'");
  return v->as_int();
}

bool FairseqCheckpoint::flag(const char* key, bool fallback) const {
  const json::Value* v = checkpoint_.args.find(key);
  return v && !v->is_null() ? v->as_bool() : fallback;
}

std::string FairseqCheckpoint::string(const char* key, const std::string& fallback) const {
  const json::Value* v = checkpoint_.args.find(key);
  return v && !v->is_null() ? v->as_string() : fallback;
}

bool FairseqCheckpoint::has(const char* key) const {
  const json::Value* v = checkpoint_.args.find(key);
  return v && !v->is_null();
}

void FairseqCheckpoint::unsupported(const std::string& what) const {
  throw Error(path_ + ": unsupported fairseq model: " + what);
}

void FairseqCheckpoint::refuse_set(std::initializer_list<const char*> keys) const {
  for (const char* key : keys) {
    const json::Value* v = checkpoint_.args.find(key);
    if (v && !v->is_null() && !(v->type() == json::Value::Type::Bool && !v->as_bool())) unsupported(std::string(key) + " is set");
  }
}

const std::vector<int64_t>& FairseqCheckpoint::shape(const std::string& name) const {
  auto it = state_.find(name);
  if (it == state_.end()) throw Error(path_ + ": missing tensor '" + name + "'");
  return it->second->shape;
}

std::vector<float> FairseqCheckpoint::tensor(const std::string& name, const std::vector<int64_t>& expected) const {
  if (shape(name) != expected) throw Error(path_ + ": tensor '" + name + "' has an unexpected shape");
  return torch_tensor_to_f32(*state_.at(name));
}

FairseqAttention FairseqCheckpoint::decoder_attention(const std::string& feature_map, uint64_t heads) const {
  FairseqAttention a;
  if (!flag("use_rfa", false)) return a;  // softmax, whatever random_feature says
  const std::string feature = string("random_feature", "");
  if (feature == "mlp") {
    a.kind = "t2r";
    if (string("attn_act", "relu") != "relu") unsupported("feature map activation " + string("attn_act", ""));
    const std::vector<int64_t>& s = shape(feature_map + ".weight");
    if (s.size() != 2 || s[0] <= 0 || uint64_t(s[0]) % heads != 0) {
      throw Error(path_ + ": tensor '" + feature_map + ".weight' is not [heads * r, head_dim]");
    }
    a.features = uint64_t(s[0]) / heads;
  } else if (feature == "elu") {
    a.kind = "elu";
  } else {
    unsupported("random_feature '" + feature + "'");
  }
  return a;
}

Hyperparams FairseqCheckpoint::decoder_hyperparams(const std::string& architecture, int64_t vocab_size,
                                                   const AttentionSpec& self) const {
  const int64_t L = integer("decoder_layers"), d = integer("decoder_embed_dim"), F = integer("decoder_ffn_embed_dim"),
                H = integer("decoder_attention_heads");
  if (L <= 0 || d <= 0 || F <= 0 || H <= 0 || d % H != 0) unsupported("inconsistent sizes in args");
  Hyperparams hp;
  hp.architecture = architecture;
  hp.vocab_size = vocab_size;
  hp.dim = d;
  hp.n_layers = L;
  hp.n_heads = hp.n_kv_heads = H;
  hp.head_dim = d / H;
  hp.ffn_dim = F;
  hp.norm = NormKind::LayerNorm;
  hp.norm_eps = 1e-5f;
  hp.ffn = FfnKind::Relu;
  hp.embedding_scale = flag("no_scale_embedding", false) ? 1.0f : float(std::sqrt(double(d)));
  hp.positions = PositionKind::Sinusoidal;
  hp.position_offset = 2;  // fairseq make_positions: padding_idx 1 + the 1-based index
  hp.max_positions = has("max_target_positions") ? integer("max_target_positions") : 1024;
  hp.layers.assign(size_t(L), LayerSpec(self));
  return hp;
}

AttentionSpec FairseqCheckpoint::attention_spec(const FairseqAttention& a, uint64_t head_dim) {
  if (a.kind == "t2r") return t2r_attention_spec(int64_t(a.features), true, 0.01f);
  if (a.kind == "elu") return elu_attention_spec(int64_t(head_dim), 1e-6f);
  return softmax_attention_spec();
}

void FairseqCheckpoint::add_linear(ImportedModel& m, const std::string& src, const std::string& dst, uint64_t rows,
                                   uint64_t cols) const {
  m.add(schema::weight(dst), {rows, cols}, tensor(src + ".weight", {int64_t(rows), int64_t(cols)}));
  m.add(schema::bias(dst), {rows}, tensor(src + ".bias", {int64_t(rows)}));
}

void FairseqCheckpoint::add_norm(ImportedModel& m, const std::string& src, const std::string& dst, uint64_t d) const {
  m.add(schema::weight(dst), {d}, tensor(src + ".weight", {int64_t(d)}));
  m.add(schema::bias(dst), {d}, tensor(src + ".bias", {int64_t(d)}));
}

void FairseqCheckpoint::add_attention(ImportedModel& m, const std::string& src, const std::string& feature_map,
                                      const FairseqAttention& attention, uint64_t H, uint64_t d,
                                      const Names& dst) const {
  const uint64_t dh = d / H;
  const std::vector<int64_t> vec_d = {int64_t(d)}, mat_dd = {int64_t(d), int64_t(d)};
  if (attention.kind == "t2r") {
    const uint64_t r = attention.features;
    // W'[h] = sigma[h] * W[h] / tau: sigma scales the d_h columns of each head's map.
    std::vector<float> w = tensor(feature_map + ".weight", {int64_t(H * r), int64_t(dh)});
    std::vector<float> b = tensor(feature_map + ".bias", {int64_t(H * r)});
    const float tau = tensor(src + ".tau", {1})[0];
    if (!(tau != 0)) throw Error(path_ + ": " + src + ".tau is zero");
    std::vector<float> sigma(H * dh, 1.0f);
    if (flag("reparam_proj", false)) sigma = tensor(src + ".sigma", {int64_t(H), 1, int64_t(dh)});
    for (uint64_t h = 0; h < H; ++h) {
      for (uint64_t i = 0; i < r; ++i) {
        for (uint64_t j = 0; j < dh; ++j) {
          float& x = w[(h * r + i) * dh + j];
          x = float(double(x) * sigma[h * dh + j] / tau);
        }
      }
    }
    FoldedProjection fq = fold_feature_map(w, b, tensor(src + ".q_proj.weight", mat_dd),
                                           tensor(src + ".q_proj.bias", vec_d), 1.0 / std::sqrt(double(dh)), H, r, dh, d);
    FoldedProjection fk = fold_feature_map(w, b, tensor(src + ".k_proj.weight", mat_dd),
                                           tensor(src + ".k_proj.bias", vec_d), 1.0, H, r, dh, d);
    m.add(schema::weight(dst(schema::kFeatureQ)), {H * r, d}, std::move(fq.weight));
    m.add(schema::bias(dst(schema::kFeatureQ)), {H * r}, std::move(fq.bias));
    m.add(schema::weight(dst(schema::kFeatureK)), {H * r, d}, std::move(fk.weight));
    m.add(schema::bias(dst(schema::kFeatureK)), {H * r}, std::move(fk.bias));
  } else {
    add_linear(m, src + ".q_proj", dst(schema::kAttnQ), d, d);
    add_linear(m, src + ".k_proj", dst(schema::kAttnK), d, d);
  }
  add_linear(m, src + ".v_proj", dst(schema::kAttnV), d, d);
  add_linear(m, src + ".out_proj", dst(schema::kAttnO), d, d);
}

void FairseqCheckpoint::add_ffn(ImportedModel& m, const std::string& layer, uint64_t d, uint64_t ffn,
                                const Names& dst) const {
  add_linear(m, layer + ".fc1", dst(schema::kFfnUp), ffn, d);
  add_linear(m, layer + ".fc2", dst(schema::kFfnDown), d, ffn);
}

}  // namespace t2r
