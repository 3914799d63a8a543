// model_type "openlm" with attn_name "linear_attn" (SUPRA: TRI-ML/mistral-supra, linear_open_lm):
// config.json and one fp32 torch pickle of the wrapper's state_dict(), pytorch_model.bin. Per layer
// the fused in_proj (rows q | k | v) is split, and the dense layers _totrain_embed (queries) and
// _totrain_embed_kv (keys) that precede the relu are folded into the q and k projections, with
// the key's 1 / sqrt(d_h) (relu(x) / c = relu(x / c) for c > 0); xformers' packed SwiGLU w12 is
// split into gate (first half) and up. The decay is open_lm's fixed gamma_h = exp(-r^(h+1)).
#include <cmath>
#include <map>

#include "error.h"
#include "hf_common.h"
#include "hf_layouts.h"
#include "hyperparams.h"
#include "mapped_file.h"
#include "schema.h"
#include "torch_checkpoint.h"

namespace t2r {
namespace {

constexpr double kRotaryBase = 10000;   // open_lm's RotaryEmbedding default; the config has no key
constexpr float kGroupNormEps = 1e-5f;  // open_lm's GroupNorm, fixed (not norm_eps)

// Y = A B for A [n, k], B [k, m].
std::vector<float> matmul(const std::vector<float>& a, const std::vector<float>& b, int64_t n, int64_t k, int64_t m) {
  std::vector<float> y(size_t(n * m), 0.0f);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < k; ++j) {
      const double aij = a[size_t(i * k + j)];
      for (int64_t c = 0; c < m; ++c) y[size_t(i * m + c)] += float(aij * b[size_t(j * m + c)]);
    }
  return y;
}

}  // namespace

ImportedModel import_hf_openlm(HfConfig& config, const std::string& dir) {
  const auto require = [&](const char* key, const json::Value& value) {
    const json::Value* v = config.find(key);
    if (!v || json_text(*v) != json_text(value)) {
      config.unsupported(std::string("\"") + key + "\": " + (v ? json_text(*v) : "absent") + " (t2r reads " +
                         json_text(value) + ")");
    }
  };
  require("attn_name", json::Value::string("linear_attn"));
  require("positional_embedding_type", json::Value::string("rotary"));
  require("ffn_type", json::Value::string("swiglu"));
  require("norm_type", json::Value::string("rms_norm"));
  require("use_decay", json::Value::boolean(true));
  config.require_absent_or("apply_qk_norm", json::Value::boolean(false));
  config.require_absent_or("use_retnet_slopes", json::Value::boolean(false));
  config.require_absent_or("decay_start", json::Value());
  const int64_t V = config.at("vocab_size").as_int(), d = config.at("dim").as_int(),
                F = config.at("intermediate_dim_ffn").as_int(), L = config.at("n_layers").as_int(),
                H = config.at("n_heads").as_int(), Hkv = config.integer("n_heads_kv", H);
  if (V <= 0 || d <= 0 || F <= 0 || L <= 0 || H <= 0 || Hkv <= 0 || H % Hkv != 0 || d % H != 0) {
    config.unsupported("inconsistent sizes");
  }
  const int64_t dh = d / H;
  if (config.integer("qk_head_dim", dh) != dh || config.integer("v_head_dim", dh) != dh || dh % 2 != 0) {
    config.unsupported("qk_head_dim and v_head_dim must equal dim / n_heads, an even number");
  }
  // open_lm's get_slopes: r = 2^(-2^(-(log2 H - 3))), gamma_h = exp(-r^(h+1)); only for H a power of 2.
  if ((H & (H - 1)) != 0) config.unsupported("n_heads " + std::to_string(H) + " (open_lm's decay needs a power of 2)");
  const bool tied = config.flag("weight_tying", false);
  const double eps = config.number("norm_eps", 1e-5);
  const int64_t max_positions = config.integer("seq_len", 2048);
  config.check_all_read();

  int64_t eos_id = -1;
  if (is_regular_file(dir + "/generation_config.json")) {
    HfConfig generation(dir + "/generation_config.json");
    eos_id = read_eos(generation, V);
  }

  Hyperparams hp;
  hp.architecture = "openlm";
  hp.vocab_size = V;
  hp.dim = d;
  hp.n_layers = L;
  hp.n_heads = H;
  hp.n_kv_heads = Hkv;
  hp.head_dim = dh;
  hp.ffn_dim = F;
  hp.norm = NormKind::RmsNorm;
  hp.norm_eps = float(eps);
  hp.ffn = FfnKind::SwiGlu;
  hp.positions = PositionKind::Rotary;
  hp.rotary.theta = kRotaryBase;
  hp.max_positions = max_positions;
  const AttentionSpec spec = supra_attention_spec(dh, kGroupNormEps);
  hp.layers.assign(size_t(L), LayerSpec{spec});
  ImportedModel out;
  hp.to_metadata(out.metadata);
  out.metadata.set("general.source", dir);

  const std::string path = dir + "/pytorch_model.bin";
  const TorchCheckpoint checkpoint = read_torch_state_dict(path);
  std::map<std::string, const TorchTensor*> tensors;  // without the HF wrapper's "model."
  for (const TorchTensor& t : checkpoint.state_dict) {
    const bool wrapped = t.name.compare(0, 6, "model.") == 0;
    if (!tensors.emplace(wrapped ? t.name.substr(6) : t.name, &t).second) {
      throw Error(path + ": tensor '" + t.name + "' appears with and without 'model.'");
    }
  }
  std::map<std::string, bool> used;
  const auto get = [&](const std::string& name, const std::vector<int64_t>& shape) {
    const auto it = tensors.find(name);
    if (it == tensors.end()) throw Error(path + ": no tensor '" + name + "' (with or without 'model.')");
    if (it->second->shape != shape) throw Error(path + ": tensor '" + name + "' has another shape than expected");
    used[name] = true;
    return torch_tensor_to_f32(*it->second);
  };
  const auto u = [](int64_t v) { return uint64_t(v); };
  const auto rows = [](const std::vector<float>& w, int64_t first, int64_t count, int64_t cols) {
    return std::vector<float>(w.begin() + first * cols, w.begin() + (first + count) * cols);
  };

  out.add(schema::kTokenEmbedding, {u(V), u(d)}, get("tok_embeddings.weight", {V, d}));
  if (!tied) out.add(schema::kOutput, {u(V), u(d)}, get("output.weight", {V, d}));
  out.add(schema::weight(schema::kOutputNorm), {u(d)}, get("norm.weight", {d}));
  const double r = std::pow(2.0, -std::pow(2.0, -(std::log2(double(H)) - 3)));
  std::vector<float> decay(static_cast<size_t>(H));
  for (int64_t h = 0; h < H; ++h) decay[size_t(h)] = float(std::exp(-std::pow(r, double(h + 1))));
  for (int64_t l = 0; l < L; ++l) {
    const std::string src = "layers." + std::to_string(l) + ".";
    const auto dst = [&](const std::string& part) { return schema::layer(l, part); };
    out.add(schema::weight(dst(schema::kAttnNorm)), {u(d)}, get(src + "attention_norm.weight", {d}));
    out.add(schema::weight(dst(schema::kFfnNorm)), {u(d)}, get(src + "ffn_norm.weight", {d}));
    const std::vector<float> in_proj = get(src + "attention.in_proj.weight", {(H + 2 * Hkv) * dh, d});
    const int64_t q_rows = H * dh, kv_rows = Hkv * dh;
    const std::vector<float> embed_q = get(src + "attention._totrain_embed.weight", {q_rows, q_rows});
    const std::vector<float> embed_q_bias = get(src + "attention._totrain_embed.bias", {q_rows});
    // Without grouped heads, keys go through the queries' dense layer (open_lm has no _kv one then).
    const bool own_kv = Hkv != H || tensors.count(src + "attention._totrain_embed_kv.weight");
    std::vector<float> embed_k = own_kv ? get(src + "attention._totrain_embed_kv.weight", {kv_rows, kv_rows}) : embed_q;
    std::vector<float> embed_k_bias = own_kv ? get(src + "attention._totrain_embed_kv.bias", {kv_rows}) : embed_q_bias;
    out.add(schema::weight(dst(schema::kAttnQ)), {u(q_rows), u(d)}, matmul(embed_q, rows(in_proj, 0, q_rows, d), q_rows, q_rows, d));
    out.add(schema::bias(dst(schema::kAttnQ)), {u(q_rows)}, embed_q_bias);
    const float key_scale = float(1 / std::sqrt(double(dh)));
    std::vector<float> k = matmul(embed_k, rows(in_proj, q_rows, kv_rows, d), kv_rows, kv_rows, d);
    for (float& x : k) x *= key_scale;
    for (float& x : embed_k_bias) x *= key_scale;
    out.add(schema::weight(dst(schema::kAttnK)), {u(kv_rows), u(d)}, std::move(k));
    out.add(schema::bias(dst(schema::kAttnK)), {u(kv_rows)}, std::move(embed_k_bias));
    out.add(schema::weight(dst(schema::kAttnV)), {u(kv_rows), u(d)}, rows(in_proj, q_rows + kv_rows, kv_rows, d));
    out.add(schema::weight(dst(schema::kAttnO)), {u(d), u(q_rows)}, get(src + "attention.out_proj.weight", {d, q_rows}));
    out.add(dst(schema::kDecay), {u(H)}, decay);
    const std::vector<float> w12 = get(src + "feed_forward.w12.weight", {2 * F, d});
    out.add(schema::weight(dst(schema::kFfnGate)), {u(F), u(d)}, rows(w12, 0, F, d));
    out.add(schema::weight(dst(schema::kFfnUp)), {u(F), u(d)}, rows(w12, F, F, d));
    out.add(schema::weight(dst(schema::kFfnDown)), {u(d), u(F)}, get(src + "feed_forward.w3.weight", {d, F}));
  }
  for (const auto& [name, tensor] : tensors) {
    if (!used.count(name)) throw Error(path + ": unexpected tensor '" + tensor->name + "'");
  }

  put_hf_tokenizer(out, dir, V, eos_id);
  out.description = "OpenLM (SUPRA), " + attention_text(spec) + ", group-norm readout, " + std::to_string(L) +
                    " layers, d " + std::to_string(d) + ", " + std::to_string(H) + " heads / " + std::to_string(Hkv) +
                    " kv heads, ffn " + std::to_string(F) + ", vocab " + std::to_string(V);
  return out;
}

}  // namespace t2r
