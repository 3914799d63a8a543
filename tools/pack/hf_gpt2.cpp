// model_type "gpt2": learned positions added to the token embedding, LayerNorm before attention
// and feed-forward, a fused c_attn projection, gelu_new, the output tied to the embedding. Its
// Conv1D layers store weights as [in, out], the transpose of t2r's [out, in].
#include "hf_common.h"
#include "hf_layouts.h"
#include "hf_tensors.h"
#include "hyperparams.h"
#include "schema.h"

namespace t2r {
namespace {

// A Conv1D weight [in, out], columns [first, first + count), as t2r's [count, in].
std::vector<float> conv1d_columns(const std::vector<float>& w, int64_t in, int64_t out, int64_t first, int64_t count) {
  std::vector<float> m(size_t(count * in));
  for (int64_t r = 0; r < count; ++r) {
    for (int64_t c = 0; c < in; ++c) m[size_t(r * in + c)] = w[size_t(c * out + first + r)];
  }
  return m;
}

}  // namespace

ImportedModel import_hf_gpt2(HfConfig& config, const std::string& dir) {
  check_storage_dtype(config);
  const int64_t V = config.at("vocab_size").as_int(), d = config.at("n_embd").as_int(),
                L = config.at("n_layer").as_int(), H = config.at("n_head").as_int(),
                P = config.integer("n_positions", 1024);
  const int64_t F = config.integer("n_inner", 4 * d);  // null: 4 d
  if (V <= 0 || d <= 0 || L <= 0 || H <= 0 || P <= 0 || F <= 0 || d % H != 0) config.unsupported("inconsistent sizes");
  if (const json::Value* ctx = config.find("n_ctx"); ctx && ctx->as_int() != P) {  // an older name of n_positions
    config.unsupported("\"n_ctx\": " + json_text(*ctx) + " differs from \"n_positions\": " + std::to_string(P));
  }
  const json::Value* act = config.find("activation_function");
  if (act && act->as_string() != "gelu_new" && act->as_string() != "gelu_pytorch_tanh") {
    config.unsupported("\"activation_function\": " + json_text(*act) + " (t2r computes gelu_new)");
  }
  const double eps = config.number("layer_norm_epsilon", 1e-5);
  config.require_absent_or("scale_attn_weights", json::Value::boolean(true));
  config.require_absent_or("scale_attn_by_inverse_layer_idx", json::Value::boolean(false));
  config.require_absent_or("add_cross_attention", json::Value::boolean(false));
  config.find("reorder_and_upcast_attn");  // only the order and precision of the same product
  const bool tied = config.flag("tie_word_embeddings", true);
  const int64_t dh = d / H;
  const AttentionSpec spec = read_t2r_block(config, dh);
  check_length_adaptive(config);
  const int64_t eos_id = read_eos(config, V);
  config.check_all_read();

  Hyperparams hp;
  hp.architecture = "gpt2";
  hp.vocab_size = V;
  hp.dim = d;
  hp.n_layers = L;
  hp.n_heads = hp.n_kv_heads = H;
  hp.head_dim = dh;
  hp.ffn_dim = F;
  hp.norm = NormKind::LayerNorm;
  hp.norm_eps = float(eps);
  hp.ffn = FfnKind::GeluTanh;
  hp.embedding_scale = 1;
  hp.positions = PositionKind::Learned;
  hp.max_positions = P;
  hp.layers.assign(size_t(L), LayerSpec{spec});
  ImportedModel out;
  hp.to_metadata(out.metadata);
  out.metadata.set("general.source", dir);

  HfTensors source(dir);
  // GPT2LMHeadModel saves its transformer under "transformer."; the original checkpoints do not.
  const std::string root = source.has("transformer.wte.weight") ? "transformer." : "";
  const auto u = [](int64_t v) { return uint64_t(v); };
  out.add(schema::kTokenEmbedding, {u(V), u(d)}, source.get(root + "wte.weight", {V, d}));
  out.add(schema::kPositionEmbedding, {u(P), u(d)}, source.get(root + "wpe.weight", {P, d}));
  if (!tied) {
    out.add(schema::kOutput, {u(V), u(d)}, source.get("lm_head.weight", {V, d}));
  } else if (source.has("lm_head.weight")) {
    config.unsupported("tie_word_embeddings is true but lm_head.weight is present");
  }
  const auto norm = [&](const std::string& dst, const std::string& src) {
    out.add(schema::weight(dst), {u(d)}, source.get(src + ".weight", {d}));
    out.add(schema::bias(dst), {u(d)}, source.get(src + ".bias", {d}));
  };
  norm(schema::kOutputNorm, root + "ln_f");
  for (int64_t l = 0; l < L; ++l) {
    const std::string src = root + "h." + std::to_string(l) + ".";
    const auto dst = [&](const std::string& part) { return schema::layer(l, part); };
    // Conv1D `from` [in, out] with bias [out]: columns [first, first + rows) become `part`.
    const auto conv1d = [&](const std::string& part, const std::vector<float>& w, const std::vector<float>& b, int64_t in,
                            int64_t width, int64_t first, int64_t rows) {
      out.add(schema::weight(dst(part)), {u(rows), u(in)}, conv1d_columns(w, in, width, first, rows));
      out.add(schema::bias(dst(part)), {u(rows)}, std::vector<float>(b.begin() + first, b.begin() + first + rows));
    };
    norm(dst(schema::kAttnNorm), src + "ln_1");
    norm(dst(schema::kFfnNorm), src + "ln_2");
    const std::vector<float> qkv = source.get(src + "attn.c_attn.weight", {d, 3 * d}),
                             qkv_bias = source.get(src + "attn.c_attn.bias", {3 * d});
    conv1d(schema::kAttnQ, qkv, qkv_bias, d, 3 * d, 0, d);
    conv1d(schema::kAttnK, qkv, qkv_bias, d, 3 * d, d, d);
    conv1d(schema::kAttnV, qkv, qkv_bias, d, 3 * d, 2 * d, d);
    conv1d(schema::kAttnO, source.get(src + "attn.c_proj.weight", {d, d}), source.get(src + "attn.c_proj.bias", {d}), d,
           d, 0, d);
    if (spec.is_linear() && spec.linear.feature_map == FeatureMap::ReluMlp) {
      const int64_t r = spec.linear.features;
      out.add(schema::weight(dst(schema::kFeatureMap)), {u(H), u(r), u(dh)},
              source.get(src + "attn.feature_map.weight", {H, r, dh}));
      out.add(schema::bias(dst(schema::kFeatureMap)), {u(H), u(r)}, source.get(src + "attn.feature_map.bias", {H, r}));
    }
    conv1d(schema::kFfnUp, source.get(src + "mlp.c_fc.weight", {d, F}), source.get(src + "mlp.c_fc.bias", {F}), d, F,
           0, F);
    conv1d(schema::kFfnDown, source.get(src + "mlp.c_proj.weight", {F, d}), source.get(src + "mlp.c_proj.bias", {d}), F,
           d, 0, d);
  }
  put_hf_tokenizer(out, dir, V, eos_id);
  out.description = "Hugging Face gpt2, " + attention_text(spec) + ", " + std::to_string(L) + " layers, d " +
                    std::to_string(d) + ", " + std::to_string(H) + " heads, ffn " + std::to_string(F) + ", vocab " +
                    std::to_string(V);
  return out;
}

}  // namespace t2r
