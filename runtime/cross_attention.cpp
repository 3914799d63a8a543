// A translation decoder layer's attention to its source: each row reads the memory encode() left in
// the slot its sequence is attached to. Linear cross attention is a read of S and z, whatever the
// source length; softmax cross attention attends over the source's keys and values.
#include <cmath>

#include "context.h"
#include "feature_map.h"
#include "kernels.h"

namespace t2r {
namespace {

// out = phi_q^T S / max(|phi_q . z|, floor) for one head: S [r, d_v], z [r].
void read_state(const float* state, const float* normalizer, const float* phi_q, size_t r, size_t d_v, float floor,
                float* out) {
  float denominator = 0;
  for (size_t i = 0; i < r; ++i) denominator += phi_q[i] * normalizer[i];
  for (size_t j = 0; j < d_v; ++j) out[j] = 0;
  for (size_t i = 0; i < r; ++i) {
    const float* row = state + i * d_v;
    for (size_t j = 0; j < d_v; ++j) out[j] += phi_q[i] * row[j];
  }
  const float inv = 1.0f / std::max(std::fabs(denominator), floor);
  for (size_t j = 0; j < d_v; ++j) out[j] *= inv;
}

}  // namespace

void Context::project_queries(const Linear& w, size_t n, size_t head_dim) {
  matmul(w, xb_, n, q_);
  const size_t width = w.weight.rows;
  const float scale = 1.0f / std::sqrt(float(head_dim));
  for_rows(n, [&](size_t begin, size_t end) {
    for (size_t i = begin * width; i < end * width; ++i) q_[i] *= scale;
  });
}

void Context::cross_attention(size_t layer, size_t n, const Run* runs) {
  const Hyperparams& hp = model_.hparams();
  const AttentionSpec& spec = hp.layers[layer].cross;
  const AttentionWeights& w = model_.blocks()[layer].cross;
  const size_t H = size_t(hp.n_heads), dh = size_t(hp.head_dim), width = H * dh;
  const size_t r = size_t(spec.linear.features), features = H * r;
  const bool folded = spec.is_linear() && spec.linear.folded;
  if (folded) {  // the projection gives phi's pre-activation
    matmul(w.feature_q, xb_, n, phi_q_);
  } else {
    project_queries(w.q, n, dh);
  }
  if (spec.is_linear()) {
    for_rows(n, [&](size_t begin, size_t end) {
      for (size_t t = begin; t < end; ++t) {
        float* phi_q = phi_q_ + t * features;
        feature_map(spec.linear, w.feature_map, folded ? phi_q : q_ + t * width, H, 1, dh, phi_q);
      }
    });
  }
  auto job = [&](int thread, int threads) {
    size_t begin, end;
    split_range(n * H, thread, threads, &begin, &end);
    size_t run = 0;
    for (size_t item = begin; item < end; ++item) {
      const size_t t = item / H, h = item % H;
      while (t >= runs[run].first + runs[run].count) ++run;
      const int source = source_of_[size_t(runs[run].sequence)];
      const float* memory = source_memory(source, layer);
      float* out = attn_out_ + t * width + h * dh;
      if (spec.is_linear()) {
        read_state(memory + h * r * dh, memory + H * r * dh + h * r, phi_q_ + t * features + h * r, r, dh,
                   spec.linear.floor, out);
      } else {
        const float* keys = memory + h * dh;
        cpu::softmax_attention(q_ + t * width + h * dh, keys, keys + max_source_length_ * width,
                               source_length_[size_t(source)], width, dh, scores_ + size_t(thread) * scores_stride_, out);
      }
    }
  };
  pool_.run(job);
}

}  // namespace t2r
