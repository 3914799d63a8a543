// The portable scalar kernels: the reference implementations of the dispatched kernels
// (kernels_reference.h) and the small kernels every path shares.
#include "kernels_reference.h"

#include <cmath>
#include <cstring>

#include "quantize.h"

namespace t2r::cpu {
namespace {

float g_f16_table[65536];

// Eight independent partial sums let the compiler vectorize without reassociating.
template <typename Load>
float dot(size_t n, const float* x, Load element) {
  float acc[8] = {};
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (size_t u = 0; u < 8; ++u) acc[u] += element(i + u) * x[i + u];
  }
  for (; i < n; ++i) acc[i % 8] += element(i) * x[i];
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

void matmul_float(const Matrix& w, const float* x, size_t n, const float* bias, float* y, size_t row_begin,
                  size_t row_end) {
  for (size_t r = row_begin; r < row_end; ++r) {
    for (size_t t = 0; t < n; ++t) {
      const float* xt = x + t * w.cols;
      float sum;
      if (w.dtype == DType::F32) {
        const float* row = static_cast<const float*>(w.data) + r * w.cols;
        sum = dot(w.cols, xt, [row](size_t i) { return row[i]; });
      } else if (w.dtype == DType::BF16) {
        const uint16_t* row = static_cast<const uint16_t*>(w.data) + r * w.cols;
        sum = dot(w.cols, xt, [row](size_t i) { return bf16_to_f32(row[i]); });
      } else {
        const uint16_t* row = static_cast<const uint16_t*>(w.data) + r * w.cols;
        sum = dot(w.cols, xt, [row](size_t i) { return g_f16_table[row[i]]; });
      }
      y[t * w.rows + r] = bias ? sum + bias[r] : sum;
    }
  }
}

int32_t block_dot(const BlockQ8_0& w, const int8_t* x) {
  int32_t sum = 0;
  for (size_t j = 0; j < 32; ++j) sum += int32_t(w.qs[j]) * x[j];
  return sum;
}

int32_t block_dot(const BlockQ4_0& w, const int8_t* x) {
  int32_t sum = 0;
  for (size_t j = 0; j < 16; ++j) sum += ((w.qs[j] & 0x0f) - 8) * x[j] + ((w.qs[j] >> 4) - 8) * x[j + 16];
  return sum;
}

// Per token, x is quantized a tile of blocks at a time (on the stack); every row then adds the
// tile's blocks in order, so y[t, r] = sum over blocks of (d_w d_x) * (integer dot), as ggml sums.
template <typename Block>
void matmul_blocks(const Matrix& w, const float* x, size_t n, const float* bias, float* y, size_t row_begin,
                   size_t row_end) {
  constexpr size_t kTile = 64;
  int8_t q[kTile * 32];
  float d[kTile];
  const size_t blocks = w.cols / 32;
  for (size_t t = 0; t < n; ++t) {
    float* yt = y + t * w.rows;
    for (size_t b0 = 0; b0 < blocks; b0 += kTile) {
      const size_t count = blocks - b0 < kTile ? blocks - b0 : kTile;
      reference::quantize_activations(x + t * w.cols + b0 * 32, count, q, d);
      for (size_t r = row_begin; r < row_end; ++r) {
        const Block* row = static_cast<const Block*>(w.data) + r * blocks + b0;
        float sum = b0 == 0 ? 0.0f : yt[r];
        for (size_t b = 0; b < count; ++b) sum += g_f16_table[row[b].d] * d[b] * float(block_dot(row[b], q + 32 * b));
        yt[r] = sum;
      }
    }
    if (bias) {
      for (size_t r = row_begin; r < row_end; ++r) yt[r] += bias[r];
    }
  }
}

}  // namespace

namespace reference {

void init_tables() {
  for (uint32_t h = 0; h < 65536; ++h) g_f16_table[h] = f16_to_f32(uint16_t(h));
}

void quantize_activations(const float* x, size_t blocks, int8_t* q, float* d) {
  for (size_t b = 0; b < blocks; ++b, x += 32, q += 32) {
    float amax = 0;
    for (size_t j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    d[b] = amax / 127;
    const float id = d[b] != 0 ? 1.0f / d[b] : 0.0f;
    for (size_t j = 0; j < 32; ++j) q[j] = int8_t(std::nearbyint(x[j] * id));
  }
}

void matmul(const Matrix& w, const float* x, size_t n, const float* bias, float* y, size_t row_begin,
            size_t row_end) {
  switch (w.dtype) {
    case DType::Q8_0: return matmul_blocks<BlockQ8_0>(w, x, n, bias, y, row_begin, row_end);
    case DType::Q4_0: return matmul_blocks<BlockQ4_0>(w, x, n, bias, y, row_begin, row_end);
    default: return matmul_float(w, x, n, bias, y, row_begin, row_end);
  }
}

void linear_attention_step(float* state, float* normalizer, const float* phi_q, const float* phi_k,
                           const float* v, size_t r, size_t d_v, float floor, float* out) {
  float denominator = 0;
  for (size_t i = 0; i < r; ++i) {
    normalizer[i] += phi_k[i];
    denominator += phi_q[i] * normalizer[i];
  }
  for (size_t j = 0; j < d_v; ++j) out[j] = 0;
  for (size_t i = 0; i < r; ++i) {
    float* row = state + i * d_v;
    const float k = phi_k[i], q = phi_q[i];
    for (size_t j = 0; j < d_v; ++j) {
      row[j] += k * v[j];
      out[j] += q * row[j];
    }
  }
  const float inv = 1.0f / (denominator > floor ? denominator : floor);
  for (size_t j = 0; j < d_v; ++j) out[j] *= inv;
}

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

void softmax_attention(const float* q, const float* keys, const float* values, size_t length,
                       size_t stride, size_t head_dim, float* scores, float* out) {
  for (size_t t = 0; t < length; ++t) {
    scores[t] = dot(head_dim, q, [k = keys + t * stride](size_t i) { return k[i]; });
  }
  softmax(scores, length);
  for (size_t j = 0; j < head_dim; ++j) out[j] = 0;
  for (size_t t = 0; t < length; ++t) {
    const float* v = values + t * stride;
    for (size_t j = 0; j < head_dim; ++j) out[j] += scores[t] * v[j];
  }
}

void silu_mul(float* gate, const float* up, size_t n) {
  for (size_t i = 0; i < n; ++i) gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

}  // namespace reference

void matrix_row(const Matrix& w, size_t row, float scale, float* out) {
  const auto* bytes = static_cast<const unsigned char*>(w.data) + row * row_bytes(w.dtype, w.cols);
  switch (w.dtype) {
    case DType::F32: std::memcpy(out, bytes, w.cols * sizeof(float)); break;
    case DType::F16:
    case DType::BF16:
      for (size_t i = 0; i < w.cols; ++i) {
        uint16_t h;
        std::memcpy(&h, bytes + 2 * i, 2);
        out[i] = w.dtype == DType::F16 ? g_f16_table[h] : bf16_to_f32(h);
      }
      break;
    case DType::Q8_0: dequantize_q8_0(reinterpret_cast<const BlockQ8_0*>(bytes), w.cols, out); break;
    case DType::Q4_0: dequantize_q4_0(reinterpret_cast<const BlockQ4_0*>(bytes), w.cols, out); break;
  }
  for (size_t i = 0; i < w.cols; ++i) out[i] *= scale;
}

void layer_norm(const float* x, const float* weight, const float* bias, float eps, size_t n, float* out) {
  float mean = 0;
  for (size_t i = 0; i < n; ++i) mean += x[i];
  mean /= float(n);
  float var = 0;
  for (size_t i = 0; i < n; ++i) var += (x[i] - mean) * (x[i] - mean);
  var /= float(n);
  float inv = 1.0f / std::sqrt(var + eps);
  for (size_t i = 0; i < n; ++i) out[i] = (x[i] - mean) * inv * weight[i] + (bias ? bias[i] : 0.0f);
}

void rms_norm(const float* x, const float* weight, float eps, size_t n, float* out) {
  float ss = 0;
  for (size_t i = 0; i < n; ++i) ss += x[i] * x[i];
  float inv = 1.0f / std::sqrt(ss / float(n) + eps);
  for (size_t i = 0; i < n; ++i) out[i] = weight[i] * (x[i] * inv);
}

void add(float* x, const float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) x[i] += y[i];
}

void gelu_tanh(float* x, size_t n) {
  const float k = 0.7978845608028654f;  // sqrt(2 / pi)
  for (size_t i = 0; i < n; ++i) x[i] = 0.5f * x[i] * (1.0f + std::tanh(k * (x[i] + 0.044715f * x[i] * x[i] * x[i])));
}

void relu(float* x, size_t n) {
  for (size_t i = 0; i < n; ++i) x[i] = x[i] > 0 ? x[i] : 0.0f;
}

// elu(x) + 1 as the ELU models were trained and referenced (float32 on a GPU): for x <= 0 the sum
// lands on multiples of 2^-24, and CUDA's expm1f returns exactly -1 once e^x < 2^-24.5, so phi is
// 0 there. It matters where phi(q) . z meets the denominator floor.
void elu_plus_one(float* x, size_t n) {
  const float flush_below = -24.5f * 0.69314718f;
  for (size_t i = 0; i < n; ++i) {
    x[i] = x[i] > 0 ? x[i] + 1.0f : x[i] < flush_below ? 0.0f : std::expm1(x[i]) + 1.0f;
  }
}

void rotary(float* x, size_t heads, size_t head_dim, const float* inv_freq, int64_t position) {
  const size_t half = head_dim / 2;
  for (size_t i = 0; i < half; ++i) {
    float angle = float(position) * inv_freq[i];
    float c = std::cos(angle), s = std::sin(angle);
    for (size_t h = 0; h < heads; ++h) {
      float* v = x + h * head_dim;
      float a = v[i], b = v[i + half];
      v[i] = a * c - b * s;
      v[i + half] = b * c + a * s;
    }
  }
}

void add_sinusoidal_position(float* x, size_t dim, const float* freq, int64_t position) {
  const size_t half = dim / 2;
  for (size_t i = 0; i < half; ++i) {
    float angle = float(position) * freq[i];
    x[i] += std::sin(angle);
    x[half + i] += std::cos(angle);
  }
}

void softmax(float* x, size_t n) {
  float max = x[0];
  for (size_t i = 1; i < n; ++i) max = x[i] > max ? x[i] : max;
  float sum = 0;
  for (size_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - max);
    sum += x[i];
  }
  for (size_t i = 0; i < n; ++i) x[i] /= sum;
}

}  // namespace t2r::cpu
