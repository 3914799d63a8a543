// The chunked form of causal linear attention (kernels.h, LinearAttentionChunk) as four small
// matrix products, each through matmul_tiles.h's axpy_tile<K, T> with T = K::kAxpyTokens, the
// tokens that fit K's registers.
// The products, per sub-chunk of at most kSubChunk tokens (the form is exact for any split):
//   A^T = phi_k phi_q^T   (rows of phi_q^T, transposed on the stack, scaled by phi_k)
//   out = phi_q S + A V   (rows of S scaled by phi_q, rows of V by the causal part of A)
//   S  += phi_k^T V       (rows of V scaled by the columns of phi_k)
// Every vector operation runs along contiguous rows; the coefficients are broadcast scalars.
// Same linkage rules as matmul_tiles.h: internal linkage only, no inline functions with external
// linkage.
#pragma once

#include <cstddef>

#include "kernels.h"
#include "matmul_tiles.h"

namespace t2r::cpu::tiles {
namespace {

constexpr size_t kSubChunk = 64;     // tokens whose scores sit on the stack at once (16 KB)
constexpr size_t kFeatureBlock = 64;  // features of phi_q^T transposed at once (16 KB)

// Columns [j, j + M kLanes) of linear_attention_step's S += phi_k v^T and out = phi_q^T S *
// inverse, v and out held in registers across the r rows, the last vector `last` wide.
template <typename K, size_t M>
inline void step_columns(float* state, const float* phi_q, const float* phi_k, const float* v, size_t r, size_t d_v,
                         size_t j, size_t last, float inverse, float* out) {
  constexpr size_t L = K::kLanes;
  typename K::Vec vv[M], acc[M];
  for (size_t m = 0; m < M; ++m) {
    vv[m] = K::load_first(v + j + L * m, m + 1 == M ? last : L);
    acc[m] = K::zero();
  }
  for (size_t i = 0; i < r; ++i) {
    float* row = state + i * d_v + j;
    for (size_t m = 0; m < M; ++m) {
      const size_t width = m + 1 == M ? last : L;
      const typename K::Vec s = K::madd(K::load_first(row + L * m, width), vv[m], phi_k[i]);
      K::store_first(row + L * m, s, width);
      acc[m] = K::madd(acc[m], s, phi_q[i]);
    }
  }
  for (size_t m = 0; m < M; ++m) K::store_first(out + j + L * m, K::scale(acc[m], inverse), m + 1 == M ? last : L);
}

// One step of causal linear attention for one head (kernel_table.h's linear_attention_step):
// z += phi_k, S += phi_k v^T, out = phi_q^T S / max(phi_q . z, floor).
template <typename K>
void linear_attention_step(float* state, float* normalizer, const float* phi_q, const float* phi_k, const float* v,
                           size_t r, size_t d_v, float floor, float* out) {
  constexpr size_t L = K::kLanes;
  typename K::Vec dot = K::zero();
  size_t i = 0;
  for (; i + L <= r; i += L) {
    const typename K::Vec z = K::add(K::load(normalizer + i), K::load(phi_k + i));
    K::store(normalizer + i, z);
    dot = K::fma(dot, K::load(phi_q + i), z);
  }
  if (i < r) {
    const size_t n = r - i;
    const typename K::Vec z = K::add(K::load_first(normalizer + i, n), K::load_first(phi_k + i, n));
    K::store_first(normalizer + i, z, n);
    dot = K::fma(dot, K::load_first(phi_q + i, n), z);
  }
  const float denominator = K::hsum(dot);
  const float inverse = 1.0f / (denominator > floor ? denominator : floor);
  size_t j = 0;
  for (; j + 4 * L <= d_v; j += 4 * L) step_columns<K, 4>(state, phi_q, phi_k, v, r, d_v, j, L, inverse, out);
  for (; j < d_v; j += L) step_columns<K, 1>(state, phi_q, phi_k, v, r, d_v, j, smaller(L, d_v - j), inverse, out);
}

// axpy_tile over `rows` rows of y, T at a time.
template <typename K>
void axpy_rows(size_t rows, const float* coef, size_t coef_row, size_t coef_col, const float* b, size_t b_stride,
               size_t count, size_t d, float* y, size_t y_stride) {
  constexpr size_t T = K::kAxpyTokens;
  size_t t = 0;
  for (; t + T <= rows; t += T) {
    axpy_tile<K, T>(coef + t * coef_row, coef_row, coef_col, b, b_stride, count, d, y + t * y_stride, y_stride);
  }
  for (; t < rows; ++t) axpy_tile<K, 1>(coef + t * coef_row, coef_row, coef_col, b, b_stride, count, d, y + t * y_stride, y_stride);
}

template <typename K>
void linear_attention_chunk(const LinearAttentionChunk& c, float* state, float* normalizer) {
  alignas(64) float scores[kSubChunk * kSubChunk];    // A^T: row s holds A[t][s] for every t
  alignas(64) float q_t[kFeatureBlock * kSubChunk];  // phi_q^T, a block of features
  float denominator[kSubChunk];
  const size_t r = c.r, d_v = c.d_v;
  for (size_t t0 = 0; t0 < c.n; t0 += kSubChunk) {
    const size_t m = smaller(kSubChunk, c.n - t0);
    const float* phi_q = c.phi_q + t0 * c.phi_stride;
    const float* phi_k = c.phi_k + t0 * c.phi_stride;
    const float* v = c.v + t0 * c.v_stride;
    float* out = c.out + t0 * c.out_stride;

    // A^T[s][t] = phi_k_s . phi_q_t, then the part above the diagonal (t < s) cleared.
    for (size_t i = 0; i < m * kSubChunk; ++i) scores[i] = 0;
    for (size_t f0 = 0; f0 < r; f0 += kFeatureBlock) {
      const size_t features = smaller(kFeatureBlock, r - f0);
      for (size_t t = 0; t < m; ++t) {
        for (size_t f = 0; f < features; ++f) q_t[f * kSubChunk + t] = phi_q[t * c.phi_stride + f0 + f];
      }
      axpy_rows<K>(m, phi_k + f0, c.phi_stride, 1, q_t, kSubChunk, features, m, scores, kSubChunk);
    }
    for (size_t s = 1; s < m; ++s) {
      for (size_t t = 0; t < s; ++t) scores[s * kSubChunk + t] = 0;
    }

    // Denominators: phi_q_t . z plus the causal row sums of A.
    for (size_t t = 0; t < m; ++t) {
      float dot = 0;
      for (size_t i = 0; i < r; ++i) dot += phi_q[t * c.phi_stride + i] * normalizer[i];
      denominator[t] = dot;
    }
    for (size_t s = 0; s < m; ++s) {
      for (size_t t = s; t < m; ++t) denominator[t] += scores[s * kSubChunk + t];
    }

    // out = phi_q S + A V; a tile of tokens needs the rows of V up to its last token only.
    for (size_t t = 0; t < m; ++t) {
      for (size_t j = 0; j < d_v; ++j) out[t * c.out_stride + j] = 0;
    }
    axpy_rows<K>(m, phi_q, c.phi_stride, 1, state, d_v, r, d_v, out, c.out_stride);
    constexpr size_t T = K::kAxpyTokens;
    size_t t = 0;
    for (; t + T <= m; t += T) {
      axpy_tile<K, T>(scores + t, 1, kSubChunk, v, c.v_stride, t + T, d_v, out + t * c.out_stride,
                               c.out_stride);
    }
    for (; t < m; ++t) {
      axpy_tile<K, 1>(scores + t, 1, kSubChunk, v, c.v_stride, t + 1, d_v, out + t * c.out_stride,
                               c.out_stride);
    }
    for (size_t u = 0; u < m; ++u) {
      const float inverse = 1.0f / (denominator[u] > c.floor ? denominator[u] : c.floor);
      for (size_t j = 0; j < d_v; ++j) out[u * c.out_stride + j] *= inverse;
    }

    // The state takes in the whole sub-chunk: S += phi_k^T V, z += sum_s phi_k_s.
    for (size_t s = 0; s < m; ++s) {
      for (size_t i = 0; i < r; ++i) normalizer[i] += phi_k[s * c.phi_stride + i];
    }
    axpy_rows<K>(r, phi_k, 1, c.phi_stride, v, c.v_stride, m, d_v, state, d_v);
  }
}

}  // namespace
}  // namespace t2r::cpu::tiles
