#include "hf_rotary.h"

#include <cmath>
#include <map>
#include <set>

namespace t2r {
namespace {

// The parameters of one rotary block, each marked when read so that any left over is refused.
class RopeParameters {
 public:
  RopeParameters(HfConfig& config, std::string label, const json::Value& block)
      : config_(config), label_(std::move(label)) {
    for (const auto& [key, value] : block.as_object()) {
      if (!value.is_null()) values_.emplace(key, &value);
    }
  }

  const json::Value* find(const std::string& key) {
    read_.insert(key);
    auto it = values_.find(key);
    return it == values_.end() ? nullptr : it->second;
  }
  double number(const std::string& key, double fallback) {
    const json::Value* v = find(key);
    return v ? v->as_number() : fallback;
  }
  double positive(const std::string& key) {
    const json::Value* v = find(key);
    if (!v) refuse("no " + name(key));
    if (!(v->as_number() > 0) || !std::isfinite(v->as_number())) refuse(name(key) + ": " + json_text(*v));
    return v->as_number();
  }
  int64_t positive_int(const std::string& key) {
    const double v = positive(key);
    if (v != std::floor(v) || v > double(int64_t(1) << 40)) refuse(name(key) + ": " + json_text(*find(key)));
    return int64_t(v);
  }
  [[noreturn]] void refuse(const std::string& what) const { config_.unsupported(what); }
  std::string name(const std::string& key) const { return "\"" + label_ + "\".\"" + key + "\""; }
  void check_all_read() const {
    for (const auto& [key, value] : values_) {
      if (!read_.count(key)) refuse(name(key) + ": " + json_text(*value) + " is not a parameter of this rotary type");
    }
  }

 private:
  HfConfig& config_;
  std::string label_;
  std::map<std::string, const json::Value*> values_;
  std::set<std::string> read_;
};

// The type, as "rope_type" or the older "type" (both present must agree).
std::string rope_type(RopeParameters& p) {
  const json::Value* current = p.find("rope_type");
  const json::Value* older = p.find("type");
  if (current && older && current->as_string() != older->as_string()) {
    p.refuse(p.name("rope_type") + ": " + json_text(*current) + " and " + p.name("type") + ": " + json_text(*older) +
             " disagree");
  }
  return current ? current->as_string() : older ? older->as_string() : "default";
}

// transformers' get_mscale: the attention factor YaRN suggests for a context scaled by `scale`.
double yarn_mscale(double scale, double mscale) { return scale <= 1 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0; }

void read_yarn(RopeParameters& p, RotarySpec& r, int64_t max_positions) {
  r.factor = p.positive("factor");
  r.original_max_positions = max_positions;
  if (p.find("original_max_position_embeddings")) {
    // transformers replaces the factor by max_position_embeddings / original (DeepSeek-V3's
    // convention); a config whose factor says otherwise is ambiguous.
    r.original_max_positions = p.positive_int("original_max_position_embeddings");
    const double derived = double(max_positions) / double(r.original_max_positions);
    if (std::fabs(derived - r.factor) > 1e-9 * derived) {
      p.refuse(p.name("factor") + ": " + json_text(*p.find("factor")) + " disagrees with max_position_embeddings / " +
               p.name("original_max_position_embeddings") + " = " + json_text(json::Value::number(derived)) +
               " (transformers uses the latter)");
    }
    r.factor = derived;
  }
  const double mscale = p.number("mscale", 0), mscale_all_dim = p.number("mscale_all_dim", 0);
  if (p.find("attention_factor")) {
    r.attention_factor = p.positive("attention_factor");
  } else if (mscale != 0 && mscale_all_dim != 0) {
    r.attention_factor = yarn_mscale(r.factor, mscale) / yarn_mscale(r.factor, mscale_all_dim);
  } else {
    r.attention_factor = yarn_mscale(r.factor, 1);
  }
  // transformers reads these with `or`: a zero means the default too.
  r.beta_fast = p.number("beta_fast", 0) != 0 ? p.positive("beta_fast") : 32;
  r.beta_slow = p.number("beta_slow", 0) != 0 ? p.positive("beta_slow") : 1;
  const json::Value* truncate = p.find("truncate");
  r.truncate = truncate ? truncate->as_bool() : true;
}

void read_llama3(RopeParameters& p, RotarySpec& r) {
  r.factor = p.positive("factor");
  r.low_freq_factor = p.positive("low_freq_factor");
  r.high_freq_factor = p.positive("high_freq_factor");
  r.original_max_positions = p.positive_int("original_max_position_embeddings");
  if (!(r.high_freq_factor > r.low_freq_factor)) {
    p.refuse(p.name("high_freq_factor") + ": " + json_text(*p.find("high_freq_factor")) + " must exceed " +
             p.name("low_freq_factor") + ": " + json_text(*p.find("low_freq_factor")));
  }
}

}  // namespace

RotarySpec read_hf_rotary(HfConfig& config, int64_t max_positions) {
  const json::Value* top_theta = config.find("rope_theta");
  const json::Value* scaling = config.find("rope_scaling");
  const json::Value* parameters = config.find("rope_parameters");
  if (scaling && parameters) {
    config.unsupported("both \"rope_scaling\": " + json_text(*scaling) + " and \"rope_parameters\": " +
                       json_text(*parameters) + " (one form or the other)");
  }
  const json::Value empty = json::Value::object({});
  RopeParameters p(config, parameters ? "rope_parameters" : "rope_scaling",
                   parameters ? *parameters : scaling ? *scaling : empty);

  RotarySpec r;
  r.theta = top_theta ? top_theta->as_number() : 10000.0;  // LlamaConfig's default
  if (const json::Value* theta = p.find("rope_theta")) {
    if (top_theta && theta->as_number() != top_theta->as_number()) {
      config.unsupported("\"rope_theta\": " + json_text(*top_theta) + " and " + p.name("rope_theta") + " " +
                         json_text(*theta) + " disagree");
    }
    r.theta = theta->as_number();
  }
  if (!(r.theta > 0) || !std::isfinite(r.theta)) config.unsupported("rope_theta " + json_text(json::Value::number(r.theta)));
  if (const json::Value* partial = p.find("partial_rotary_factor"); partial && partial->as_number() != 1) {
    p.refuse(p.name("partial_rotary_factor") + ": " + json_text(*partial));
  }

  const std::string type = rope_type(p);
  if (type == "linear") {
    r.scaling = RotaryScaling::Linear;
    r.factor = p.positive("factor");
  } else if (type == "llama3") {
    r.scaling = RotaryScaling::Llama3;
    read_llama3(p, r);
  } else if (type == "yarn") {
    r.scaling = RotaryScaling::Yarn;
    read_yarn(p, r, max_positions);
  } else if (type != "default") {
    // dynamic (NTK) changes the frequencies with the sequence's length and longrope switches
    // factor tables at a length: neither is a fixed table, so neither is computed here.
    p.refuse(p.name(p.find("rope_type") ? "rope_type" : "type") + ": \"" + type + "\" (t2r computes default, linear, "
             "llama3 and yarn)");
  }
  p.check_all_read();
  return r;
}

}  // namespace t2r
