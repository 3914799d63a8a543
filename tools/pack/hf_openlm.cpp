// model_type "openlm" with attn_name "linear_attn" (SUPRA: TRI-ML/mistral-supra, linear_open_lm):
// config.json and one fp32 torch pickle of the wrapper's state_dict(), pytorch_model.bin. Per layer
// the fused in_proj (rows q | k | v) is split, and the dense layers _totrain_embed (queries) and
// _totrain_embed_kv (keys) that precede the relu are folded into the q and k projections, with
// the key's 1 / sqrt(d_h) (relu(x) / c = relu(x / c) for c > 0); xformers' packed SwiGLU w12 is
// split into gate (first half) and up. The decay is open_lm's fixed gamma_h = exp(-r^(h+1)).
#include <algorithm>
#include <cmath>
#include <map>
#include <memory>

#include "error.h"
#include "hf_common.h"
#include "hf_layouts.h"
#include "hf_rotary_decoder.h"
#include "hyperparams.h"
#include "mapped_file.h"
#include "schema.h"
#include "torch_checkpoint.h"

namespace t2r {
namespace {

constexpr double kRotaryBase = 10000;   // open_lm's RotaryEmbedding default; the config has no key
constexpr float kGroupNormEps = 1e-5f;  // open_lm's GroupNorm, fixed (not norm_eps)

// Y = A B for A [n, k], B [k, m], accumulated along rows of B (contiguous, so it vectorizes).
void multiply(const std::vector<float>& a, const std::vector<float>& b, int64_t n, int64_t k, int64_t m, float* y) {
  std::fill(y, y + n * m, 0.0f);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < k; ++j) {
      const float aij = a[size_t(i * k + j)];
      const float* row = b.data() + j * m;
      float* out = y + i * m;
      for (int64_t c = 0; c < m; ++c) out[c] += aij * row[c];
    }
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

  RotaryDecoder decoder;  // the same decoder under OpenLM's names
  decoder.model_type = "openlm";
  decoder.vocab_size = V;
  decoder.dim = d;
  decoder.ffn_dim = F;
  decoder.n_layers = L;
  decoder.n_heads = H;
  decoder.n_kv_heads = Hkv;
  decoder.head_dim = dh;
  decoder.max_positions = max_positions;
  decoder.norm_eps = eps;
  decoder.rotary.theta = kRotaryBase;
  decoder.attention = supra_attention_spec(dh, kGroupNormEps);
  const AttentionSpec& spec = decoder.attention;
  const Hyperparams hp = rotary_decoder_hyperparams(decoder);
  ImportedModel out;
  hp.to_metadata(out.metadata);
  out.metadata.set("general.source", dir);

  // The matrices are streamed into the file from the mapped pickle, the folds computed a chunk at a time.
  const std::string path = dir + "/pytorch_model.bin";
  const auto checkpoint = std::make_shared<const TorchCheckpoint>(read_torch_state_dict(path));
  std::map<std::string, const TorchTensor*> tensors;  // without the HF wrapper's "model."
  for (const TorchTensor& t : checkpoint->state_dict) {
    const bool wrapped = t.name.compare(0, 6, "model.") == 0;
    if (!tensors.emplace(wrapped ? t.name.substr(6) : t.name, &t).second) {
      throw Error(path + ": tensor '" + t.name + "' appears with and without 'model.'");
    }
  }
  std::map<std::string, bool> used;
  const auto find = [&](const std::string& name, const std::vector<int64_t>& shape) -> const TorchTensor& {
    const auto it = tensors.find(name);
    if (it == tensors.end()) throw Error(path + ": no tensor '" + name + "' (with or without 'model.')");
    if (it->second->shape != shape) throw Error(path + ": tensor '" + name + "' has another shape than expected");
    used[name] = true;
    return *it->second;
  };
  const auto get = [&](const std::string& name, const std::vector<int64_t>& shape) {
    return torch_tensor_to_f32(find(name, shape));
  };
  // Rows [offset, offset + the tensor's rows) of `name`, streamed.
  const auto stream = [&](const std::string& name, const std::vector<int64_t>& shape, int64_t offset = 0) -> RowReader {
    const TorchTensor* t = &find(name, shape);
    return [checkpoint, t, offset](uint64_t first, uint64_t count, float* into) {
      torch_rows_to_f32(*t, offset + int64_t(first), int64_t(count), into);
    };
  };
  // Rows of E W_part, W_part being rows [offset, offset + cols of E) of in_proj, times `scale`.
  const auto folded = [&](const TorchTensor& embed, const TorchTensor& in_proj, int64_t offset, float scale) -> RowReader {
    return [checkpoint, e = &embed, w = &in_proj, offset, scale](uint64_t first, uint64_t count, float* into) {
      const int64_t k = e->shape[1], m = w->shape[1];
      std::vector<float> rows(size_t(int64_t(count) * k)), part(size_t(k * m));
      torch_rows_to_f32(*e, int64_t(first), int64_t(count), rows.data());
      torch_rows_to_f32(*w, offset, k, part.data());
      multiply(rows, part, int64_t(count), k, m, into);
      for (uint64_t i = 0; i < count * uint64_t(m); ++i) into[i] *= scale;
    };
  };
  const auto u = [](int64_t v) { return uint64_t(v); };

  out.add_streamed(schema::kTokenEmbedding, {u(V), u(d)}, stream("tok_embeddings.weight", {V, d}));
  if (!tied) out.add_streamed(schema::kOutput, {u(V), u(d)}, stream("output.weight", {V, d}));
  out.add(schema::weight(schema::kOutputNorm), {u(d)}, get("norm.weight", {d}));
  const double r = std::pow(2.0, -std::pow(2.0, -(std::log2(double(H)) - 3)));
  std::vector<float> decay(static_cast<size_t>(H));
  for (int64_t h = 0; h < H; ++h) decay[size_t(h)] = float(std::exp(-std::pow(r, double(h + 1))));
  for (int64_t l = 0; l < L; ++l) {
    const std::string src = "layers." + std::to_string(l) + ".";
    const auto dst = [&](const std::string& part) { return schema::layer(l, part); };
    out.add(schema::weight(dst(schema::kAttnNorm)), {u(d)}, get(src + "attention_norm.weight", {d}));
    out.add(schema::weight(dst(schema::kFfnNorm)), {u(d)}, get(src + "ffn_norm.weight", {d}));
    const int64_t q_rows = H * dh, kv_rows = Hkv * dh;
    const TorchTensor& in_proj = find(src + "attention.in_proj.weight", {q_rows + 2 * kv_rows, d});
    const TorchTensor& embed_q = find(src + "attention._totrain_embed.weight", {q_rows, q_rows});
    const std::vector<float> embed_q_bias = get(src + "attention._totrain_embed.bias", {q_rows});
    // Without grouped heads, keys go through the queries' dense layer (open_lm has no _kv one then).
    const bool own_kv = Hkv != H || tensors.count(src + "attention._totrain_embed_kv.weight");
    const TorchTensor& embed_k = own_kv ? find(src + "attention._totrain_embed_kv.weight", {kv_rows, kv_rows}) : embed_q;
    std::vector<float> embed_k_bias = own_kv ? get(src + "attention._totrain_embed_kv.bias", {kv_rows}) : embed_q_bias;
    const float key_scale = float(1 / std::sqrt(double(dh)));
    for (float& x : embed_k_bias) x *= key_scale;
    out.add_streamed(schema::weight(dst(schema::kAttnQ)), {u(q_rows), u(d)}, folded(embed_q, in_proj, 0, 1.0f));
    out.add(schema::bias(dst(schema::kAttnQ)), {u(q_rows)}, embed_q_bias);
    out.add_streamed(schema::weight(dst(schema::kAttnK)), {u(kv_rows), u(d)}, folded(embed_k, in_proj, q_rows, key_scale));
    out.add(schema::bias(dst(schema::kAttnK)), {u(kv_rows)}, std::move(embed_k_bias));
    out.add_streamed(schema::weight(dst(schema::kAttnV)), {u(kv_rows), u(d)},
                     stream(src + "attention.in_proj.weight", {q_rows + 2 * kv_rows, d}, q_rows + kv_rows));
    out.add_streamed(schema::weight(dst(schema::kAttnO)), {u(d), u(q_rows)}, stream(src + "attention.out_proj.weight", {d, q_rows}));
    out.add(dst(schema::kDecay), {u(H)}, decay);
    out.add_streamed(schema::weight(dst(schema::kFfnGate)), {u(F), u(d)}, stream(src + "feed_forward.w12.weight", {2 * F, d}));
    out.add_streamed(schema::weight(dst(schema::kFfnUp)), {u(F), u(d)}, stream(src + "feed_forward.w12.weight", {2 * F, d}, F));
    out.add_streamed(schema::weight(dst(schema::kFfnDown)), {u(d), u(F)}, stream(src + "feed_forward.w3.weight", {d, F}));
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
