#include "hyperparams.h"

#include <algorithm>
#include <cmath>

#include "error.h"

namespace t2r {
namespace {

const std::string kWhere = "model metadata: ";

int64_t positive(const Metadata& m, const char* key, int64_t max) {
  int64_t v = m.get_int(key);
  if (v < 1 || v > max) {
    throw Error(kWhere + key + " = " + std::to_string(v) + " is outside 1.." + std::to_string(max));
  }
  return v;
}

float positive_float(const Metadata& m, const char* key) {
  double v = m.get_float(key);
  if (!(v > 0 && v < 1e30)) throw Error(kWhere + key + " must be a positive number");
  return float(v);
}

// Per layer: attention.layer_kinds when the model mixes kinds ("hybrid"), else attention.kind for all.
std::vector<std::string> layer_kinds(const Metadata& m, size_t n_layers) {
  const std::string& kind = m.get_string("attention.kind");
  if (kind != "hybrid") return std::vector<std::string>(n_layers, kind);
  const std::vector<std::string>& kinds = m.get_string_array("attention.layer_kinds");
  if (kinds.size() != n_layers) {
    throw Error(kWhere + "attention.layer_kinds has " + std::to_string(kinds.size()) + " entries for " +
                std::to_string(n_layers) + " layers");
  }
  return kinds;
}

double positive_double(const Metadata& m, const std::string& key) {
  const double v = m.get_float(key);
  if (!(v > 0 && v < 1e30)) throw Error(kWhere + key + " must be a positive number");
  return v;
}

// model.rope_scaling and the parameters its kind needs; a file without it (every file before
// rotary scaling existed) has none.
RotarySpec rotary_from_metadata(const Metadata& m) {
  RotarySpec r;
  r.theta = positive_double(m, "model.rope_theta");
  r.scaling = parse_rotary_scaling(m.has("model.rope_scaling") ? m.get_string("model.rope_scaling") : "none",
                                   kWhere + "model.rope_scaling");
  if (r.scaling == RotaryScaling::None) return r;
  r.factor = positive_double(m, "model.rope_factor");
  if (r.scaling == RotaryScaling::Llama3) {
    r.low_freq_factor = positive_double(m, "model.rope_low_freq_factor");
    r.high_freq_factor = positive_double(m, "model.rope_high_freq_factor");
    if (!(r.high_freq_factor > r.low_freq_factor)) {
      throw Error(kWhere + "model.rope_high_freq_factor must exceed model.rope_low_freq_factor");
    }
  }
  if (r.scaling == RotaryScaling::Llama3 || r.scaling == RotaryScaling::Yarn) {
    r.original_max_positions = positive(m, "model.rope_original_max_positions", int64_t(1) << 40);
  }
  if (r.scaling == RotaryScaling::Yarn) {
    r.beta_fast = positive_double(m, "model.rope_beta_fast");
    r.beta_slow = positive_double(m, "model.rope_beta_slow");
    r.truncate = m.get_int("model.rope_truncate") != 0;
    r.attention_factor = positive_double(m, "model.rope_attention_factor");
  }
  return r;
}

void rotary_to_metadata(const RotarySpec& r, Metadata& m) {
  m.set("model.rope_theta", r.theta);
  if (r.scaling == RotaryScaling::None) return;  // the keys of files from before rotary scaling
  m.set("model.rope_scaling", std::string(name_of(r.scaling)));
  m.set("model.rope_factor", r.factor);
  if (r.scaling == RotaryScaling::Llama3) {
    m.set("model.rope_low_freq_factor", r.low_freq_factor);
    m.set("model.rope_high_freq_factor", r.high_freq_factor);
  }
  if (r.scaling == RotaryScaling::Llama3 || r.scaling == RotaryScaling::Yarn) {
    m.set("model.rope_original_max_positions", r.original_max_positions);
  }
  if (r.scaling == RotaryScaling::Yarn) {
    m.set("model.rope_beta_fast", r.beta_fast);
    m.set("model.rope_beta_slow", r.beta_slow);
    m.set("model.rope_truncate", int64_t(r.truncate));
    m.set("model.rope_attention_factor", r.attention_factor);
  }
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
    throw Error(kWhere + "n_heads " + std::to_string(hp.n_heads) + " is not a multiple of n_kv_heads " +
                std::to_string(hp.n_kv_heads));
  }
  hp.norm = parse_norm_kind(m.get_string("model.norm"), kWhere + "model.norm");
  hp.norm_eps = positive_float(m, "model.norm_eps");
  hp.ffn = parse_ffn_kind(m.get_string("model.ffn"), kWhere + "model.ffn");
  hp.embedding_scale = positive_float(m, "model.embedding_scale");
  hp.positions = parse_position_kind(m.get_string("model.positions"), kWhere + "model.positions");
  if (hp.positions == PositionKind::Sinusoidal) {
    hp.position_offset = m.get_int("model.position_offset");
    if (hp.position_offset < 0 || hp.position_offset > 1024) throw Error(kWhere + "model.position_offset out of range");
    if (hp.dim % 2 != 0 || hp.dim < 4) throw Error(kWhere + "sinusoidal positions need an even dim >= 4");
  } else if (hp.positions == PositionKind::Rotary) {
    hp.rotary = rotary_from_metadata(m);
    if (hp.head_dim % 2 != 0) throw Error(kWhere + "rotary positions need an even head_dim");
  }

  // The linear layers' parameters are shared by all of them; each is read only when some layer needs it.
  int64_t relu_features = 0;
  bool folded = false;
  float floor = 0;
  bool floor_read = false;
  // Absent in files from before sliding windows: every softmax layer attends to all positions.
  const int64_t window = m.has("attention.sliding_window") ? positive(m, "attention.sliding_window", int64_t(1) << 40) : 0;
  for (const std::string& kind : layer_kinds(m, size_t(hp.n_layers))) {
    AttentionSpec spec = parse_attention_kind(kind, kWhere + "attention.kind");
    if (!spec.is_linear()) spec.window = window;
    if (spec.is_linear()) {
      LinearAttentionSpec& linear = spec.linear;
      if (linear.feature_map == FeatureMap::ReluMlp) {
        if (relu_features == 0) {
          relu_features = positive(m, "attention.feature_dim", 1 << 14);
          folded = m.get_int("attention.feature_map_folded", 0) != 0;
          if (folded && hp.positions == PositionKind::Rotary) {
            throw Error(kWhere + "a folded feature map cannot be combined with rotary positions");
          }
        }
        linear.features = relu_features;
        linear.folded = folded;
      } else {
        linear.features = hp.head_dim;
      }
      if (!floor_read) {
        floor = positive_float(m, "attention.denominator_floor");
        floor_read = true;
      }
      linear.floor = floor;
    }
    hp.layers.push_back({spec});
  }
  return hp;
}

void Hyperparams::to_metadata(Metadata& m) const {
  m.set("general.architecture", architecture);
  m.set("model.vocab_size", vocab_size);
  m.set("model.dim", dim);
  m.set("model.n_layers", n_layers);
  m.set("model.n_heads", n_heads);
  m.set("model.n_kv_heads", n_kv_heads);
  m.set("model.head_dim", head_dim);
  m.set("model.ffn_dim", ffn_dim);
  m.set("model.norm", std::string(name_of(norm)));
  m.set("model.norm_eps", double(norm_eps));
  m.set("model.ffn", std::string(name_of(ffn)));
  m.set("model.embedding_scale", double(embedding_scale));
  m.set("model.positions", std::string(name_of(positions)));
  if (positions == PositionKind::Sinusoidal) {
    m.set("model.position_offset", position_offset);
  } else if (positions == PositionKind::Rotary) {
    rotary_to_metadata(rotary, m);
  }
  m.set("model.max_positions", max_positions);
  const std::string summary(attention_summary());
  m.set("attention.kind", summary);
  if (summary == "hybrid") {
    std::vector<std::string> kinds;
    for (const LayerSpec& layer : layers) kinds.emplace_back(attention_kind_name(layer.attention));
    m.set("attention.layer_kinds", kinds);
  }
  const auto linear = std::find_if(layers.begin(), layers.end(), [](const LayerSpec& l) { return l.attention.is_linear(); });
  const auto relu = std::find_if(layers.begin(), layers.end(), [](const LayerSpec& l) {
    return l.attention.is_linear() && l.attention.linear.feature_map == FeatureMap::ReluMlp;
  });
  if (relu != layers.end()) {
    m.set("attention.feature_dim", relu->attention.linear.features);
    m.set("attention.feature_map_folded", int64_t(relu->attention.linear.folded));
  }
  if (linear != layers.end()) m.set("attention.denominator_floor", double(linear->attention.linear.floor));
  const auto windowed = std::find_if(layers.begin(), layers.end(), [](const LayerSpec& l) { return l.attention.window > 0; });
  if (windowed != layers.end()) m.set("attention.sliding_window", windowed->attention.window);
}

bool Hyperparams::has_linear_attention() const {
  return std::any_of(layers.begin(), layers.end(), [](const LayerSpec& l) { return l.attention.is_linear(); });
}

bool Hyperparams::has_softmax_attention() const {
  return std::any_of(layers.begin(), layers.end(), [](const LayerSpec& l) { return !l.attention.is_linear(); });
}

std::string_view Hyperparams::attention_summary() const {
  if (layers.empty()) return "";
  const std::string_view first = attention_kind_name(layers[0].attention);
  for (const LayerSpec& layer : layers) {
    if (attention_kind_name(layer.attention) != first) return "hybrid";
  }
  return first;
}

int64_t Hyperparams::feature_dim() const {
  for (const LayerSpec& layer : layers) {
    if (layer.attention.is_linear()) return layer.attention.linear.features;
  }
  return 0;
}

int64_t Hyperparams::max_linear_features() const {
  int64_t most = 0;
  for (const LayerSpec& layer : layers) {
    if (layer.attention.is_linear()) most = std::max(most, n_heads * layer.attention.linear.features);
  }
  return most;
}

}  // namespace t2r
