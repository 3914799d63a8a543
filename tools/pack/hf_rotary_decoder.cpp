#include "hf_rotary_decoder.h"

#include "hf_common.h"
#include "hf_rotary.h"
#include "hf_tensors.h"
#include "hyperparams.h"
#include "schema.h"

namespace t2r {
RotaryDecoder read_rotary_decoder(HfConfig& config, const std::string& model_type) {
  RotaryDecoder m;
  m.model_type = model_type;
  if (const json::Value* act = config.find("hidden_act"); act && act->as_string() != "silu") {
    config.unsupported("\"hidden_act\": " + json_text(*act));
  }
  check_storage_dtype(config);
  config.require_absent_or("partial_rotary_factor", json::Value::number(1));
  config.require_absent_or("attention_logit_softcapping", json::Value());
  config.require_absent_or("final_logit_softcapping", json::Value());

  m.vocab_size = config.at("vocab_size").as_int();
  m.dim = config.at("hidden_size").as_int();
  m.ffn_dim = config.at("intermediate_size").as_int();
  m.n_layers = config.at("num_hidden_layers").as_int();
  m.n_heads = config.at("num_attention_heads").as_int();
  m.n_kv_heads = config.integer("num_key_value_heads", m.n_heads);
  if (m.vocab_size <= 0 || m.dim <= 0 || m.ffn_dim <= 0 || m.n_layers <= 0 || m.n_heads <= 0 || m.n_kv_heads <= 0 ||
      m.n_heads % m.n_kv_heads != 0) {
    config.unsupported("inconsistent sizes");
  }
  m.head_dim = config.integer("head_dim", m.dim / m.n_heads);
  if (m.head_dim <= 0 || m.head_dim % 2 != 0) config.unsupported("head_dim must be positive and even");
  m.norm_eps = config.number("rms_norm_eps", 1e-6);
  m.max_positions = config.integer("max_position_embeddings", 2048);
  m.tied = config.flag("tie_word_embeddings", false);
  m.rotary = read_hf_rotary(config, m.max_positions);
  m.attention = read_t2r_block(config, m.head_dim);
  check_length_adaptive(config);
  return m;
}

Hyperparams rotary_decoder_hyperparams(const RotaryDecoder& m) {
  Hyperparams hp;
  hp.architecture = m.model_type;
  hp.vocab_size = m.vocab_size;
  hp.dim = m.dim;
  hp.n_layers = m.n_layers;
  hp.n_heads = m.n_heads;
  hp.n_kv_heads = m.n_kv_heads;
  hp.head_dim = m.head_dim;
  hp.ffn_dim = m.ffn_dim;
  hp.norm = NormKind::RmsNorm;
  hp.norm_eps = float(m.norm_eps);
  hp.ffn = FfnKind::SwiGlu;
  hp.embedding_scale = 1;
  hp.positions = PositionKind::Rotary;
  hp.rotary = m.rotary;
  hp.max_positions = m.max_positions;
  AttentionSpec spec = m.attention;
  if (!spec.is_linear()) spec.window = m.sliding_window;  // linear attention reads its whole state
  hp.layers.assign(size_t(m.n_layers), LayerSpec{spec});
  return hp;
}

ImportedModel build_rotary_decoder(const RotaryDecoder& m, HfConfig& config, const std::string& dir) {
  const int64_t eos_id = read_eos(config, m.vocab_size);
  config.check_all_read();

  const int64_t V = m.vocab_size, d = m.dim, F = m.ffn_dim, L = m.n_layers, H = m.n_heads, Hkv = m.n_kv_heads,
                dh = m.head_dim;
  const Hyperparams hp = rotary_decoder_hyperparams(m);
  const AttentionSpec& spec = hp.attention(0);
  ImportedModel out;
  hp.to_metadata(out.metadata);
  out.metadata.set("general.source", dir);

  const auto shared = std::make_shared<const HfTensors>(dir);
  const HfTensors& source = *shared;
  const auto u = [](int64_t v) { return uint64_t(v); };
  // The matrices are streamed into the file (read, converted, written and dropped a chunk at a time).
  out.add_streamed(schema::kTokenEmbedding, {u(V), u(d)}, stream_rows(shared, "model.embed_tokens.weight", {V, d}));
  if (!m.tied) {
    out.add_streamed(schema::kOutput, {u(V), u(d)}, stream_rows(shared, "lm_head.weight", {V, d}));
  } else if (source.has("lm_head.weight")) {
    config.unsupported("tie_word_embeddings is true but lm_head.weight is present");
  }
  out.add(schema::weight(schema::kOutputNorm), {u(d)}, source.get("model.norm.weight", {d}));
  for (int64_t l = 0; l < L; ++l) {
    const std::string src = "model.layers." + std::to_string(l) + ".";
    const auto dst = [&](const std::string& part) { return schema::layer(l, part); };
    // A projection [rows, cols] and, when the layout has one, its bias [rows].
    const auto linear = [&](const std::string& part, const std::string& from, int64_t rows, int64_t cols, bool bias) {
      const std::string name = src + from + ".weight";
      RowReader base = stream_rows(shared, name, {rows, cols});
      if (const auto adapter = m.low_rank.find(name); adapter != m.low_rank.end()) {
        // The reader runs when the file is written, after `m` is gone: it keeps its own copy.
        const auto lora = std::make_shared<const RotaryDecoder::LowRank>(adapter->second);
        base = [base, lora, cols](uint64_t first, uint64_t count, float* into) {
          base(first, count, into);
          for (uint64_t r = 0; r < count; ++r) {
            for (int64_t k = 0; k < lora->rank; ++k) {
              const float b = lora->scale * lora->b[size_t((first + r) * uint64_t(lora->rank) + uint64_t(k))];
              const float* a = lora->a.data() + size_t(k * cols);
              for (int64_t i = 0; i < cols; ++i) into[r * uint64_t(cols) + uint64_t(i)] += b * a[i];
            }
          }
        };
      }
      out.add_streamed(schema::weight(dst(part)), {u(rows), u(cols)}, std::move(base));
      if (bias) out.add(schema::bias(dst(part)), {u(rows)}, source.get(src + from + ".bias", {rows}));
    };
    out.add(schema::weight(dst(schema::kAttnNorm)), {u(d)}, source.get(src + "input_layernorm.weight", {d}));
    out.add(schema::weight(dst(schema::kFfnNorm)), {u(d)}, source.get(src + "post_attention_layernorm.weight", {d}));
    linear(schema::kAttnQ, "self_attn.q_proj", H * dh, d, m.qkv_bias);
    linear(schema::kAttnK, "self_attn.k_proj", Hkv * dh, d, m.qkv_bias);
    linear(schema::kAttnV, "self_attn.v_proj", Hkv * dh, d, m.qkv_bias);
    linear(schema::kAttnO, "self_attn.o_proj", d, H * dh, m.o_bias);
    if (spec.is_linear() && spec.linear.feature_map == FeatureMap::ReluMlp) {
      const int64_t r = spec.linear.features;
      out.add(schema::weight(dst(schema::kFeatureMap)), {u(H), u(r), u(dh)},
              source.get(src + "self_attn.feature_map.weight", {H, r, dh}));
      out.add(schema::bias(dst(schema::kFeatureMap)), {u(H), u(r)}, source.get(src + "self_attn.feature_map.bias", {H, r}));
    }
    linear(schema::kFfnGate, "mlp.gate_proj", F, d, false);
    linear(schema::kFfnUp, "mlp.up_proj", F, d, false);
    linear(schema::kFfnDown, "mlp.down_proj", d, F, false);
  }

  for (const ImportedTensor& t : m.attention_tensors) out.add(t.name, t.shape, t.values);
  put_hf_tokenizer(out, dir, V, eos_id);
  out.description = "Hugging Face " + m.model_type + ", " + attention_text(spec) +
                    (spec.window > 0 ? ", sliding window " + std::to_string(spec.window) : "") + ", " +
                    std::to_string(L) + " layers, d " + std::to_string(d) + ", " + std::to_string(H) + " heads / " +
                    std::to_string(Hkv) + " kv heads, ffn " + std::to_string(F) + ", vocab " + std::to_string(V);
  return out;
}

}  // namespace t2r
