// The chunked form of causal linear attention (kernels.h, LinearAttentionChunk) as four small
// matrix products, each through one micro-kernel an instruction-set file supplies as a static
// member of K:
//   axpy_tile<T>(coef, coef_row, coef_col, b, b_stride, count, d, y, y_stride)
//       for t < T: y[t][0..d) += sum over i < count of coef[t, i] * b[i][0..d), where coef[t, i]
//       is at coef + t * coef_row + i * coef_col; d is any width
//   kAxpyTokens                     the T that fits K's registers
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
#include "matmul_tiles.h"  // smaller()

namespace t2r::cpu::tiles {
namespace {

constexpr size_t kSubChunk = 64;     // tokens whose scores sit on the stack at once (16 KB)
constexpr size_t kFeatureBlock = 64;  // features of phi_q^T transposed at once (16 KB)

// axpy_tile over `rows` rows of y, T at a time.
template <typename K>
void axpy_rows(size_t rows, const float* coef, size_t coef_row, size_t coef_col, const float* b, size_t b_stride,
               size_t count, size_t d, float* y, size_t y_stride) {
  constexpr size_t T = K::kAxpyTokens;
  size_t t = 0;
  for (; t + T <= rows; t += T) {
    K::template axpy_tile<T>(coef + t * coef_row, coef_row, coef_col, b, b_stride, count, d, y + t * y_stride, y_stride);
  }
  for (; t < rows; ++t) K::template axpy_tile<1>(coef + t * coef_row, coef_row, coef_col, b, b_stride, count, d, y + t * y_stride, y_stride);
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
      K::template axpy_tile<T>(scores + t, 1, kSubChunk, v, c.v_stride, t + T, d_v, out + t * c.out_stride,
                               c.out_stride);
    }
    for (; t < m; ++t) {
      K::template axpy_tile<1>(scores + t, 1, kSubChunk, v, c.v_stride, t + 1, d_v, out + t * c.out_stride,
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
