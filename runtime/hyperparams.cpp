#include "hyperparams.h"

#include <algorithm>
#include <cmath>
#include <utility>

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

// The parameters of a group of linear attentions (self: "attention.", cross: "cross_attention."),
// shared by all of them and read when the first one needs them.
class LinearParams {
 public:
  LinearParams(const Metadata& m, std::string prefix, bool rotary, int64_t head_dim)
      : m_(m), prefix_(std::move(prefix)), rotary_(rotary), head_dim_(head_dim) {}

  void fill(LinearAttentionSpec& linear) {
    if (linear.feature_map == FeatureMap::ReluMlp) {
      if (relu_features_ == 0) {
        relu_features_ = positive(m_, (prefix_ + "feature_dim").c_str(), 1 << 14);
        folded_ = m_.get_int(prefix_ + "feature_map_folded", 0) != 0;
        if (folded_ && rotary_) throw Error(kWhere + "a folded feature map cannot be combined with rotary positions");
      }
      linear.features = relu_features_;
      linear.folded = folded_;
    } else if (linear.feature_map == FeatureMap::Hedgehog) {
      linear.features = positive(m_, key("feature_dim").c_str(), 1 << 14);
      if (linear.features % 2 != 0) throw Error(kWhere + key("feature_dim") + " must be even for hedgehog feature maps");
      linear.feature_eps = positive_float(m_, key("feature_eps").c_str());
    } else {
      linear.features = head_dim_;
    }
    // Absent in files from before these forms: normalized, no decay, no window, state per query head.
    if (m_.has(key("readout"))) linear.readout = parse_readout(m_.get_string(key("readout")), kWhere + key("readout"));
    if (m_.has(key("decay"))) linear.decay = parse_decay(m_.get_string(key("decay")), kWhere + key("decay"));
    if (linear.decay == Decay::KeyGate) linear.gate_temperature = positive_float(m_, key("gate_temperature").c_str());
    if (m_.has(key("state_window"))) {
      linear.window = positive(m_, key("state_window").c_str(), 1 << 20);
      linear.window_mix = parse_window_mix(m_.get_string(key("window_mix")), kWhere + key("window_mix"));
    }
    linear.state_per_kv_head = m_.get_int(key("state_per_kv_head"), 0) != 0;
    if (linear.readout == Readout::GroupNorm) linear.group_norm_eps = positive_float(m_, key("group_norm_eps").c_str());
    check(linear);
    if (linear.readout != Readout::Normalized || linear.window > 0) return;  // no floor: none, or the window's
    if (!(floor_ > 0)) floor_ = positive_float(m_, (prefix_ + "denominator_floor").c_str());
    linear.floor = floor_;
  }

  // The keys fill() reads, for the first linear attention of `specs` and the first relu-mlp one.
  static void write(const std::vector<const AttentionSpec*>& specs, const std::string& prefix, Metadata& m) {
    const auto linear = std::find_if(specs.begin(), specs.end(), [](const AttentionSpec* a) { return a->is_linear(); });
    const auto relu = std::find_if(specs.begin(), specs.end(), [](const AttentionSpec* a) {
      return a->is_linear() && a->linear.feature_map == FeatureMap::ReluMlp;
    });
    if (relu != specs.end()) {
      m.set(prefix + "feature_dim", (*relu)->linear.features);
      m.set(prefix + "feature_map_folded", int64_t((*relu)->linear.folded));
    }
    if (linear == specs.end()) return;
    const LinearAttentionSpec& l = (*linear)->linear;
    if (l.readout == Readout::Normalized && l.window == 0) m.set(prefix + "denominator_floor", double(l.floor));
    if (l.fused()) return;  // the keys of files from before the other forms
    if (l.feature_map == FeatureMap::Hedgehog) {
      m.set(prefix + "feature_dim", l.features);
      m.set(prefix + "feature_eps", double(l.feature_eps));
    }
    m.set(prefix + "readout", std::string(name_of(l.readout)));
    if (l.readout == Readout::GroupNorm) m.set(prefix + "group_norm_eps", double(l.group_norm_eps));
    m.set(prefix + "decay", std::string(name_of(l.decay)));
    if (l.decay == Decay::KeyGate) m.set(prefix + "gate_temperature", double(l.gate_temperature));
    if (l.window > 0) {
      m.set(prefix + "state_window", l.window);
      m.set(prefix + "window_mix", std::string(name_of(l.window_mix)));
    }
    if (l.state_per_kv_head) m.set(prefix + "state_per_kv_head", int64_t(1));
  }

 private:
  std::string key(const char* name) const { return prefix_ + name; }

  // The combinations the recurrent form computes.
  void check(const LinearAttentionSpec& l) const {
    if (l.window > 0 && l.window_mix == WindowMix::SharedNormalizer && l.readout != Readout::Normalized) {
      throw Error(kWhere + key("window_mix") + " = 'shared-normalizer' needs " + key("readout") + " = 'normalized'");
    }
    // A key leaving the window is mapped then from its stored rotated key: only hedgehog's map reads that.
    if (l.window > 0 && l.window_mix == WindowMix::SharedNormalizer && l.feature_map != FeatureMap::Hedgehog) {
      throw Error(kWhere + key("window_mix") + " = 'shared-normalizer' needs the hedgehog feature map");
    }
    // The gate has one value per key dimension, one per row of S.
    if (l.decay == Decay::KeyGate && l.features != head_dim_) {
      throw Error(kWhere + key("decay") + " = 'key-gate' needs " + std::to_string(head_dim_) +
                  " features per head (head-softmax, elu or relu-rotary), not " + std::to_string(l.features));
    }
    if (l.window > 0 && l.window_mix == WindowMix::Mean && l.readout != Readout::Plain) {
      throw Error(kWhere + key("window_mix") + " = 'mean' needs " + key("readout") + " = 'plain'");
    }
    if (l.state_per_kv_head && (l.feature_map != FeatureMap::HeadSoftmax || l.decay == Decay::PerHead)) {
      throw Error(kWhere + key("state_per_kv_head") + " needs a key-only feature map (head-softmax) and no per-head decay");
    }
    if (l.feature_map == FeatureMap::ReluMlp && l.folded && !l.fused()) {
      throw Error(kWhere + "a folded feature map needs the normalized readout without decay or window");
    }
  }

  const Metadata& m_;
  std::string prefix_;
  bool rotary_;
  int64_t head_dim_;
  int64_t relu_features_ = 0;
  bool folded_ = false;
  float floor_ = 0;
};

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

  // Absent in files from before sliding windows: every softmax layer attends to all positions.
  const int64_t window = m.has("attention.sliding_window") ? positive(m, "attention.sliding_window", int64_t(1) << 40) : 0;
  LinearParams self(m, "attention.", hp.positions == PositionKind::Rotary, hp.head_dim);
  for (const std::string& kind : layer_kinds(m, size_t(hp.n_layers))) {
    AttentionSpec spec = parse_attention_kind(kind, kWhere + "attention.kind");
    if (spec.is_linear()) {
      self.fill(spec.linear);
    } else {
      spec.window = window;
    }
    hp.layers.push_back({spec});
  }

  // Absent in files from before translation models: pre-norm decoders without an encoder.
  if (m.has("model.norm_position")) {
    hp.norm_position = parse_norm_position(m.get_string("model.norm_position"), kWhere + "model.norm_position");
  }
  if (!m.has("encoder.n_layers")) return hp;
  Encoder& e = hp.encoder;
  e.vocab_size = positive(m, "encoder.vocab_size", 1 << 24);
  e.n_layers = positive(m, "encoder.n_layers", 1024);
  e.n_heads = positive(m, "encoder.n_heads", 1024);
  e.ffn_dim = positive(m, "encoder.ffn_dim", 1 << 18);
  e.max_positions = positive(m, "encoder.max_positions", int64_t(1) << 40);
  e.norm_position = parse_norm_position(m.get_string("encoder.norm_position"), kWhere + "encoder.norm_position");
  if (hp.dim % e.n_heads != 0) throw Error(kWhere + "model.dim is not a multiple of encoder.n_heads");
  if (hp.positions == PositionKind::Rotary) throw Error(kWhere + "an encoder with rotary positions is not supported");
  if (hp.n_kv_heads != hp.n_heads) throw Error(kWhere + "a translation decoder needs n_kv_heads = n_heads");
  AttentionSpec cross = parse_attention_kind(m.get_string("cross_attention.kind"), kWhere + "cross_attention.kind");
  cross.causal = false;
  cross.cross = true;
  if (cross.is_linear()) {
    LinearParams(m, "cross_attention.", false, hp.head_dim).fill(cross.linear);
    if (!cross.linear.fused()) throw Error(kWhere + "cross attention must be t2r or elu with the normalized readout");
  }
  for (LayerSpec& layer : hp.layers) {
    layer.has_cross = true;
    layer.cross = cross;
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
  std::vector<const AttentionSpec*> self;
  for (const LayerSpec& layer : layers) self.push_back(&layer.attention);
  LinearParams::write(self, "attention.", m);
  const auto windowed = std::find_if(layers.begin(), layers.end(), [](const LayerSpec& l) { return l.attention.window > 0; });
  if (windowed != layers.end()) m.set("attention.sliding_window", windowed->attention.window);
  if (norm_position != NormPosition::Pre) m.set("model.norm_position", std::string(name_of(norm_position)));
  if (!has_encoder()) return;
  m.set("encoder.vocab_size", encoder.vocab_size);
  m.set("encoder.n_layers", encoder.n_layers);
  m.set("encoder.n_heads", encoder.n_heads);
  m.set("encoder.ffn_dim", encoder.ffn_dim);
  m.set("encoder.max_positions", encoder.max_positions);
  m.set("encoder.norm_position", std::string(name_of(encoder.norm_position)));
  m.set("cross_attention.kind", std::string(attention_kind_name(layers[0].cross)));
  LinearParams::write({&layers[0].cross}, "cross_attention.", m);
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
    if (layer.has_cross && layer.cross.is_linear()) most = std::max(most, n_heads * layer.cross.linear.features);
  }
  return most;
}

}  // namespace t2r
