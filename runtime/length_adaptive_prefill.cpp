// Length-adaptive prefill (Kim & Cho's Length-Adaptive Transformer, README "Length-adaptive
// prefill"): the prompt goes through the model layer by layer, each layer in the same chunks as a
// batch prefill, and only the most significant tokens enter the next layer.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "context.h"
#include "error.h"

namespace t2r {

const float* Context::prefill_adaptive(int sequence, const int32_t* tokens, size_t count, const LengthConfig& config) {
  const Hyperparams& hp = model_.hparams();
  const size_t L = size_t(hp.n_layers), d = size_t(hp.dim);
  if (max_adaptive_prompt_ == 0) {
    throw Error("length-adaptive prefill is off in this session (SessionOptions::max_adaptive_prompt is 0)");
  }
  if (count > max_adaptive_prompt_) {
    throw Error("a prompt of " + std::to_string(count) + " tokens is longer than this session's max adaptive prompt (" +
                std::to_string(max_adaptive_prompt_) + ")");
  }
  config.validate(L);
  const int64_t start = position(sequence);
  check_prompt(hp, tokens, count, start, -1);  // linear attention: no KV cache to fill
  if (count == 0) return logits_;

  for (size_t t = 0; t < count; ++t) {
    positions_[t] = start + int64_t(t);
    embed(model_.embedding(), tokens[t], positions_[t], x_ + t * d);
  }
  size_t n = count;  // prompt tokens entering layer l: rows [0, n) of x_
  for (size_t l = 0; l < L; ++l) {
    const size_t next = l + 1 < L ? config.tokens_entering(l + 1, count) : n;
    const size_t window_start = n - std::min(kLengthWindow, n);
    const size_t features = size_t(hp.n_heads * hp.attention(l).linear.features);
    // The same chunks as prefill(), so the full configuration makes the same kernel calls.
    for (size_t s = 0; s < n; s += max_batch_) {
      const size_t m = std::min(max_batch_, n - s);
      const Run run{sequence, 0, uint32_t(m)};
      layer_forward(l, x_ + s * d, positions_ + s, m, &run, 1);
      if (next == n) continue;  // nothing dropped after this layer: no scores needed
      std::memcpy(prompt_phi_k_ + s * features, phi_k_, m * features * sizeof(float));
      for (size_t t = std::max(s, window_start); t < s + m; ++t) {
        std::memcpy(window_phi_q_ + (t - window_start) * features, phi_q_ + (t - s) * features, features * sizeof(float));
      }
    }
    if (next < n) {
      select_tokens(sequence, l, n, next, config);
      n = next;
    }
  }
  const uint32_t last = uint32_t(n - 1);  // the last prompt token is always kept, and last
  compute_logits(x_, &last, 1);
  outputs_ = 1;
  positions_of_[size_t(sequence)] += int64_t(count);
  return logits_;
}

void Context::select_tokens(int sequence, size_t layer, size_t n, size_t keep, const LengthConfig& config) {
  const Hyperparams& hp = model_.hparams();
  const LinearAttentionSpec& spec = hp.attention(layer).linear;
  const size_t d = size_t(hp.dim), H = size_t(hp.n_heads), r = size_t(spec.features), features = H * r;
  const size_t window_start = n - std::min(kLengthWindow, n);
  const size_t pinned = std::min(config.pinned_head, window_start);
  const size_t picks = keep - (n - window_start) - pinned;  // tokens_entering keeps room for the pinned ones

  switch (config.significance) {
    case Significance::Attention: {
      // sum_i A[h, i, t] = phi(k_t) . sum_i phi(q_i) / max(phi(q_i) . z_i, floor) over the window
      // queries i > t, per head: one vector of H r floats scores every candidate. z_i (the
      // normalizer just after token i) is the layer's final one minus the keys after i.
      float* z = window_normalizer_;
      const StateLayout::Layer& part = layout_.layers[layer];
      std::memcpy(z, sequence_state(sequence) + part.offset + part.state_floats, features * sizeof(float));
      std::memset(query_sum_, 0, features * sizeof(float));
      for (size_t i = n; i-- > window_start;) {
        const float* q = window_phi_q_ + (i - window_start) * features;
        for (size_t h = 0; h < H; ++h) {
          float dot = 0;
          for (size_t j = h * r; j < (h + 1) * r; ++j) dot += q[j] * z[j];
          const float inverse = 1.0f / std::max(dot, spec.floor);
          for (size_t j = h * r; j < (h + 1) * r; ++j) query_sum_[j] += q[j] * inverse;
        }
        const float* k = prompt_phi_k_ + i * features;
        for (size_t j = 0; j < features; ++j) z[j] -= k[j];
      }
      for (size_t t = pinned; t < window_start; ++t) {
        const float* k = prompt_phi_k_ + t * features;
        float score = 0;
        for (size_t j = 0; j < features; ++j) score += k[j] * query_sum_[j];
        significance_[t] = score;
      }
      break;
    }
    case Significance::KeyNorm:
      for (size_t t = pinned; t < window_start; ++t) {
        const float* k = prompt_phi_k_ + t * features;
        float score = 0;
        for (size_t h = 0; h < H; ++h) {
          float squares = 0;
          for (size_t j = h * r; j < (h + 1) * r; ++j) squares += k[j] * k[j];
          score += std::sqrt(squares);
        }
        significance_[t] = score;
      }
      break;
    case Significance::Recency:
      for (size_t t = pinned; t < window_start; ++t) significance_[t] = float(t);
      break;
  }

  // The `picks` most significant candidates (ties to the earlier token), back in prompt order.
  uint32_t* first = candidates_;
  uint32_t* last = candidates_ + (window_start - pinned);
  for (size_t t = pinned; t < window_start; ++t) candidates_[t - pinned] = uint32_t(t);
  const auto more_significant = [&](uint32_t a, uint32_t b) {
    return significance_[a] > significance_[b] || (significance_[a] == significance_[b] && a < b);
  };
  std::nth_element(first, first + picks, last, more_significant);
  std::sort(first, first + picks);

  // Compact the kept rows to the front, in order; the pinned head is already in place.
  size_t out = pinned;
  const auto keep_row = [&](size_t from) {
    if (from != out) {
      std::memcpy(x_ + out * d, x_ + from * d, d * sizeof(float));
      positions_[out] = positions_[from];
    }
    ++out;
  };
  for (size_t i = 0; i < picks; ++i) keep_row(candidates_[i]);
  for (size_t t = window_start; t < n; ++t) keep_row(t);
}

}  // namespace t2r
