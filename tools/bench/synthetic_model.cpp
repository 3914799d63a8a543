#include "synthetic_model.h"

#include <random>
#include <vector>

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
  ModelWriter w;
  Metadata& m = w.metadata();
  const int64_t dh = c.dim / c.n_heads;
  m.set("general.architecture", std::string("llama"));
  m.set("general.source", "synthetic " + c.name + (t2r ? " t2r" : " softmax"));
  m.set("model.vocab_size", c.vocab_size);
  m.set("model.dim", c.dim);
  m.set("model.n_layers", c.n_layers);
  m.set("model.n_heads", c.n_heads);
  m.set("model.n_kv_heads", c.n_kv_heads);
  m.set("model.head_dim", dh);
  m.set("model.ffn_dim", c.ffn_dim);
  m.set("model.norm", std::string("rmsnorm"));
  m.set("model.norm_eps", 1e-5);
  m.set("model.ffn", std::string("swiglu"));
  m.set("model.embedding_scale", 1.0);
  m.set("model.positions", std::string("rotary"));
  m.set("model.rope_theta", 10000.0);
  m.set("model.max_positions", int64_t(1) << 20);
  m.set("attention.kind", std::string(t2r ? "t2r" : "softmax"));
  if (t2r) {
    m.set("attention.feature_dim", c.feature_dim);
    m.set("attention.denominator_floor", 0.01);
  }
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
  add("token_embedding", {V, d}, scale, false);
  if (!c.tied_output) add("output", {V, d}, scale, false);
  add("output_norm.weight", {d}, 0, true);
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const std::string p = "layers." + std::to_string(l) + ".";
    add(p + "attn_norm.weight", {d}, 0, true);
    add(p + "ffn_norm.weight", {d}, 0, true);
    add(p + "attn.q.weight", {H * h, d}, scale, false);
    add(p + "attn.k.weight", {Hkv * h, d}, scale, false);
    add(p + "attn.v.weight", {Hkv * h, d}, scale, false);
    add(p + "attn.o.weight", {d, H * h}, scale, false);
    if (t2r) {
      add(p + "attn.feature_map.weight", {H, r, h}, scale, false);
      add(p + "attn.feature_map.bias", {H, r}, 0, true);
    }
    add(p + "ffn.gate.weight", {F, d}, scale, false);
    add(p + "ffn.up.weight", {F, d}, scale, false);
    add(p + "ffn.down.weight", {d, F}, scale, false);
  }
  return w;
}

}  // namespace t2r::bench
