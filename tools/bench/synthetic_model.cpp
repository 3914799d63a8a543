#include "synthetic_model.h"

#include <cmath>
#include <random>
#include <vector>

#include "error.h"
#include "hyperparams.h"
#include "schema.h"

namespace t2r::bench {
namespace {

// Weights uniform in [-scale, scale] from one seeded generator, and f32 vectors of one value; the
// order of the calls fixes the bytes.
class RandomTensors {
 public:
  RandomTensors(ModelWriter& writer, DType dtype) : writer_(writer), dtype_(dtype) {}
  void matrix(const std::string& name, std::vector<uint64_t> shape, float scale = 0.05f) {
    std::uniform_real_distribution<float> uniform(-scale, scale);
    for (float& v : resize(shape)) v = uniform(rng_);
    writer_.add_tensor(name, dtype_, std::move(shape), values_.data());
  }
  void constant(const std::string& name, std::vector<uint64_t> shape, float value) {
    for (float& v : resize(shape)) v = value;
    writer_.add_tensor(name, DType::F32, std::move(shape), values_.data());
  }

 private:
  std::vector<float>& resize(const std::vector<uint64_t>& shape) {
    uint64_t count = 1;
    for (uint64_t d : shape) count *= d;
    values_.resize(count);
    return values_;
  }
  ModelWriter& writer_;
  DType dtype_;
  std::mt19937 rng_{1234};
  std::vector<float> values_;
};

}  // namespace

bool synthetic_config(const std::string& name, SyntheticConfig* out) {
  if (name == "shipped") {
    *out = {name, 8192, 256, 6, 4, 2, 768, 32, true};
  } else if (name == "gpt2-small") {
    *out = {name, 32000, 768, 12, 12, 12, 2048, 32, false};
  } else if (name == "tiny") {
    *out = {name, 256, 64, 1, 2, 1, 64, 8, true};
  } else if (name == "llama3.1-8b") {  // LoLCATs' and Liger's base; feature size f 64 (LoLCATs' fd64)
    *out = {name, 128256, 4096, 32, 32, 8, 14336, 64, false};
  } else if (name == "mistral-7b") {  // SUPRA's base
    *out = {name, 32000, 4096, 32, 32, 8, 14336, 64, false};
  } else if (name == "mt-reference") {
    *out = {name, 4008, 128, 3, 4, 4, 512, 32, true, 3};
  } else if (name == "mt-base") {
    *out = {name, 32768, 512, 6, 8, 8, 2048, 32, true, 6};
  } else if (name == "mt-big") {
    *out = {name, 32768, 1024, 6, 16, 16, 4096, 32, true, 6};
  } else {
    return false;
  }
  return true;
}

ModelWriter synthetic_model(const SyntheticConfig& c, bool t2r, DType dtype) {
  return synthetic_model(c, std::vector<std::string>(size_t(c.n_layers), t2r ? "t2r" : "softmax"), dtype);
}

ModelWriter synthetic_model(const SyntheticConfig& c, const std::vector<std::string>& layer_kinds, DType dtype) {
  if (layer_kinds.size() != size_t(c.n_layers)) throw Error("synthetic model: one attention kind per layer needed");
  ModelWriter w;
  Metadata& m = w.metadata();
  const int64_t dh = c.dim / c.n_heads;
  Hyperparams hp;
  hp.architecture = "llama";
  hp.vocab_size = c.vocab_size;
  hp.dim = c.dim;
  hp.n_layers = c.n_layers;
  hp.n_heads = c.n_heads;
  hp.n_kv_heads = c.n_kv_heads;
  hp.head_dim = dh;
  hp.ffn_dim = c.ffn_dim;
  hp.norm = NormKind::RmsNorm;
  hp.norm_eps = 1e-5f;
  hp.ffn = FfnKind::SwiGlu;
  hp.positions = PositionKind::Rotary;
  hp.rotary.theta = 10000.0;
  hp.max_positions = int64_t(1) << 20;
  for (const std::string& kind : layer_kinds) {
    if (kind == "t2r") {
      hp.layers.push_back({t2r_attention_spec(c.feature_dim, false, 0.01f)});
    } else if (kind == "lolcats") {  // the released window and eps
      hp.layers.push_back({lolcats_attention_spec(2 * c.feature_dim, 64, 1e-12f)});
    } else if (kind == "supra") {
      hp.layers.push_back({supra_attention_spec(dh, 1e-5f)});
    } else if (kind == "liger") {
      hp.layers.push_back({liger_attention_spec(dh, 64, 16)});
    } else if (kind == "softmax") {
      hp.layers.push_back({softmax_attention_spec()});
    } else {
      throw Error("synthetic model: attention '" + kind + "' is not one of t2r, lolcats, supra, liger, softmax");
    }
  }
  hp.to_metadata(m);
  m.set("general.source", "synthetic " + c.name + " " + std::string(hp.attention_summary()));
  // A byte-level tokenizer: enough for the runtime to load; the benchmark feeds ids directly.
  std::vector<std::string> bytes(256);
  for (int b = 0; b < 256; ++b) bytes[size_t(b)] = std::string(1, char(b));
  m.set("tokenizer.bpe_tokens", bytes);
  m.set("tokenizer.merges", std::vector<int32_t>{});
  m.set("tokenizer.eos_id", int64_t(0));

  RandomTensors t(w, dtype);
  const uint64_t V = uint64_t(c.vocab_size), d = uint64_t(c.dim), H = uint64_t(c.n_heads),
                 Hkv = uint64_t(c.n_kv_heads), F = uint64_t(c.ffn_dim), r = uint64_t(c.feature_dim),
                 h = uint64_t(dh);
  t.matrix(schema::kTokenEmbedding, {V, d});
  if (!c.tied_output) t.matrix(schema::kOutput, {V, d});
  t.constant(schema::weight(schema::kOutputNorm), {d}, 1);
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const auto p = [&](const std::string& part) { return schema::layer(l, part); };
    t.constant(schema::weight(p(schema::kAttnNorm)), {d}, 1);
    t.constant(schema::weight(p(schema::kFfnNorm)), {d}, 1);
    t.matrix(schema::weight(p(schema::kAttnQ)), {H * h, d});
    t.matrix(schema::weight(p(schema::kAttnK)), {Hkv * h, d});
    t.matrix(schema::weight(p(schema::kAttnV)), {Hkv * h, d});
    t.matrix(schema::weight(p(schema::kAttnO)), {d, H * h});
    const LinearAttentionSpec& linear = hp.attention(size_t(l)).linear;
    if (hp.attention(size_t(l)).is_linear() && linear.feature_map == FeatureMap::ReluMlp) {
      t.matrix(schema::weight(p(schema::kFeatureMap)), {H, r, h});
      t.constant(schema::bias(p(schema::kFeatureMap)), {H, r}, 1);
    } else if (hp.attention(size_t(l)).is_linear() && linear.feature_map == FeatureMap::Hedgehog) {
      t.matrix(schema::weight(p(schema::kHedgehogQ)), {H, r, h});
      t.matrix(schema::weight(p(schema::kHedgehogK)), {H, r, h});
      t.constant(p(schema::kWindowWeight), {H}, 0.1f);
    } else if (hp.attention(size_t(l)).is_linear() && linear.decay == Decay::PerHead) {
      t.constant(p(schema::kDecay), {H}, 0.99f);
    }
    t.matrix(schema::weight(p(schema::kFfnGate)), {F, d});
    t.matrix(schema::weight(p(schema::kFfnUp)), {F, d});
    t.matrix(schema::weight(p(schema::kFfnDown)), {d, F});
  }
  return w;
}

ModelWriter synthetic_translation_model(const SyntheticConfig& c, bool t2r, DType dtype) {
  if (c.encoder_layers <= 0 || !c.tied_output || c.n_kv_heads != c.n_heads) {
    throw Error("synthetic translation model: " + c.name + " is not a translation size");
  }
  ModelWriter w;
  Hyperparams hp;
  hp.architecture = "fairseq_transformer";
  hp.vocab_size = c.vocab_size;
  hp.dim = c.dim;
  hp.n_layers = c.n_layers;
  hp.n_heads = hp.n_kv_heads = c.n_heads;
  hp.head_dim = c.dim / c.n_heads;
  hp.ffn_dim = c.ffn_dim;
  hp.norm = NormKind::LayerNorm;
  hp.norm_eps = 1e-5f;
  hp.norm_position = NormPosition::Post;
  hp.ffn = FfnKind::Relu;
  hp.embedding_scale = float(std::sqrt(double(c.dim)));
  hp.positions = PositionKind::Sinusoidal;
  hp.position_offset = 2;  // fairseq's make_positions
  hp.max_positions = 1024;
  LayerSpec layer(t2r ? t2r_attention_spec(c.feature_dim, true, 0.01f) : softmax_attention_spec());
  layer.has_cross = true;
  layer.cross = layer.attention;
  layer.cross.causal = false;
  layer.cross.cross = true;
  hp.layers.assign(size_t(c.n_layers), layer);
  hp.encoder.vocab_size = c.vocab_size;
  hp.encoder.n_layers = c.encoder_layers;
  hp.encoder.n_heads = c.n_heads;
  hp.encoder.ffn_dim = c.ffn_dim;
  hp.encoder.max_positions = 1024;
  hp.encoder.norm_position = NormPosition::Post;
  Metadata& m = w.metadata();
  hp.to_metadata(m);
  m.set("general.source", "synthetic " + c.name + " translation " + std::string(hp.attention_summary()));
  m.set("tokenizer.eos_id", int64_t(2));

  RandomTensors t(w, dtype);
  const uint64_t d = uint64_t(c.dim), F = uint64_t(c.ffn_dim), Hr = uint64_t(c.n_heads * c.feature_dim);
  const auto linear = [&](const std::string& part, uint64_t rows, uint64_t cols) {
    t.matrix(schema::weight(part), {rows, cols});
    t.constant(schema::bias(part), {rows}, 0);
  };
  const auto norm = [&](const std::string& part) {
    t.constant(schema::weight(part), {d}, 1);
    t.constant(schema::bias(part), {d}, 0);
  };
  // One attention's projections, each part's name spelled by `name`.
  const auto attention = [&](bool linear_attention, const auto& name) {
    if (linear_attention) {
      linear(name(schema::kFeatureQ), Hr, d);
      linear(name(schema::kFeatureK), Hr, d);
    } else {
      linear(name(schema::kAttnQ), d, d);
      linear(name(schema::kAttnK), d, d);
    }
    linear(name(schema::kAttnV), d, d);
    linear(name(schema::kAttnO), d, d);
  };
  const auto ffn = [&](const auto& name) {
    linear(name(schema::kFfnUp), F, d);
    linear(name(schema::kFfnDown), d, F);
  };
  t.matrix(schema::kTokenEmbedding, {uint64_t(c.vocab_size), d});  // shared by encoder, decoder and output
  for (int64_t l = 0; l < c.encoder_layers; ++l) {
    const auto p = [&](const std::string& part) { return schema::encoder(schema::layer(l, part)); };
    norm(p(schema::kAttnNorm));
    attention(false, p);
    norm(p(schema::kFfnNorm));
    ffn(p);
  }
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const auto p = [&](const std::string& part) { return schema::layer(l, part); };
    const auto cross = [&](const std::string& part) { return p(schema::cross(part)); };
    norm(p(schema::kAttnNorm));
    attention(t2r, p);
    norm(p(schema::kCrossNorm));
    attention(t2r, cross);
    norm(p(schema::kFfnNorm));
    ffn(p);
  }
  return w;
}

}  // namespace t2r::bench
