#include "model.h"

#include <cmath>

#include "error.h"
#include "tokenizer_metadata.h"

namespace t2r {
namespace {

int64_t positive(const Metadata& m, const char* key, int64_t max) {
  int64_t v = m.get_int(key);
  if (v < 1 || v > max) {
    throw Error("model metadata: " + std::string(key) + " = " + std::to_string(v) + " is outside 1.." +
                std::to_string(max));
  }
  return v;
}

float positive_float(const Metadata& m, const char* key) {
  double v = m.get_float(key);
  if (!(v > 0 && v < 1e30)) throw Error("model metadata: " + std::string(key) + " must be a positive number");
  return float(v);
}

template <typename Enum>
Enum choice(const Metadata& m, const char* key, std::initializer_list<std::pair<const char*, Enum>> options) {
  const std::string& value = m.get_string(key);
  std::string allowed;
  for (const auto& [name, e] : options) {
    if (value == name) return e;
    allowed += (allowed.empty() ? "" : ", ") + std::string(name);
  }
  throw Error("model metadata: " + std::string(key) + " = '" + value + "' is not one of " + allowed);
}

}  // namespace

Hyperparams Hyperparams::from_metadata(const Metadata& m) {
  Hyperparams hp;
  hp.architecture = m.get_string("general.architecture");
  hp.vocab_size = positive(m, "model.vocab_size", 1 << 24);
  hp.dim = positive(m, "model.dim", 1 << 16);
  hp.n_layers = positive(m, "model.n_layers", 1024);
  hp.n_heads = positive(m, "model.n_heads", 1024);
  hp.n_kv_heads = positive(m, "model.n_kv_heads", hp.n_heads);
  hp.head_dim = positive(m, "model.head_dim", 1 << 12);
  hp.ffn_dim = positive(m, "model.ffn_dim", 1 << 18);
  hp.max_positions = positive(m, "model.max_positions", int64_t(1) << 40);
  if (hp.n_heads % hp.n_kv_heads != 0) {
    throw Error("model metadata: n_heads " + std::to_string(hp.n_heads) + " is not a multiple of n_kv_heads " +
                std::to_string(hp.n_kv_heads));
  }
  hp.norm = choice<NormKind>(m, "model.norm", {{"layernorm", NormKind::LayerNorm}, {"rmsnorm", NormKind::RmsNorm}});
  hp.norm_eps = positive_float(m, "model.norm_eps");
  hp.ffn = choice<FfnKind>(m, "model.ffn", {{"relu", FfnKind::Relu}, {"swiglu", FfnKind::SwiGlu}});
  hp.embedding_scale = positive_float(m, "model.embedding_scale");
  hp.positions = choice<PositionKind>(m, "model.positions",
                                      {{"sinusoidal", PositionKind::Sinusoidal}, {"rotary", PositionKind::Rotary}});
  if (hp.positions == PositionKind::Sinusoidal) {
    hp.position_offset = m.get_int("model.position_offset");
    if (hp.position_offset < 0 || hp.position_offset > 1024) throw Error("model metadata: model.position_offset out of range");
    if (hp.dim % 2 != 0 || hp.dim < 4) throw Error("model metadata: sinusoidal positions need an even dim >= 4");
  } else {
    hp.rope_theta = positive_float(m, "model.rope_theta");
    if (hp.head_dim % 2 != 0) throw Error("model metadata: rotary positions need an even head_dim");
  }
  hp.attention = choice<AttentionKind>(
      m, "attention.kind", {{"softmax", AttentionKind::Softmax}, {"t2r", AttentionKind::T2R}, {"elu", AttentionKind::Elu}});
  if (hp.attention == AttentionKind::T2R) {
    hp.feature_dim = positive(m, "attention.feature_dim", 1 << 14);
    hp.feature_map_folded = m.get_int("attention.feature_map_folded", 0) != 0;
    if (hp.feature_map_folded && hp.positions == PositionKind::Rotary) {
      throw Error("model metadata: a folded feature map cannot be combined with rotary positions");
    }
  } else if (hp.attention == AttentionKind::Elu) {
    hp.feature_dim = hp.head_dim;
  }
  if (hp.linear_attention()) hp.denominator_floor = positive_float(m, "attention.denominator_floor");
  return hp;
}

std::unique_ptr<Model> Model::load(const std::string& path) { return from_file(ModelFile::open(path)); }

std::unique_ptr<Model> Model::from_file(ModelFile file) {
  return std::unique_ptr<Model>(new Model(std::move(file)));
}

Model::Model(ModelFile file) : file_(std::move(file)) {
  cpu::init_kernels();
  const Metadata& m = file_.metadata();
  hp_ = Hyperparams::from_metadata(m);
  const uint64_t V = hp_.vocab_size, d = hp_.dim, H = hp_.n_heads, Hkv = hp_.n_kv_heads, dh = hp_.head_dim,
                 r = hp_.feature_dim, F = hp_.ffn_dim;
  const bool layernorm = hp_.norm == NormKind::LayerNorm;

  auto matrix = [&](const std::string& name, uint64_t rows, uint64_t cols) {
    const TensorInfo& t = file_.require(name, {rows, cols});
    return cpu::Matrix{t.dtype, t.data, rows, cols};
  };
  auto vector = [&](const std::string& name, uint64_t n) -> const float* {
    const TensorInfo& t = file_.require(name, {n});
    if (t.dtype != DType::F32) throw Error(file_.label() + ": tensor '" + name + "' must be f32");
    return static_cast<const float*>(t.data);
  };
  auto optional_vector = [&](const std::string& name, uint64_t n) -> const float* {
    return file_.find(name) ? vector(name, n) : nullptr;
  };
  auto norm = [&](const std::string& prefix) {
    return Norm{vector(prefix + ".weight", d), layernorm ? vector(prefix + ".bias", d) : nullptr};
  };

  embedding_ = matrix("token_embedding", V, d);
  output_ = file_.find("output") ? matrix("output", V, d) : embedding_;
  output_norm_ = norm("output_norm");
  for (int64_t l = 0; l < hp_.n_layers; ++l) {
    const std::string p = "layers." + std::to_string(l) + ".";
    LayerWeights w;
    w.attn_norm = norm(p + "attn_norm");
    w.ffn_norm = norm(p + "ffn_norm");
    if (hp_.feature_map_folded) {
      w.feature_q = matrix(p + "attn.feature_q.weight", H * r, d);
      w.feature_q_bias = vector(p + "attn.feature_q.bias", H * r);
      w.feature_k = matrix(p + "attn.feature_k.weight", H * r, d);
      w.feature_k_bias = vector(p + "attn.feature_k.bias", H * r);
    } else {
      w.q = matrix(p + "attn.q.weight", H * dh, d);
      w.q_bias = optional_vector(p + "attn.q.bias", H * dh);
      w.k = matrix(p + "attn.k.weight", Hkv * dh, d);
      w.k_bias = optional_vector(p + "attn.k.bias", Hkv * dh);
      if (hp_.attention == AttentionKind::T2R) {
        const TensorInfo& fm = file_.require(p + "attn.feature_map.weight", {H, r, dh});
        w.feature_map = cpu::Matrix{fm.dtype, fm.data, H * r, dh};
        const TensorInfo& fb = file_.require(p + "attn.feature_map.bias", {H, r});
        if (fb.dtype != DType::F32) throw Error(file_.label() + ": feature map bias must be f32");
        w.feature_map_bias = static_cast<const float*>(fb.data);
      }
    }
    w.v = matrix(p + "attn.v.weight", Hkv * dh, d);
    w.v_bias = optional_vector(p + "attn.v.bias", Hkv * dh);
    w.o = matrix(p + "attn.o.weight", d, H * dh);
    w.o_bias = optional_vector(p + "attn.o.bias", d);
    w.up = matrix(p + "ffn.up.weight", F, d);
    w.down = matrix(p + "ffn.down.weight", d, F);
    if (hp_.ffn == FfnKind::SwiGlu) {
      w.gate = matrix(p + "ffn.gate.weight", F, d);
    } else {
      w.up_bias = optional_vector(p + "ffn.up.bias", F);
      w.down_bias = optional_vector(p + "ffn.down.bias", d);
    }
    layers_.push_back(w);
  }

  if (hp_.positions == PositionKind::Rotary) {
    // As Hugging Face computes it: 1 / theta^(2i / d_h), rounded to float.
    for (uint64_t i = 0; i < dh / 2; ++i) {
      position_freq_.push_back(float(1.0 / std::pow(hp_.rope_theta, double(2 * i) / double(dh))));
    }
  } else {
    // fairseq: exp(-i ln(10000) / (half - 1)), in float as fairseq computes it.
    const int64_t half = hp_.dim / 2;
    const float step = float(std::log(10000.0) / double(half - 1));
    for (int64_t i = 0; i < half; ++i) position_freq_.push_back(std::exp(float(i) * -step));
  }

  TokenizerData tok;
  try {
    tok = read_tokenizer_metadata(m, int32_t(V));
  } catch (const Error& e) {
    throw Error(file_.label() + ": " + e.what());
  }
  try {
    tokenizer_ = std::make_unique<Tokenizer>(std::move(tok));
  } catch (const Error& e) {
    throw Error(file_.label() + ": " + e.what());  // the tokenizer's messages start with "tokenizer: "
  }
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
