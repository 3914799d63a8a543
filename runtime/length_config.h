// A length configuration for length-adaptive prefill (Kim & Cho 2021, "Length-Adaptive
// Transformer", brought to T2R prefill; README "Length-adaptive prefill"): per layer, the fraction
// of the prompt's tokens that enter it. Session::prefill_adaptive runs it; this file parses,
// validates and counts it, and reads the named configurations a model file stores.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "model.h"

namespace t2r {

// The observation window w of the reference semantics: the last w prompt tokens always enter
// every layer, and their queries score the other tokens.
constexpr size_t kLengthWindow = 16;

// How the tokens that pass to the next layer are chosen among those not pinned.
enum class Significance {
  Attention,  // the normalized linear attention the token's key receives from the last w queries
  KeyNorm,    // sum over heads of |phi(k)|: attention from a query that weighs every feature alike
  Recency,    // the latest tokens: a sliding window, no scoring at all
};

struct LengthConfig {
  // Per layer: fraction of the prompt's tokens entering it; in (0, 1], non-increasing, the first 1.
  std::vector<double> keep;
  // The first tokens of the prompt always pass too (an extension; the reference pins none).
  size_t pinned_head = 0;
  Significance significance = Significance::Attention;

  static LengthConfig full(size_t n_layers);
  // Throws t2r::Error saying what is wrong: the layer count, a value outside (0, 1], a first
  // value other than 1, or a fraction larger than the one before it.
  void validate(size_t n_layers) const;
  bool is_full() const;
  // Prompt tokens entering each layer: n_0 = P, n_l = min(n_{l-1}, max(w + pins, ceil(c_l P)));
  // for P >= w + pins this is the reference's max(w, min(n_{l-1}, ceil(c_l P))).
  size_t tokens_entering(size_t layer, size_t prompt) const;
  std::string to_string() const;  // "1,1,0.85,0.72"
};

// "1,1,0.8,0.6,...": one fraction per layer, validated for `n_layers` layers.
LengthConfig parse_length_config(std::string_view text, size_t n_layers);
Significance parse_significance(std::string_view name);  // attention, key-norm, recency
const char* significance_name(Significance s);

// Named configurations are stored in the model file's metadata as strings under
// "length_config.NAME" (format/SPEC.md).
std::string length_config_key(std::string_view name);
std::vector<std::string> named_length_configs(const Metadata& metadata);
// A list of fractions, or the name of a configuration stored in the model's metadata.
LengthConfig length_config_for(const Model& model, std::string_view list_or_name);

// Multiply-adds counted twice, for a prompt of `prompt` tokens: per layer, the matrix products,
// the feature maps and the recurrent attention of every token that enters it; the significance
// scores where tokens are dropped; and the logits of the last token.
// Multiply-adds times 2 of one token through layer `layer` in the recurrent form.
double layer_flops_per_token(const Hyperparams& hp, size_t layer);
double prefill_flops(const Hyperparams& hp, const LengthConfig& config, size_t prompt);
// prefill_flops of `config` over that of the full configuration.
double prefill_flops_fraction(const Hyperparams& hp, const LengthConfig& config, size_t prompt);

}  // namespace t2r
