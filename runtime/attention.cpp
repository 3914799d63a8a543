// The attention block of a Context layer: projections, positions, then the layer's form, over the
// batch's runs (rows of one sequence). Linear attention keeps S and z per head in each sequence's
// state: a run of one row is the recurrent step, a longer run (a prompt chunk) the chunked form.
// Softmax attention appends each row's key and value to its sequence's cache and attends over it.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "context.h"
#include "feature_map.h"
#include "kernels.h"

namespace t2r {

void Context::attention(size_t layer, const int64_t* positions, size_t n, const Run* runs, size_t n_runs) {
  const Hyperparams& hp = model_.hparams();
  const AttentionSpec& spec = hp.attention(layer);
  const AttentionWeights& w = model_.blocks()[layer].attention;
  const size_t H = hp.n_heads, Hkv = hp.n_kv_heads, dh = hp.head_dim, group = H / Hkv;
  const size_t q_width = H * dh, kv_width = Hkv * dh;
  const bool folded = spec.is_linear() && spec.linear.folded;
  const bool recurrent = spec.is_linear() && !spec.linear.fused();

  if (folded) {  // the projections give the feature maps' pre-activations
    matmul(w.feature_q, xb_, n, phi_q_);
    matmul(w.feature_k, xb_, n, phi_k_);
  } else {
    matmul(w.q, xb_, n, q_);
    matmul(w.k, xb_, n, k_);
    // YaRN multiplies cos and sin by its attention factor, so both q and k (the feature map of
    // linear attention sees each, so the factor cannot be moved onto q alone).
    const float rotary_gain = hp.positions == PositionKind::Rotary ? float(hp.rotary.attention_factor) : 1.0f;
    // The recurrent forms keep q unscaled: their feature maps read it so, and their windows scale scores.
    const float scale = recurrent ? rotary_gain : 1.0f / std::sqrt(float(dh)) * rotary_gain;
    for_rows(n, [&](size_t begin, size_t end) {
      for (size_t t = begin; t < end; ++t) {
        float* q = q_ + t * q_width;
        float* k = k_ + t * kv_width;
        if (recurrent) before_rotary(spec.linear, q, k, t);
        if (hp.positions == PositionKind::Rotary) {
          cpu::rotary(q, H, dh, model_.position_freq().data(), positions[t]);
          cpu::rotary(k, Hkv, dh, model_.position_freq().data(), positions[t]);
        }
        for (size_t i = 0; i < q_width; ++i) q[i] *= scale;
        if (rotary_gain != 1.0f) {
          for (size_t i = 0; i < kv_width; ++i) k[i] *= rotary_gain;
        }
      }
    });
  }
  matmul(w.v, xb_, n, v_);

  if (!spec.is_linear()) return softmax_attention(layer, positions, n, runs, n_runs);
  const size_t features = H * size_t(spec.linear.features);
  if (recurrent) {
    for_rows(n, [&](size_t begin, size_t end) {
      for (size_t t = begin; t < end; ++t) after_rotary(spec.linear, w, t);
    });
    return recurrent_attention(layer, positions, runs, n_runs);
  }
  if (n > 1 && spec.linear.feature_map == FeatureMap::ReluMlp && !folded) {
    // Several rows: a matmul per head, the query heads and then the key heads split across at most
    // H threads, each gathering a head's rows into its n x d_h of attn_out_ (written only later, by
    // linear_attention).
    const size_t r = size_t(spec.linear.features);
    auto job = [&](int thread, int threads) {
      const int workers = std::min(threads, int(H));
      if (thread >= workers) return;
      size_t begin, end;
      split_range(2 * H, thread, workers, &begin, &end);
      float* scratch = attn_out_ + size_t(thread) * n * dh;
      const size_t q_end = std::min(end, H), k_begin = std::max(begin, H);
      if (begin < q_end) relu_mlp_rows(w.feature_map, r, q_, q_width, n, begin, q_end, 1, dh, phi_q_, scratch);
      if (k_begin < end) relu_mlp_rows(w.feature_map, r, k_, kv_width, n, k_begin - H, end - H, group, dh, phi_k_, scratch);
    };
    pool_.run(job);
  } else {
    for_rows(n, [&](size_t begin, size_t end) {
      for (size_t t = begin; t < end; ++t) {
        float* phi_q = phi_q_ + t * features;
        float* phi_k = phi_k_ + t * features;
        feature_map(spec.linear, w.feature_map, folded ? phi_q : q_ + t * q_width, H, 1, dh, phi_q);
        feature_map(spec.linear, w.feature_map, folded ? phi_k : k_ + t * kv_width, H, group, dh, phi_k);
      }
    });
  }
  linear_attention(layer, runs, n_runs);
}

void Context::linear_attention(size_t layer, const Run* runs, size_t n_runs) {
  const Hyperparams& hp = model_.hparams();
  const LinearAttentionSpec& spec = hp.attention(layer).linear;
  const size_t H = hp.n_heads, dh = hp.head_dim, group = H / hp.n_kv_heads, r = size_t(spec.features);
  const size_t q_width = H * dh, kv_width = hp.n_kv_heads * dh, features = H * r;
  const StateLayout::Layer& part = layout_.layers[layer];
  auto job = [&](int thread, int threads) {
    size_t begin, end;
    split_range(n_runs * H, thread, threads, &begin, &end);
    for (size_t item = begin; item < end; ++item) {
      const Run& run = runs[item / H];
      const size_t h = item % H, first = run.first;
      float* block = states_ + size_t(run.sequence) * layout_.floats + part.offset;
      float* state = block + h * r * dh;
      float* normalizer = block + part.state_floats + h * r;
      const float* phi_q = phi_q_ + first * features + h * r;
      const float* phi_k = phi_k_ + first * features + h * r;
      const float* v = v_ + first * kv_width + (h / group) * dh;
      float* out = attn_out_ + first * q_width + h * dh;
      if (run.count == 1) {  // decoding: the recurrent form is the whole computation
        cpu::linear_attention_step(state, normalizer, phi_q, phi_k, v, r, dh, spec.floor, out);
        continue;
      }
      const cpu::LinearAttentionChunk chunk{phi_q, phi_k, features, v,  kv_width,  out,
                                            q_width, run.count, r,  dh, spec.floor};
      cpu::linear_attention_chunk(chunk, state, normalizer);
    }
  };
  pool_.run(job);
}

void Context::softmax_attention(size_t layer, const int64_t* positions, size_t n, const Run* runs, size_t n_runs) {
  const Hyperparams& hp = model_.hparams();
  const size_t H = hp.n_heads, dh = hp.head_dim, group = H / hp.n_kv_heads;
  const size_t q_width = H * dh, kv_width = hp.n_kv_heads * dh, context = size_t(layout_.max_context);
  const size_t offset = layout_.layers[layer].offset;
  const size_t window = size_t(hp.attention(layer).window);
  const auto keys_of = [&](int32_t sequence) { return states_ + size_t(sequence) * layout_.floats + offset; };
  for (size_t i = 0; i < n_runs; ++i) {
    float* keys = keys_of(runs[i].sequence);
    float* values = keys + context * kv_width;
    const size_t first = runs[i].first, at = size_t(positions[first]) * kv_width, bytes = runs[i].count * kv_width * 4;
    std::memcpy(keys + at, k_ + first * kv_width, bytes);
    std::memcpy(values + at, v_ + first * kv_width, bytes);
  }
  auto job = [&](int thread, int threads) {
    size_t begin, end;
    split_range(n * H, thread, threads, &begin, &end);
    float* scores = scores_ + size_t(thread) * scores_stride_;
    size_t run = 0;
    for (size_t item = begin; item < end; ++item) {
      const size_t t = item / H, h = item % H, kv = h / group;
      while (t >= runs[run].first + runs[run].count) ++run;
      // A sliding window reads only the last `window` positions of the cache.
      const size_t seen = size_t(positions[t]) + 1, first = window > 0 && seen > window ? seen - window : 0;
      const float* keys = keys_of(runs[run].sequence) + first * kv_width;
      cpu::softmax_attention(q_ + t * q_width + h * dh, keys + kv * dh, keys + context * kv_width + kv * dh,
                             seen - first, kv_width, dh, scores, attn_out_ + t * q_width + h * dh);
    }
  };
  pool_.run(job);
}

}  // namespace t2r
