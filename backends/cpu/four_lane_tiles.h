// The loop nests the two 4-lane instruction sets (NEON, WebAssembly SIMD128) share, over the
// static members of a type L that an instruction-set file supplies:
//   Vec                             4 floats
//   zero(), store(p, v)
//   load(p)                         4 floats, or 4 F16 or BF16 weights converted (exactly)
//   add(a, b), fma(acc, a, b)       a + b, acc + a * b (fused where the instruction set has it)
//   madd(acc, a, s), scale(a, s)    acc + a * s (likewise), a * s
//   hsum(v)                         the sum of the lanes
//   add_block<Q>(w, b, q, d, acc)   acc + block b of the row at w times the q8 activations (q, d)
//   kAxpyTokens                     the T of axpy_tile that fits L's registers
// FourLanes<L, Vec> gives L the float and block micro-kernels matmul_tiles.h and
// linear_attention_tiles.h ask for; linear_attention_step and softmax_attention are the kernels of
// kernel_table.h. Same linkage rules as matmul_tiles.h.
#pragma once

#include <cstddef>
#include <cstring>

#include "kernels.h"
#include "matmul_tiles.h"

namespace t2r::cpu::tiles {
namespace {

template <typename L, typename Vec4>
struct FourLanes {
  // The first n (< 4) values at p, the rest zero; and the first n lanes of v stored.
  template <typename W>
  static Vec4 load_first(const W* p, size_t n) {
    W part[4] = {};
    std::memcpy(part, p, n * sizeof(W));
    return L::load(part);
  }
  static void store_first(float* p, Vec4 v, size_t n) {
    float part[4];
    L::store(part, v);
    std::memcpy(p, part, n * sizeof(float));
  }

  // Four sums in flight: enough to hide the latency of the multiply-add.
  template <typename W>
  static float dot_row(const W* w, const float* x, size_t len) {
    Vec4 acc[4] = {L::zero(), L::zero(), L::zero(), L::zero()};
    size_t i = 0;
    for (; i + 16 <= len; i += 16) {
      for (size_t u = 0; u < 4; ++u) acc[u] = L::fma(acc[u], L::load(w + i + 4 * u), L::load(x + i + 4 * u));
    }
    for (; i + 4 <= len; i += 4) acc[0] = L::fma(acc[0], L::load(w + i), L::load(x + i));
    if (i < len) acc[1] = L::fma(acc[1], load_first(w + i, len - i), load_first(x + i, len - i));
    return L::hsum(L::add(L::add(acc[0], acc[1]), L::add(acc[2], acc[3])));
  }

  // 16 sums, 4 token vectors and a weight vector.
  static constexpr size_t kTileRows = 4, kTileTokens = 4;
  // Rows streamed for a few tokens (matmul_tiles.h): 8 sums, 2 weight vectors and 4 token vectors.
  static constexpr size_t kStreamedRows = 2, kStreamedTokens = 4;
  template <typename W>
  static constexpr bool kRearrangesInput = false;  // decoding reads x as it is

  // One sum per (row, token), one vector step at a time, the tail zero-padded. W: float, or F16 and
  // BF16 converted as they are loaded (exactly, so the sums are those of converted weights).
  template <size_t R, size_t T, typename W>
  static void dot_tile(const W* w, size_t stride, const float* x, size_t x_stride, size_t len, float* out,
                       const W* ahead = nullptr) {
    Vec4 acc[T][R];
    for (size_t t = 0; t < T; ++t) {
      for (size_t r = 0; r < R; ++r) acc[t][r] = L::zero();
    }
    const auto step = [&](size_t i, auto load_x, auto load_w) {
      Vec4 xv[T];
      for (size_t t = 0; t < T; ++t) xv[t] = load_x(x + t * x_stride + i);
      for (size_t r = 0; r < R; ++r) {
        const Vec4 wv = load_w(w + r * stride + i);
        for (size_t t = 0; t < T; ++t) acc[t][r] = L::fma(acc[t][r], wv, xv[t]);
      }
    };
    size_t i = 0;
    for (; i + 4 <= len; i += 4) {
      if (ahead) prefetch_rows<R>(ahead, stride, i);
      step(i, [](const float* p) { return L::load(p); }, [](const W* p) { return L::load(p); });
    }
    if (i < len) {
      const size_t n = len - i;
      step(i, [n](const float* p) { return load_first(p, n); }, [n](const W* p) { return load_first(p, n); });
    }
    for (size_t t = 0; t < T; ++t) {
      for (size_t r = 0; r < R; ++r) out[t * R + r] = L::hsum(acc[t][r]);
    }
  }

  // y[t][0..d) += sum_i coef[t, i] b[i][0..d) (linear_attention_tiles.h), 16 columns at a time,
  // held across the rows of b; a narrower last block zero-padded.
  template <size_t T>
  static void axpy_tile(const float* coef, size_t coef_row, size_t coef_col, const float* b, size_t b_stride,
                        size_t count, size_t d, float* y, size_t y_stride) {
    for (size_t j = 0; j < d; j += 16) {
      const size_t width = d - j < 16 ? d - j : 16;
      const auto load = [width](const float* p, size_t m) {
        return 4 * m + 4 <= width ? L::load(p) : load_first(p, 4 * m < width ? width - 4 * m : 0);
      };
      Vec4 acc[T][4];
      for (size_t t = 0; t < T; ++t) {
        for (size_t m = 0; m < 4; ++m) acc[t][m] = load(y + t * y_stride + j + 4 * m, m);
      }
      for (size_t i = 0; i < count; ++i) {
        Vec4 row[4];
        for (size_t m = 0; m < 4; ++m) row[m] = load(b + i * b_stride + j + 4 * m, m);
        for (size_t t = 0; t < T; ++t) {
          const float k = coef[t * coef_row + i * coef_col];
          for (size_t m = 0; m < 4; ++m) acc[t][m] = L::madd(acc[t][m], row[m], k);
        }
      }
      for (size_t t = 0; t < T; ++t) {
        for (size_t m = 0; m < 4; ++m) {
          float* p = y + t * y_stride + j + 4 * m;
          if (4 * m + 4 <= width) {
            L::store(p, acc[t][m]);
          } else if (4 * m < width) {
            store_first(p, acc[t][m], width - 4 * m);
          }
        }
      }
    }
  }

  template <typename W>
  static void convert(const W* src, size_t len, float* dst) {
    size_t i = 0;
    for (; i + 4 <= len; i += 4) L::store(dst + i, L::load(src + i));
    if (i < len) store_first(dst + i, load_first(src + i, len - i), len - i);
  }

  static constexpr size_t block_tile_tokens(DType) { return 1; }

  template <DType Q, size_t R, size_t T, size_t U>
  static void dot_blocks(const unsigned char* w, size_t stride, const QuantizedTile& x, size_t t0, size_t blocks,
                         float* out) {
    for (size_t t = 0; t < T; ++t) {
      dot_blocks_one<Q, R, U == 1 ? 1 : 4>(w, stride, x.q_of(t0 + t), x.d_of(t0 + t), blocks, out + t * R);
    }
  }

  // U blocks in flight per row.
  template <DType Q, size_t R, size_t U>
  static void dot_blocks_one(const unsigned char* w, size_t stride, const int8_t* q, const float* d, size_t blocks,
                             float* out) {
    typename L::Vec acc[R][U];
    for (size_t r = 0; r < R; ++r) {
      for (size_t u = 0; u < U; ++u) acc[r][u] = L::zero();
    }
    size_t b = 0;
    for (; b + U <= blocks; b += U) {
      for (size_t u = 0; u < U; ++u) {
        for (size_t r = 0; r < R; ++r) acc[r][u] = L::template add_block<Q>(w + r * stride, b + u, q, d, acc[r][u]);
      }
    }
    for (; b < blocks; ++b) {
      for (size_t r = 0; r < R; ++r) acc[r][0] = L::template add_block<Q>(w + r * stride, b, q, d, acc[r][0]);
    }
    for (size_t r = 0; r < R; ++r) {
      for (size_t u = 1; u < U; ++u) acc[r][0] = L::add(acc[r][0], acc[r][u]);
      out[r] = L::hsum(acc[r][0]);
    }
  }
};

template <typename L>
void linear_attention_step(float* state, float* normalizer, const float* phi_q, const float* phi_k, const float* v,
                           size_t r, size_t d_v, float floor, float* out) {
  float denominator = 0;
  for (size_t i = 0; i < r; ++i) {
    normalizer[i] += phi_k[i];
    denominator += phi_q[i] * normalizer[i];
  }
  const float inverse = 1.0f / (denominator > floor ? denominator : floor);
  // 16 columns at a time, v and out held across the r rows.
  size_t j = 0;
  for (; j + 16 <= d_v; j += 16) {
    typename L::Vec vv[4], acc[4];
    for (size_t m = 0; m < 4; ++m) {
      vv[m] = L::load(v + j + 4 * m);
      acc[m] = L::zero();
    }
    for (size_t i = 0; i < r; ++i) {
      float* row = state + i * d_v + j;
      for (size_t m = 0; m < 4; ++m) {
        const typename L::Vec s = L::madd(L::load(row + 4 * m), vv[m], phi_k[i]);
        L::store(row + 4 * m, s);
        acc[m] = L::madd(acc[m], s, phi_q[i]);
      }
    }
    for (size_t m = 0; m < 4; ++m) L::store(out + j + 4 * m, L::scale(acc[m], inverse));
  }
  for (; j < d_v; ++j) {
    float acc = 0;
    for (size_t i = 0; i < r; ++i) {
      float& s = state[i * d_v + j];
      s += phi_k[i] * v[j];
      acc += phi_q[i] * s;
    }
    out[j] = acc * inverse;
  }
}

template <typename L>
void softmax_attention(const float* q, const float* keys, const float* values, size_t length, size_t stride,
                       size_t head_dim, float* scores, float* out) {
  for (size_t t = 0; t < length; ++t) scores[t] = L::dot_row(keys + t * stride, q, head_dim);
  softmax(scores, length);
  size_t j = 0;
  for (; j + 16 <= head_dim; j += 16) {
    typename L::Vec acc[4] = {L::zero(), L::zero(), L::zero(), L::zero()};
    for (size_t t = 0; t < length; ++t) {
      const float* row = values + t * stride + j;
      for (size_t m = 0; m < 4; ++m) acc[m] = L::madd(acc[m], L::load(row + 4 * m), scores[t]);
    }
    for (size_t m = 0; m < 4; ++m) L::store(out + j + 4 * m, acc[m]);
  }
  for (; j < head_dim; ++j) {
    float acc = 0;
    for (size_t t = 0; t < length; ++t) acc += scores[t] * values[t * stride + j];
    out[j] = acc;
  }
}

}  // namespace
}  // namespace t2r::cpu::tiles
