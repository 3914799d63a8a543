// The recurrent linear-attention forms of the published linearized LLMs, which the fused T2R/ELU
// kernels do not compute: Hedgehog feature maps with a softmax window whose leaving keys are folded
// into S and z (LoLCATs), a fixed per-head decay with a GroupNorm readout (SUPRA), and per-dimension
// key gates with a window averaged with the state (Liger GLA). Each row of a run is one recurrent
// step, in order, so a prompt chunk gives exactly what stepping gives; the projections around it
// still run over all rows at once. A window is part of the fixed-size state: slot p % window holds
// position p's rotated key and value.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "context.h"
#include "feature_map.h"
#include "kernels.h"
#include "recurrent_kernels.h"

namespace t2r {

void Context::before_rotary(const LinearAttentionSpec& spec, float* q, float* k, size_t row) {
  const Hyperparams& hp = model_.hparams();
  const size_t H = hp.n_heads, Hkv = hp.n_kv_heads, dh = hp.head_dim, features = H * size_t(spec.features);
  if (spec.feature_map == FeatureMap::ReluThenRotary) {
    cpu::relu(q, H * dh);
    cpu::relu(k, Hkv * dh);
  } else if (spec.feature_map == FeatureMap::HeadSoftmax) {  // reads the key alone: one per kv head
    feature_map(spec, Linear{}, q, H, 1, dh, phi_q_ + row * features);
    feature_map(spec, Linear{}, k, Hkv, 1, dh, phi_k_ + row * features);
  }
  if (spec.decay == Decay::KeyGate) cpu::key_gate(k, Hkv * dh, spec.gate_temperature, gate_ + row * Hkv * dh);
}

void Context::after_rotary(const LinearAttentionSpec& spec, const AttentionWeights& w, size_t row) {
  const Hyperparams& hp = model_.hparams();
  const size_t H = hp.n_heads, dh = hp.head_dim, group = H / hp.n_kv_heads, features = H * size_t(spec.features);
  if (spec.feature_map == FeatureMap::HeadSoftmax) return;  // mapped before rotary
  const float* q = q_ + row * H * dh;
  const float* k = k_ + row * hp.n_kv_heads * dh;
  const Linear& map_q = spec.feature_map == FeatureMap::Hedgehog ? w.hedgehog_q : w.feature_map;
  const Linear& map_k = spec.feature_map == FeatureMap::Hedgehog ? w.hedgehog_k : w.feature_map;
  feature_map(spec, map_q, q, H, 1, dh, phi_q_ + row * features);
  // A key joins S only when it leaves a shared-normalizer window, and is mapped then.
  if (spec.window == 0 || spec.window_mix != WindowMix::SharedNormalizer) {
    feature_map(spec, map_k, k, H, group, dh, phi_k_ + row * features);
  }
}

void Context::recurrent_attention(size_t layer, const int64_t* positions, const Run* runs, size_t n_runs) {
  const Hyperparams& hp = model_.hparams();
  const LinearAttentionSpec& spec = hp.attention(layer).linear;
  const AttentionWeights& w = model_.blocks()[layer].attention;
  const size_t H = hp.n_heads, Hkv = hp.n_kv_heads, dh = hp.head_dim, group = H / Hkv, r = size_t(spec.features);
  const size_t q_width = H * dh, kv_width = Hkv * dh, features = H * r, window = size_t(spec.window);
  const bool shared = window > 0 && spec.window_mix == WindowMix::SharedNormalizer;
  const bool normalized = spec.readout == Readout::Normalized;
  const float window_scale = 1.0f / std::sqrt(float(dh));
  const StateLayout::Layer& part = layout_.layers[layer];
  // Items are (run, kv head): the kv head's window is written once, then each query head reading it.
  auto job = [&](int thread, int threads) {
    size_t begin, end;
    split_range(n_runs * Hkv, thread, threads, &begin, &end);
    float* scores = recurrent_scratch_ + size_t(thread) * recurrent_scratch_floats_;
    float* window_out = scores + window;
    float* leaving_phi = window_out + dh;
    for (size_t item = begin; item < end; ++item) {
      const Run& run = runs[item / Hkv];
      const size_t g = item % Hkv;
      float* block = states_ + size_t(run.sequence) * layout_.floats + part.offset;
      const size_t per_kv = spec.state_per_kv_head;
      const auto state_of = [&](size_t h) { return block + (per_kv ? g : h) * r * dh; };
      const auto normalizer_of = [&](size_t h) { return block + part.state_floats + (per_kv ? g : h) * r; };
      float* keys = block + part.state_floats + part.normalizer_floats + g * window * dh;
      float* values = keys + part.window_floats;
      for (size_t t = run.first; t < run.first + run.count; ++t) {
        const size_t position = size_t(positions[t]);
        const float* v = v_ + t * kv_width + g * dh;
        if (window > 0) {
          float* slot_k = keys + (position % window) * dh;
          float* slot_v = values + (position % window) * dh;
          if (shared && position >= window) {  // the key leaving the window enters S and z
            for (size_t h = g * group; h < (g + 1) * group; ++h) {
              feature_map(spec, Linear{cpu::row_slice(w.hedgehog_k.weight, h * (r / 2), r / 2)}, slot_k, 1, 1, dh,
                          leaving_phi);
              cpu::decayed_state_update(state_of(h), nullptr, 1.0f, leaving_phi, slot_v, r, dh);
              cpu::add(normalizer_of(h), leaving_phi, r);
            }
          }
          std::memcpy(slot_k, k_ + t * kv_width + g * dh, dh * sizeof(float));
          std::memcpy(slot_v, v, dh * sizeof(float));
        }
        if (!shared) {  // the current key enters S now
          const float* row_decay = spec.decay == Decay::KeyGate ? gate_ + t * kv_width + g * dh : nullptr;
          for (size_t h = g * group; h < (g + 1) * group; h += per_kv ? group : 1) {  // each state once
            const float* phi_k = phi_k_ + t * features + (per_kv ? g : h) * r;
            cpu::decayed_state_update(state_of(h), row_decay, w.decay ? w.decay[h] : 1.0f, phi_k, v, r, dh);
            if (normalized) cpu::add(normalizer_of(h), phi_k, r);
          }
        }
        const size_t filled = std::min(position + 1, window);
        for (size_t h = g * group; h < (g + 1) * group; ++h) {
          const float* phi_q = phi_q_ + t * features + h * r;
          float* out = attn_out_ + t * q_width + h * dh;
          cpu::state_readout(state_of(h), phi_q, r, dh, out);
          float window_sum = 0;
          if (window > 0) {
            window_sum = cpu::window_attention(q_ + t * q_width + h * dh, keys, values, filled, dh, dh, window_scale,
                                               scores, window_out);
          }
          if (shared) {  // the window's terms join numerator and denominator, weighted by w_h
            const float* z = normalizer_of(h);
            float denominator = w.window_weight[h] * window_sum;
            for (size_t i = 0; i < r; ++i) denominator += phi_q[i] * z[i];
            for (size_t i = 0; i < dh; ++i) out[i] = (out[i] + w.window_weight[h] * window_out[i]) / denominator;
          } else if (window > 0) {  // Mean: the window's softmax output and the state's, averaged
            for (size_t i = 0; i < dh; ++i) out[i] = 0.5f * out[i] + 0.5f * window_out[i] / window_sum;
          } else if (normalized) {
            const float* z = normalizer_of(h);
            float denominator = 0;
            for (size_t i = 0; i < r; ++i) denominator += phi_q[i] * z[i];
            const float inv = 1.0f / std::max(denominator, spec.floor);
            for (size_t i = 0; i < dh; ++i) out[i] *= inv;
          }
          if (spec.readout == Readout::GroupNorm) cpu::group_norm(out, dh, spec.group_norm_eps);
        }
      }
    }
  };
  pool_.run(job);
}

}  // namespace t2r
