// What every layer of a model computes, decided once when the model is loaded and then read by
// every consumer: the CPU forward pass, the Vulkan backend, the FLOP counter, the C API and the
// tools. No dependencies, so backends include this instead of the model. Each enum has one name
// table (architecture.cpp): its names are parsed and printed in one place.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace t2r {

enum class NormKind { LayerNorm, RmsNorm };
// Where a block's norms sit: Pre, x += f(norm(x)) with a final norm (GPT-2, Llama, fairseq LMs);
// Post, x = norm(x + f(x)) with none (the original Transformer, fairseq's translation models).
enum class NormPosition { Pre, Post };
enum class FfnKind { Relu, SwiGlu, GeluTanh };  // GeluTanh: GPT-2's gelu_new
enum class PositionKind { Sinusoidal, Rotary, Learned };  // Learned: a table added to the input
// How rotary inverse frequencies are rescaled for a longer context, as transformers'
// modeling_rope_utils computes them (runtime/rotary.cpp).
enum class RotaryScaling { None, Linear, Llama3, Yarn };

// Rotary positions: the base and its scaling. The packer resolves transformers' defaults and
// derived values (yarn's factor and attention factor), so the runtime reads plain numbers.
struct RotarySpec {
  double theta = 0;
  RotaryScaling scaling = RotaryScaling::None;
  double factor = 1;                                 // linear, llama3, yarn
  double low_freq_factor = 0, high_freq_factor = 0;  // llama3
  int64_t original_max_positions = 0;                // llama3, yarn: the pretraining context
  double beta_fast = 0, beta_slow = 0;               // yarn: the ramp's bounds in rotations
  bool truncate = true;                              // yarn: round the ramp's bounds to whole dims
  double attention_factor = 1;                       // yarn: cos and sin (so q and k) are multiplied by it
};

// phi, applied per head to queries and keys.
enum class FeatureMap {
  ReluMlp,     // T2R: relu(W x + b), W [r, d_h] per head (or folded into the projections)
  EluPlusOne,  // elu(x) + 1 on the head itself: r = d_h
  // LoLCATs' softmax_dim, on the rotated head u: max(eps, [softmax(W_h u), softmax(-W_h u)]), W_h
  // [r / 2, d_h] per query head, one map for queries and another for keys: r = 2 f.
  Hedgehog,
  // SUPRA: relu of the projection (its dense layer folded in), applied before rotary: r = d_h.
  ReluThenRotary,
  // Liger: softmax over the head's d_h entries, before rotary: r = d_h.
  HeadSoftmax,
};
// How a linear-attention head turns phi(q), S and z into its output.
enum class Readout {
  Normalized,  // phi(q)^T S / max(phi(q) . z, floor); with a window, its softmax terms join both sums
  GroupNorm,   // phi(q)^T S, then (o - mean) / sqrt(var + group_norm_eps) over the head (SUPRA)
  Plain,       // phi(q)^T S (Liger's gated linear attention)
};
// How S forgets before each update S = decay * S + phi(k) v^T.
enum class Decay {
  None,
  PerHead,  // a fixed gamma_h per head (tensor attn.decay [H]; SUPRA)
  KeyGate,  // per key dimension, from the key: exp(logsigmoid(k_i) / gate_temperature) (Liger GLA)
};
// How a linear attention's softmax window over its last `window` keys joins the linear term.
enum class WindowMix {
  SharedNormalizer,  // (w_h sum e^s v + phi_q^T S) / (w_h sum e^s + phi_q . z): keys leaving the
                     // window are folded into S and z (LoLCATs; w_h = tensor attn.window_weight [H])
  Mean,              // (softmax window output + phi_q^T S) / 2; S holds every key (Liger)
};

struct LinearAttentionSpec {
  FeatureMap feature_map = FeatureMap::ReluMlp;
  int64_t features = 0;  // r: features per head
  // ReluMlp only: W and b are folded into the query and key projections, which then produce the
  // pre-activation of phi directly ([H r, d] matrices); the runtime never forms q or k.
  bool folded = false;
  Readout readout = Readout::Normalized;
  float floor = 0;  // Normalized without a window: the least denominator
  float feature_eps = 0;      // Hedgehog: the least feature
  float group_norm_eps = 0;   // GroupNorm
  Decay decay = Decay::None;
  float gate_temperature = 0;  // KeyGate
  // A softmax window over the last `window` rotated keys and values (kept in the state); 0: none.
  int64_t window = 0;
  WindowMix window_mix = WindowMix::SharedNormalizer;
  // S (and z) per kv head rather than per query head: possible when phi(k) and the decay read only
  // the key (HeadSoftmax), and G times smaller.
  bool state_per_kv_head = false;
  // The forms the fused step and chunk kernels compute (T2R and ELU: normalized, no decay, no window);
  // the others run the recurrent form (runtime/recurrent_attention.cpp).
  bool fused() const {
    return (feature_map == FeatureMap::ReluMlp || feature_map == FeatureMap::EluPlusOne) &&
           readout == Readout::Normalized && decay == Decay::None && window == 0;
  }
};

enum class AttentionForm {
  Softmax,  // over a KV cache of every past position
  Linear,   // over a fixed-size recurrent state S [r, d_h] and z [r] per head
};

struct AttentionSpec {
  AttentionForm form = AttentionForm::Softmax;
  bool causal = true;  // decoder self-attention; an encoder's is not
  bool cross = false;  // attends to another sequence (an encoder's output)
  LinearAttentionSpec linear;  // form == Linear only
  // Softmax only: each position attends to the last `window` positions (itself included); 0: all.
  // The KV cache still holds every position of the context; the window limits what is read.
  int64_t window = 0;
  bool is_linear() const { return form == AttentionForm::Linear; }
};

struct LayerSpec {
  LayerSpec(AttentionSpec self = {}) : attention(self) {}  // a decoder-only layer: its attention alone
  AttentionSpec attention;
  // A translation decoder's attention to the encoder output, after the self-attention; linear
  // cross attention reduces the source once to S and z, softmax keeps its keys and values.
  bool has_cross = false;
  AttentionSpec cross;
};

// The attention of the paper's models, for importers and synthetic models.
AttentionSpec softmax_attention_spec();
AttentionSpec t2r_attention_spec(int64_t features, bool folded, float floor);  // relu(W x + b)
AttentionSpec elu_attention_spec(int64_t head_dim, float floor);               // elu(x) + 1
// The linearized LLMs' attention (README, "Linearized LLMs"): LoLCATs' hedgehog maps of `features`
// (2 f) per head with a shared-normalizer window; SUPRA's relu-rotary with a per-head decay and
// GroupNorm; Liger's head-softmax with key gates, S per kv head and a mean window.
AttentionSpec lolcats_attention_spec(int64_t features, int64_t window, float feature_eps);
AttentionSpec supra_attention_spec(int64_t head_dim, float group_norm_eps);
AttentionSpec liger_attention_spec(int64_t head_dim, int64_t window, float gate_temperature);

// The names a model file uses for a layer's attention (metadata attention.kind and
// attention.layer_kinds): "softmax", "t2r" (Linear, ReluMlp) and "elu" (Linear, EluPlusOne).
std::string_view attention_kind_name(const AttentionSpec& spec);

std::string_view name_of(NormKind kind);
std::string_view name_of(NormPosition position);
std::string_view name_of(FfnKind kind);
std::string_view name_of(PositionKind kind);
std::string_view name_of(RotaryScaling scaling);
std::string_view name_of(FeatureMap map);
std::string_view name_of(Readout readout);
std::string_view name_of(AttentionForm form);
std::string_view name_of(Decay decay);
std::string_view name_of(WindowMix mix);

// Each throws t2r::Error "<what> = '<name>' is not one of <the names>".
NormKind parse_norm_kind(std::string_view name, std::string_view what);
NormPosition parse_norm_position(std::string_view name, std::string_view what);
FfnKind parse_ffn_kind(std::string_view name, std::string_view what);
PositionKind parse_position_kind(std::string_view name, std::string_view what);
RotaryScaling parse_rotary_scaling(std::string_view name, std::string_view what);
Readout parse_readout(std::string_view name, std::string_view what);
Decay parse_decay(std::string_view name, std::string_view what);
WindowMix parse_window_mix(std::string_view name, std::string_view what);
// "softmax", "t2r", "elu", "hedgehog", "relu-rotary" or "head-softmax": the form and feature map;
// the caller fills sizes and the rest.
AttentionSpec parse_attention_kind(std::string_view name, std::string_view what);

// Where one sequence's state lives in its flat buffer of floats: per layer, for linear attention
// S [heads, r, d_h] then z [heads, r] (heads: H, or H_kv when state_per_kv_head; z absent for readouts
// without a denominator), then a window's keys and values [H_kv, window, d_h] each (slot p % window
// holds position p); for softmax attention keys then values [max_context, H_kv d_h]. A sequence's
// state is this one block, so copying a sequence is one memcpy.
struct StateLayout {
  struct Layer {
    size_t offset = 0;  // floats from the start of the sequence's block
    // Linear: S at offset, z at offset + state_floats, the window's keys after z and its values
    // after them. Softmax: keys at offset, values after.
    size_t state_floats = 0, normalizer_floats = 0, window_floats = 0;  // linear; window_floats: keys
    size_t cache_row_floats = 0;                     // softmax: H_kv d_h per position
  };
  std::vector<Layer> layers;
  size_t floats = 0;        // the whole block
  int64_t max_context = 0;  // softmax layers' positions; 0 when every layer is linear
};

}  // namespace t2r
