#include "synthetic_model.h"

#include <random>
#include <vector>

#include "error.h"
#include "hyperparams.h"
#include "schema.h"

namespace t2r::bench {

bool synthetic_config(const std::string& name, SyntheticConfig* out) {
  if (name == "shipped") {
    *out = {name, 8192, 256, 6, 4, 2, 768, 32, true};
  } else if (name == "gpt2-small") {
    *out = {name, 32000, 768, 12, 12, 12, 2048, 32, false};
  } else if (name == "tiny") {
    *out = {name, 256, 64, 1, 2, 1, 64, 8, true};
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
    hp.layers.push_back({kind == "t2r" ? t2r_attention_spec(c.feature_dim, false, 0.01f) : softmax_attention_spec()});
  }
  hp.to_metadata(m);
  m.set("general.source", "synthetic " + c.name + " " + std::string(hp.attention_summary()));
  // A byte-level tokenizer: enough for the runtime to load; the benchmark feeds ids directly.
  std::vector<std::string> bytes(256);
  for (int b = 0; b < 256; ++b) bytes[size_t(b)] = std::string(1, char(b));
  m.set("tokenizer.bpe_tokens", bytes);
  m.set("tokenizer.merges", std::vector<int32_t>{});
  m.set("tokenizer.eos_id", int64_t(0));

  std::mt19937 rng(1234);
  std::vector<float> values;
  auto add = [&](const std::string& name, std::vector<uint64_t> shape, float scale, bool vector) {
    uint64_t count = 1;
    for (uint64_t d : shape) count *= d;
    values.resize(count);
    std::uniform_real_distribution<float> uniform(-scale, scale);
    for (float& v : values) v = vector ? 1.0f : uniform(rng);
    w.add_tensor(name, vector ? DType::F32 : dtype, std::move(shape), values.data());
  };
  const uint64_t V = uint64_t(c.vocab_size), d = uint64_t(c.dim), H = uint64_t(c.n_heads),
                 Hkv = uint64_t(c.n_kv_heads), F = uint64_t(c.ffn_dim), r = uint64_t(c.feature_dim),
                 h = uint64_t(dh);
  const float scale = 0.05f;
  add(schema::kTokenEmbedding, {V, d}, scale, false);
  if (!c.tied_output) add(schema::kOutput, {V, d}, scale, false);
  add(schema::weight(schema::kOutputNorm), {d}, 0, true);
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const auto p = [&](const std::string& part) { return schema::layer(l, part); };
    add(schema::weight(p(schema::kAttnNorm)), {d}, 0, true);
    add(schema::weight(p(schema::kFfnNorm)), {d}, 0, true);
    add(schema::weight(p(schema::kAttnQ)), {H * h, d}, scale, false);
    add(schema::weight(p(schema::kAttnK)), {Hkv * h, d}, scale, false);
    add(schema::weight(p(schema::kAttnV)), {Hkv * h, d}, scale, false);
    add(schema::weight(p(schema::kAttnO)), {d, H * h}, scale, false);
    if (hp.attention(size_t(l)).is_linear()) {
      add(schema::weight(p(schema::kFeatureMap)), {H, r, h}, scale, false);
      add(schema::bias(p(schema::kFeatureMap)), {H, r}, 0, true);
    }
    add(schema::weight(p(schema::kFfnGate)), {F, d}, scale, false);
    add(schema::weight(p(schema::kFfnUp)), {F, d}, scale, false);
    add(schema::weight(p(schema::kFfnDown)), {d, F}, scale, false);
  }
  return w;
}

}  // namespace t2r::bench
