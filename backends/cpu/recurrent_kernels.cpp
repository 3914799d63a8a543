#include "recurrent_kernels.h"

#include <algorithm>
#include <cmath>

namespace t2r::cpu {

void decayed_state_update(float* state, const float* row_decay, float head_decay, const float* phi_k, const float* v,
                          size_t r, size_t d_v) {
  for (size_t i = 0; i < r; ++i) {
    float* row = state + i * d_v;
    const float a = row_decay ? row_decay[i] : head_decay, p = phi_k[i];
    for (size_t j = 0; j < d_v; ++j) row[j] = a * row[j] + p * v[j];
  }
}

void state_readout(const float* state, const float* phi_q, size_t r, size_t d_v, float* out) {
  std::fill(out, out + d_v, 0.0f);
  for (size_t i = 0; i < r; ++i) {
    const float p = phi_q[i];
    const float* row = state + i * d_v;
    for (size_t j = 0; j < d_v; ++j) out[j] += p * row[j];
  }
}

float window_attention(const float* q, const float* keys, const float* values, size_t count, size_t stride,
                       size_t head_dim, float scale, float* scores, float* out) {
  float m = -INFINITY;
  for (size_t j = 0; j < count; ++j) {
    const float* k = keys + j * stride;
    float s = 0;
    for (size_t i = 0; i < head_dim; ++i) s += q[i] * k[i];
    scores[j] = s * scale;
    m = std::max(m, scores[j]);
  }
  std::fill(out, out + head_dim, 0.0f);
  float sum = 0;
  for (size_t j = 0; j < count; ++j) {
    const float e = std::exp(scores[j] - m);
    sum += e;
    const float* v = values + j * stride;
    for (size_t i = 0; i < head_dim; ++i) out[i] += e * v[i];
  }
  return sum;
}

void group_norm(float* x, size_t n, float eps) {
  float mean = 0;
  for (size_t i = 0; i < n; ++i) mean += x[i];
  mean /= float(n);
  float var = 0;
  for (size_t i = 0; i < n; ++i) var += (x[i] - mean) * (x[i] - mean);
  const float inv = 1.0f / std::sqrt(var / float(n) + eps);
  for (size_t i = 0; i < n; ++i) x[i] = (x[i] - mean) * inv;
}

void key_gate(const float* k, size_t n, float temperature, float* gate) {
  for (size_t i = 0; i < n; ++i) {
    // logsigmoid(x) = min(x, 0) - log1p(exp(-|x|)), exact for large |x| in either direction.
    const float log_sigmoid = std::min(k[i], 0.0f) - std::log1p(std::exp(-std::fabs(k[i])));
    gate[i] = std::exp(log_sigmoid / temperature);
  }
}

}  // namespace t2r::cpu
