#include "length_config.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "error.h"

namespace t2r {
namespace {

constexpr char kKeyPrefix[] = "length_config.";

// The shortest decimal text that reads back as exactly `v`.
std::string shortest(double v) {
  char buffer[32];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buffer, sizeof buffer, "%.*g", precision, v);
    if (std::strtod(buffer, nullptr) == v) break;
  }
  return buffer;
}

}  // namespace

LengthConfig LengthConfig::full(size_t n_layers) {
  LengthConfig c;
  c.keep.assign(n_layers, 1.0);
  return c;
}

void LengthConfig::validate(size_t n_layers) const {
  if (keep.size() != n_layers) {
    throw Error("length configuration has " + std::to_string(keep.size()) + " fractions; the model has " +
                std::to_string(n_layers) + " layers (one fraction per layer)");
  }
  for (size_t l = 0; l < keep.size(); ++l) {
    if (!(keep[l] > 0 && keep[l] <= 1)) {
      throw Error("length configuration: layer " + std::to_string(l) + " keeps " + shortest(keep[l]) +
                  " of the prompt; fractions must be in (0, 1]");
    }
    if (l > 0 && keep[l] > keep[l - 1]) {
      throw Error("length configuration: layer " + std::to_string(l) + " keeps " + shortest(keep[l]) +
                  ", more than layer " + std::to_string(l - 1) + " (" + shortest(keep[l - 1]) +
                  "); fractions must not increase with depth");
    }
  }
  // Selection uses the attention of the layer below, so the first layer sees the whole prompt.
  if (!keep.empty() && keep[0] != 1) {
    throw Error("length configuration: the first layer must keep the whole prompt (1), not " + shortest(keep[0]));
  }
}

bool LengthConfig::is_full() const {
  return std::all_of(keep.begin(), keep.end(), [](double c) { return c == 1; });
}

size_t LengthConfig::tokens_entering(size_t layer, size_t prompt) const {
  size_t n = prompt;
  for (size_t l = 1; l <= layer; ++l) {
    const size_t wanted = size_t(std::ceil(keep[l] * double(prompt)));
    n = std::min(n, std::max(kLengthWindow + pinned_head, wanted));
  }
  return n;
}

std::string LengthConfig::to_string() const {
  std::string text;
  for (double c : keep) text += (text.empty() ? "" : ",") + shortest(c);
  return text;
}

LengthConfig parse_length_config(std::string_view text, size_t n_layers) {
  LengthConfig config;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string_view::npos) comma = text.size();
    const std::string item(text.substr(start, comma - start));
    char* end = nullptr;
    const double value = std::strtod(item.c_str(), &end);
    if (item.empty() || *end != '\0') {
      throw Error("length configuration '" + std::string(text) + "': '" + item +
                  "' is not a number (expected fractions separated by commas, one per layer)");
    }
    config.keep.push_back(value);
    start = comma + 1;
  }
  config.validate(n_layers);
  return config;
}

Significance parse_significance(std::string_view name) {
  for (Significance s : {Significance::Attention, Significance::KeyNorm, Significance::Recency}) {
    if (name == significance_name(s)) return s;
  }
  throw Error("unknown significance '" + std::string(name) + "' (attention, key-norm or recency)");
}

const char* significance_name(Significance s) {
  switch (s) {
    case Significance::Attention:
      return "attention";
    case Significance::KeyNorm:
      return "key-norm";
    case Significance::Recency:
      return "recency";
  }
  return "?";
}

std::string length_config_key(std::string_view name) { return kKeyPrefix + std::string(name); }

std::vector<std::string> named_length_configs(const Metadata& metadata) {
  std::vector<std::string> names;
  const std::string prefix = kKeyPrefix;
  for (const auto& entry : metadata.entries()) {
    if (entry.first.compare(0, prefix.size(), prefix) == 0) names.push_back(entry.first.substr(prefix.size()));
  }
  return names;
}

LengthConfig length_config_for(const Model& model, std::string_view list_or_name) {
  const size_t n_layers = size_t(model.hparams().n_layers);
  const bool is_list = !list_or_name.empty() && list_or_name.find_first_not_of("0123456789.,eE+-") == std::string_view::npos;
  if (is_list) return parse_length_config(list_or_name, n_layers);
  const Metadata& metadata = model.file().metadata();
  if (!metadata.has(length_config_key(list_or_name))) {
    std::string names;
    for (const auto& name : named_length_configs(metadata)) names += (names.empty() ? "" : ", ") + name;
    throw Error("length configuration '" + std::string(list_or_name) + "' is neither a list of fractions nor " +
                "a name stored in the model (" + (names.empty() ? "it stores none" : "it stores " + names) + ")");
  }
  return parse_length_config(metadata.get_string(length_config_key(list_or_name)), n_layers);
}

double layer_flops_per_token(const Hyperparams& hp, size_t layer) {
  const AttentionSpec& spec = hp.attention(layer);
  const double d = double(hp.dim), H = double(hp.n_heads), Hkv = double(hp.n_kv_heads), dh = double(hp.head_dim),
               r = double(spec.linear.features), F = double(hp.ffn_dim);
  const bool folded = spec.is_linear() && spec.linear.folded;
  double projections = folded ? 2 * d * H * r : d * H * dh + d * Hkv * dh;
  projections += d * Hkv * dh + H * dh * d;  // v and o
  if (spec.is_linear() && spec.linear.feature_map == FeatureMap::ReluMlp && !folded) projections += 2 * H * r * dh;
  const double ffn = (hp.ffn == FfnKind::SwiGlu ? 3 : 2) * d * F;
  // Recurrent form: phi(q)^T S and phi(q) . z, then S += phi(k) v^T and z += phi(k).
  const double attention = H * (2 * r * dh + 2 * r);
  return 2 * (projections + ffn + attention);
}

double prefill_flops(const Hyperparams& hp, const LengthConfig& config, size_t prompt) {
  double flops = 2 * double(hp.dim) * double(hp.vocab_size);  // logits of the last prompt token
  size_t entering = prompt;
  for (size_t l = 0; l < config.keep.size(); ++l) {
    flops += layer_flops_per_token(hp, l) * double(entering);
    const size_t next = l + 1 < config.keep.size() ? config.tokens_entering(l + 1, prompt) : entering;
    // Scoring: one phi(k) . sum-of-queries per candidate, and w queries normalized.
    const double features = double(hp.n_heads * hp.attention(l).linear.features);
    if (next < entering && config.significance != Significance::Recency) {
      flops += 2 * features * double(entering) + 6 * features * double(std::min(kLengthWindow, entering));
    }
    entering = next;
  }
  return flops;
}

double prefill_flops_fraction(const Hyperparams& hp, const LengthConfig& config, size_t prompt) {
  return prefill_flops(hp, config, prompt) / prefill_flops(hp, LengthConfig::full(config.keep.size()), prompt);
}

}  // namespace t2r
