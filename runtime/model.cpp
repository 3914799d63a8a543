#include "model.h"

#include <cmath>

#include "error.h"
#include "rotary.h"
#include "schema.h"
#include "tokenizer_metadata.h"

namespace t2r {

std::unique_ptr<Model> Model::load(const std::string& path) { return from_file(ModelFile::open(path)); }

std::unique_ptr<Model> Model::from_file(ModelFile file) {
  return std::unique_ptr<Model>(new Model(std::move(file)));
}

Model::Model(ModelFile file) : file_(std::move(file)) {
  cpu::init_kernels();
  const Metadata& m = file_.metadata();
  hp_ = Hyperparams::from_metadata(m);
  const uint64_t V = hp_.vocab_size, d = hp_.dim, H = hp_.n_heads, Hkv = hp_.n_kv_heads, dh = hp_.head_dim,
                 F = hp_.ffn_dim;
  const bool layernorm = hp_.norm == NormKind::LayerNorm;

  auto matrix = [&](const std::string& name, uint64_t rows, uint64_t cols) {
    const TensorInfo& t = file_.require(name, {rows, cols});
    return cpu::Matrix{t.dtype, t.data, size_t(rows), size_t(cols)};  // fit: the tensor lies in the mapped file
  };
  auto vector = [&](const std::string& name, uint64_t n) -> const float* {
    const TensorInfo& t = file_.require(name, {n});
    if (t.dtype != DType::F32) throw Error(file_.label() + ": tensor '" + name + "' must be f32");
    return static_cast<const float*>(t.data);
  };
  // A projection [rows, cols]; its bias is optional unless `bias_required`.
  auto linear = [&](const std::string& part, uint64_t rows, uint64_t cols, bool bias_required = false) {
    const std::string bias = schema::bias(part);
    return Linear{matrix(schema::weight(part), rows, cols),
                  bias_required || file_.find(bias) ? vector(bias, rows) : nullptr};
  };
  auto norm = [&](const std::string& part) {
    return Norm{vector(schema::weight(part), d), layernorm ? vector(schema::bias(part), d) : nullptr};
  };

  // One attention's projections as its spec needs them; `name` spells the file's name of each part.
  const auto attention = [&](const AttentionSpec& spec, uint64_t heads, uint64_t kv_heads, uint64_t head_dim,
                             const auto& name) {
    const bool relu_mlp = spec.is_linear() && spec.linear.feature_map == FeatureMap::ReluMlp;
    const uint64_t r = uint64_t(spec.linear.features);
    AttentionWeights a;
    if (relu_mlp && spec.linear.folded) {
      a.feature_q = linear(name(schema::kFeatureQ), heads * r, d, true);
      a.feature_k = linear(name(schema::kFeatureK), heads * r, d, true);
    } else {
      a.q = linear(name(schema::kAttnQ), heads * head_dim, d);
      a.k = linear(name(schema::kAttnK), kv_heads * head_dim, d);
      if (relu_mlp) {  // stored [H, r, d_h]: used as [H r, d_h], r rows per head
        const std::string map_name = name(schema::kFeatureMap);
        const TensorInfo& map = file_.require(schema::weight(map_name), {heads, r, head_dim});
        const TensorInfo& bias = file_.require(schema::bias(map_name), {heads, r});
        if (bias.dtype != DType::F32) throw Error(file_.label() + ": feature map bias must be f32");
        a.feature_map = Linear{cpu::Matrix{map.dtype, map.data, size_t(heads * r), size_t(head_dim)},
                               static_cast<const float*>(bias.data)};
      }
    }
    if (spec.is_linear() && spec.linear.feature_map == FeatureMap::Hedgehog) {  // [H, r/2, d_h] each
      const auto map = [&](const std::string& part) {
        const TensorInfo& t = file_.require(schema::weight(name(part)), {heads, r / 2, head_dim});
        return Linear{cpu::Matrix{t.dtype, t.data, size_t(heads * (r / 2)), size_t(head_dim)}};
      };
      a.hedgehog_q = map(schema::kHedgehogQ);
      a.hedgehog_k = map(schema::kHedgehogK);
    }
    if (spec.is_linear() && spec.linear.window > 0 && spec.linear.window_mix == WindowMix::SharedNormalizer) {
      a.window_weight = vector(name(schema::kWindowWeight), heads);
    }
    if (spec.is_linear() && spec.linear.decay == Decay::PerHead) a.decay = vector(name(schema::kDecay), heads);
    a.v = linear(name(schema::kAttnV), kv_heads * head_dim, d);
    a.o = linear(name(schema::kAttnO), d, heads * head_dim);
    return a;
  };
  const auto ffn = [&](uint64_t hidden, const auto& name) {
    FfnWeights f;
    if (hp_.ffn == FfnKind::SwiGlu) {  // gelu-tanh and relu: up and down with optional biases
      f.up = Linear{matrix(schema::weight(name(schema::kFfnUp)), hidden, d)};
      f.gate = Linear{matrix(schema::weight(name(schema::kFfnGate)), hidden, d)};
      f.down = Linear{matrix(schema::weight(name(schema::kFfnDown)), d, hidden)};
    } else {
      f.up = linear(name(schema::kFfnUp), hidden, d);
      f.down = linear(name(schema::kFfnDown), d, hidden);
    }
    return f;
  };

  embedding_ = matrix(schema::kTokenEmbedding, V, d);
  output_ = file_.find(schema::kOutput) ? matrix(schema::kOutput, V, d) : embedding_;
  if (hp_.norm_position == NormPosition::Pre) output_norm_ = norm(schema::kOutputNorm);
  for (int64_t l = 0; l < hp_.n_layers; ++l) {
    const auto part = [&](const std::string& name) { return schema::layer(l, name); };
    const LayerSpec& spec = hp_.layers[size_t(l)];
    BlockWeights w;
    w.attn_norm = norm(part(schema::kAttnNorm));
    w.ffn_norm = norm(part(schema::kFfnNorm));
    w.attention = attention(spec.attention, H, Hkv, dh, part);
    if (spec.has_cross) {
      w.cross_norm = norm(part(schema::kCrossNorm));
      w.cross = attention(spec.cross, H, H, dh, [&](const std::string& name) { return part(schema::cross(name)); });
    }
    w.ffn = ffn(F, part);
    blocks_.push_back(w);
  }

  if (hp_.has_encoder()) {
    const Hyperparams::Encoder& e = hp_.encoder;
    const uint64_t eH = e.n_heads, edh = e.head_dim(hp_.dim);
    const std::string embedding = schema::encoder(schema::kTokenEmbedding);
    encoder_embedding_ = file_.find(embedding) ? matrix(embedding, uint64_t(e.vocab_size), d) : embedding_;
    if (encoder_embedding_.rows != uint64_t(e.vocab_size)) {
      throw Error(file_.label() + ": the encoder's vocabulary differs from the decoder's, so '" + embedding +
                  "' must be stored");
    }
    if (e.norm_position == NormPosition::Pre) encoder_output_norm_ = norm(schema::encoder(schema::kOutputNorm));
    for (int64_t l = 0; l < e.n_layers; ++l) {
      const auto part = [&](const std::string& name) { return schema::encoder(schema::layer(l, name)); };
      BlockWeights w;
      w.attn_norm = norm(part(schema::kAttnNorm));
      w.ffn_norm = norm(part(schema::kFfnNorm));
      w.attention = attention(softmax_attention_spec(), eH, eH, edh, part);
      w.ffn = ffn(uint64_t(e.ffn_dim), part);
      encoder_blocks_.push_back(w);
    }
  }

  if (hp_.positions == PositionKind::Learned) {
    const TensorInfo& t = file_.require(schema::kPositionEmbedding, {uint64_t(hp_.max_positions), d});
    if (t.dtype != DType::F32) throw Error(file_.label() + ": tensor '" + schema::kPositionEmbedding + "' must be f32");
    position_table_ = static_cast<const float*>(t.data);
  } else if (hp_.positions == PositionKind::Rotary) {
    position_freq_ = rotary_inverse_frequencies(hp_.rotary, int64_t(dh));
  } else {
    // fairseq: exp(-i ln(10000) / (half - 1)), in float as fairseq computes it.
    const int64_t half = hp_.dim / 2;
    const float step = float(std::log(10000.0) / double(half - 1));
    for (int64_t i = 0; i < half; ++i) position_freq_.push_back(std::exp(float(i) * -step));
  }

  pack_weights();

  // An ids-only model (no tokenizer files at pack time) has no tokenizer keys but may name its eos.
  if (!m.has("tokenizer.bpe_tokens")) {
    const int64_t eos = m.get_int("tokenizer.eos_id", -1);
    if (eos < -1 || eos >= int64_t(V)) throw Error(file_.label() + ": tokenizer.eos_id is outside the vocabulary");
    eos_id_ = int32_t(eos);
    return;
  }
  TokenizerData tok;
  try {
    tok = read_tokenizer_metadata(m, int32_t(V));
  } catch (const Error& e) {
    throw Error(file_.label() + ": " + e.what());
  }
  eos_id_ = tok.eos_id;
  try {
    if (hp_.has_encoder()) {
      TokenizerData source = tok;
      if (m.has(kSourceTokenMap)) source.bpe_to_model = m.get_int_array(kSourceTokenMap);
      source.vocab_size = int32_t(hp_.encoder.vocab_size);
      source_tokenizer_ = std::make_unique<Tokenizer>(std::move(source));
    }
    tokenizer_ = std::make_unique<Tokenizer>(std::move(tok));
  } catch (const Error& e) {
    throw Error(file_.label() + ": " + e.what());  // the tokenizer's messages start with "tokenizer: "
  }
}

// The projections the CPU kernels multiply faster in a layout of their own are copied into it once,
// into one buffer, and their mapped pages released, so that the process holds the weights once; the
// mapped file stays the source for everything else (the token embedding rows, the feature maps
// multiplied head by head, the Vulkan upload), its pages read back in if needed.
void Model::pack_weights() {
  std::vector<cpu::Matrix*> matrices;
  const auto add_attention = [&](AttentionWeights& a) {
    for (Linear* l : {&a.q, &a.k, &a.v, &a.o, &a.feature_q, &a.feature_k}) matrices.push_back(&l->weight);
  };
  for (std::vector<BlockWeights>* blocks : {&blocks_, &encoder_blocks_}) {
    for (BlockWeights& b : *blocks) {
      add_attention(b.attention);
      add_attention(b.cross);
      for (Linear* l : {&b.ffn.up, &b.ffn.gate, &b.ffn.down}) matrices.push_back(&l->weight);
    }
  }
  matrices.push_back(&output_);
  constexpr size_t kAlign = 64;
  size_t total = 0;
  for (const cpu::Matrix* m : matrices) total += (cpu::packed_bytes(*m) + kAlign - 1) / kAlign * kAlign;
  if (total == 0) return;
  packed_.reset(static_cast<unsigned char*>(::operator new(total, std::align_val_t(kAlign))));
  packed_bytes_ = total;
  unsigned char* at = packed_.get();
  for (cpu::Matrix* m : matrices) {
    const size_t bytes = cpu::packed_bytes(*m);
    if (bytes == 0) continue;
    *m = cpu::pack(*m, at);
    file_.release({static_cast<const char*>(m->data), m->rows * row_bytes(m->dtype, m->cols)});
    at += (bytes + kAlign - 1) / kAlign * kAlign;
  }
}

const Tokenizer& Model::source_tokenizer() const {
  if (!hp_.has_encoder()) throw Error(file_.label() + ": this model has no encoder, so no source tokenizer");
  return source_tokenizer_ ? *source_tokenizer_ : tokenizer();
}

const Tokenizer& Model::tokenizer() const {
  if (!tokenizer_) {
    throw Error(file_.label() + ": this model has no tokenizer (it was packed without tokenizer files); it reads "
                "and writes token ids only (t2r-run --ids, --dump-logits, --ppl-ids)");
  }
  return *tokenizer_;
}

uint64_t Model::parameter_count() const {
  uint64_t n = 0;
  for (const auto& t : file_.tensors()) n += t.element_count();
  return n;
}

uint64_t Model::weight_bytes() const {
  uint64_t n = 0;
  for (const auto& t : file_.tensors()) n += t.size;
  return n;
}

}  // namespace t2r
