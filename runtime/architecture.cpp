#include "architecture.h"

#include <utility>

#include "error.h"

namespace t2r {
namespace {

template <typename Enum, size_t N>
using Names = std::pair<Enum, std::string_view>[N];

template <typename Enum, size_t N>
std::string_view lookup(const Names<Enum, N>& names, Enum value) {
  for (const auto& [e, name] : names) {
    if (e == value) return name;
  }
  return "?";
}

template <typename Enum, size_t N>
Enum parse(const Names<Enum, N>& names, std::string_view name, std::string_view what) {
  std::string allowed;
  for (const auto& [e, n] : names) {
    if (n == name) return e;
    allowed += (allowed.empty() ? "" : ", ") + std::string(n);
  }
  throw Error(std::string(what) + " = '" + std::string(name) + "' is not one of " + allowed);
}

const Names<NormKind, 2> kNorms = {{NormKind::LayerNorm, "layernorm"}, {NormKind::RmsNorm, "rmsnorm"}};
const Names<NormPosition, 2> kNormPositions = {{NormPosition::Pre, "pre"}, {NormPosition::Post, "post"}};
const Names<FfnKind, 3> kFfns = {{FfnKind::Relu, "relu"}, {FfnKind::SwiGlu, "swiglu"}, {FfnKind::GeluTanh, "gelu-tanh"}};
const Names<PositionKind, 3> kPositions = {
    {PositionKind::Sinusoidal, "sinusoidal"}, {PositionKind::Rotary, "rotary"}, {PositionKind::Learned, "learned"}};
const Names<RotaryScaling, 4> kRotaryScalings = {{RotaryScaling::None, "none"},
                                                  {RotaryScaling::Linear, "linear"},
                                                  {RotaryScaling::Llama3, "llama3"},
                                                  {RotaryScaling::Yarn, "yarn"}};
const Names<FeatureMap, 5> kFeatureMaps = {{FeatureMap::ReluMlp, "relu-mlp"},
                                            {FeatureMap::EluPlusOne, "elu+1"},
                                            {FeatureMap::Hedgehog, "hedgehog"},
                                            {FeatureMap::ReluThenRotary, "relu-rotary"},
                                            {FeatureMap::HeadSoftmax, "head-softmax"}};
const Names<Readout, 3> kReadouts = {
    {Readout::Normalized, "normalized"}, {Readout::GroupNorm, "group-norm"}, {Readout::Plain, "plain"}};
const Names<Decay, 3> kDecays = {{Decay::None, "none"}, {Decay::PerHead, "per-head"}, {Decay::KeyGate, "key-gate"}};
const Names<WindowMix, 2> kWindowMixes = {{WindowMix::SharedNormalizer, "shared-normalizer"}, {WindowMix::Mean, "mean"}};
const Names<AttentionForm, 2> kForms = {{AttentionForm::Softmax, "softmax"}, {AttentionForm::Linear, "linear"}};

// The model file's attention kinds of linear attention: one per feature map ("softmax" is the other form).
const Names<FeatureMap, 5> kLinearKinds = {{FeatureMap::ReluMlp, "t2r"},
                                           {FeatureMap::EluPlusOne, "elu"},
                                           {FeatureMap::Hedgehog, "hedgehog"},
                                           {FeatureMap::ReluThenRotary, "relu-rotary"},
                                           {FeatureMap::HeadSoftmax, "head-softmax"}};
constexpr std::string_view kSoftmaxKind = "softmax";

}  // namespace

std::string_view name_of(NormKind kind) { return lookup(kNorms, kind); }
std::string_view name_of(NormPosition position) { return lookup(kNormPositions, position); }
std::string_view name_of(FfnKind kind) { return lookup(kFfns, kind); }
std::string_view name_of(PositionKind kind) { return lookup(kPositions, kind); }
std::string_view name_of(RotaryScaling scaling) { return lookup(kRotaryScalings, scaling); }
std::string_view name_of(FeatureMap map) { return lookup(kFeatureMaps, map); }
std::string_view name_of(Readout readout) { return lookup(kReadouts, readout); }
std::string_view name_of(AttentionForm form) { return lookup(kForms, form); }
std::string_view name_of(Decay decay) { return lookup(kDecays, decay); }
std::string_view name_of(WindowMix mix) { return lookup(kWindowMixes, mix); }
Readout parse_readout(std::string_view name, std::string_view what) { return parse(kReadouts, name, what); }
Decay parse_decay(std::string_view name, std::string_view what) { return parse(kDecays, name, what); }
WindowMix parse_window_mix(std::string_view name, std::string_view what) { return parse(kWindowMixes, name, what); }

NormKind parse_norm_kind(std::string_view name, std::string_view what) { return parse(kNorms, name, what); }
NormPosition parse_norm_position(std::string_view name, std::string_view what) {
  return parse(kNormPositions, name, what);
}
FfnKind parse_ffn_kind(std::string_view name, std::string_view what) { return parse(kFfns, name, what); }
PositionKind parse_position_kind(std::string_view name, std::string_view what) {
  return parse(kPositions, name, what);
}
RotaryScaling parse_rotary_scaling(std::string_view name, std::string_view what) {
  return parse(kRotaryScalings, name, what);
}

AttentionSpec softmax_attention_spec() { return AttentionSpec{}; }

AttentionSpec t2r_attention_spec(int64_t features, bool folded, float floor) {
  AttentionSpec spec;
  spec.form = AttentionForm::Linear;
  spec.linear = {FeatureMap::ReluMlp, features, folded, Readout::Normalized, floor};
  return spec;
}

AttentionSpec elu_attention_spec(int64_t head_dim, float floor) {
  AttentionSpec spec;
  spec.form = AttentionForm::Linear;
  spec.linear = {FeatureMap::EluPlusOne, head_dim, false, Readout::Normalized, floor};
  return spec;
}

AttentionSpec lolcats_attention_spec(int64_t features, int64_t window, float feature_eps) {
  AttentionSpec spec;
  spec.form = AttentionForm::Linear;
  spec.linear.feature_map = FeatureMap::Hedgehog;
  spec.linear.features = features;
  spec.linear.feature_eps = feature_eps;
  spec.linear.window = window;
  spec.linear.window_mix = WindowMix::SharedNormalizer;
  return spec;
}

AttentionSpec supra_attention_spec(int64_t head_dim, float group_norm_eps) {
  AttentionSpec spec;
  spec.form = AttentionForm::Linear;
  spec.linear.feature_map = FeatureMap::ReluThenRotary;
  spec.linear.features = head_dim;
  spec.linear.readout = Readout::GroupNorm;
  spec.linear.group_norm_eps = group_norm_eps;
  spec.linear.decay = Decay::PerHead;
  return spec;
}

AttentionSpec liger_attention_spec(int64_t head_dim, int64_t window, float gate_temperature) {
  AttentionSpec spec;
  spec.form = AttentionForm::Linear;
  spec.linear.feature_map = FeatureMap::HeadSoftmax;
  spec.linear.features = head_dim;
  spec.linear.readout = Readout::Plain;
  spec.linear.decay = Decay::KeyGate;
  spec.linear.gate_temperature = gate_temperature;
  spec.linear.window = window;
  spec.linear.window_mix = WindowMix::Mean;
  spec.linear.state_per_kv_head = true;
  return spec;
}

std::string_view attention_kind_name(const AttentionSpec& spec) {
  return spec.is_linear() ? lookup(kLinearKinds, spec.linear.feature_map) : kSoftmaxKind;
}

AttentionSpec parse_attention_kind(std::string_view name, std::string_view what) {
  AttentionSpec spec;
  if (name == kSoftmaxKind) return spec;
  for (const auto& [map, kind] : kLinearKinds) {
    if (kind == name) {
      spec.form = AttentionForm::Linear;
      spec.linear.feature_map = map;
      return spec;
    }
  }
  std::string allowed(kSoftmaxKind);
  for (const auto& entry : kLinearKinds) allowed += ", " + std::string(entry.second);
  throw Error(std::string(what) + " = '" + std::string(name) + "' is not one of " + allowed);
}

}  // namespace t2r
