#include "linear_attention.h"

namespace t2r::cpu {

void linear_attention_chunk(const LinearAttentionChunk& c, float* state, float* normalizer) {
  const size_t n = c.n, r = c.r, d_v = c.d_v;
  for (size_t t = 0; t < n; ++t) {
    const float* q = c.phi_q + t * c.phi_stride;
    float* out = c.out + t * c.out_stride;
    // Contribution of earlier chunks, through the state.
    float denominator = 0;
    for (size_t i = 0; i < r; ++i) denominator += q[i] * normalizer[i];
    for (size_t j = 0; j < d_v; ++j) out[j] = 0;
    for (size_t i = 0; i < r; ++i) {
      const float qi = q[i];
      const float* row = state + i * d_v;
      for (size_t j = 0; j < d_v; ++j) out[j] += qi * row[j];
    }
    // Contribution of this chunk: row t of the causal score matrix, used as it is computed.
    for (size_t s = 0; s <= t; ++s) {
      const float* k = c.phi_k + s * c.phi_stride;
      float dot = 0;
      for (size_t i = 0; i < r; ++i) dot += q[i] * k[i];
      denominator += dot;
      const float* v = c.v + s * c.v_stride;
      for (size_t j = 0; j < d_v; ++j) out[j] += dot * v[j];
    }
    const float inv = 1.0f / (denominator > c.floor ? denominator : c.floor);
    for (size_t j = 0; j < d_v; ++j) out[j] *= inv;
  }
  for (size_t s = 0; s < n; ++s) {
    const float* k = c.phi_k + s * c.phi_stride;
    const float* v = c.v + s * c.v_stride;
    for (size_t i = 0; i < r; ++i) {
      normalizer[i] += k[i];
      float* row = state + i * d_v;
      for (size_t j = 0; j < d_v; ++j) row[j] += k[i] * v[j];
    }
  }
}

}  // namespace t2r::cpu
