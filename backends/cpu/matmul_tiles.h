// The loop nests every SIMD matmul shares, over what an instruction-set file supplies as the static
// members of a type K. First its vector primitives, from which the float micro-kernels here
// (dot_row, dot_tile, axpy_tile, convert) and linear_attention_tiles.h's linear_attention_step are
// built:
//   Vec, kLanes                     a vector of kLanes floats
//   zero(), add(a, b), hsum(v)      0, a + b, the sum of the lanes (in K's order)
//   fma(acc, a, b), madd(acc, a, s) acc + a * b, acc + a * s for a float s (fused where the
//                                   instruction set has it)
//   scale(a, s)                     a * s
//   load(p), load_first(p, n)       kLanes values at p, or the first n (<= kLanes) and the rest
//                                   zero: floats, or F16 or BF16 weights converted (exactly)
//   store(p, v), store_first(p, v, n)
// Then the micro-kernels that are K's own:
//   kRearrangesInput<W>             whether decoding rows of W reads x rearranged, once per call:
//                                   rearrange<W>(x, len, out) writes it (len <= kColumns * 16, out
//                                   as long, a multiple of 32) and returns a factor of the sums, and
//                                   dot_rearranged(w, out, len) * factor replaces dot_row(w, x, len)
//   kTileRows, kTileTokens          the R and T that fit K's registers, weights from an L1 tile
//   kStreamedRows, kStreamedTokens  the R and T of rows streamed in place from memory
//   quantize<Q>(x, blocks, q, d, e) activations to q8 blocks as reference::quantize_activations,
//                                   plus, in e, kExtraWords 32-bit words per block of whatever
//                                   K's dot_blocks<Q> needs; K chooses the layout, and may pad
//                                   to a multiple of 4 blocks
//   dot_blocks<Q, R, T, U>(w, stride, x, t0, blocks, out)
//                                   R rows of Q blocks (stride in bytes) times tokens t0..t0+T-1
//                                   of the quantized tile x, out[j * R + i]; U independent sums
//                                   per product (more than 1 only to hide latency when R = T = 1)
//   block_tile_tokens(Q)            the T that fits K's registers for Q
//
// Decoding (n = 1) streams the matrix row after row, the order hardware prefetchers follow best
// (block rows of 256 bytes or less go four at a time, still one stream).
// A few float-weight tokens (n <= kStreamedMaxTokens: a batch of decoding sequences) stream the
// rows in place, K::kStreamedRows at a time, each group's column tiles multiplied by all of them
// while they sit in L1, the first register tile of a group fetching the group two ahead into L2
// as it goes (the hardware prefetcher alone, one stream per row, left memory idle meanwhile).
// More tokens (prompt chunks) go through [rows, column tile] weight tiles that are read from
// memory (float weights copied or converted to f32) once and used for every token while they sit
// in L1, each load of a weight vector feeding T tokens and each load of x several rows, the
// products of the register tile summed in registers. Both sum each (row, token) in the same order
// (dot_tile over each column tile), so a token's result does not depend on n > 1.
//
// Everything here is in an unnamed namespace, and each file declares K in its own, so all of it has
// internal linkage and is compiled with the including file's instruction-set flags only. Nothing
// here may call an inline function with external linkage (std:: helpers included): a copy compiled
// with, say, -mavx512f could be the one the linker keeps for every caller.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels.h"

namespace t2r::cpu::tiles {
namespace {

struct F16 {
  uint16_t bits;
};
struct BF16 {
  uint16_t bits;
};

constexpr size_t kRows = 4;  // rows of quantized weights per micro-kernel call when grouped
constexpr size_t kColumns = 1024;  // float weight tiles: [K::kTileRows, 1024], at most 32 KB
constexpr size_t kStreamedMaxTokens = 16;  // float weights: more tokens than this go through tiles
// x quantized on the stack, once per call: at most this many blocks (38 KB with the extras), as a
// tile of up to 16 tokens (each weight block fetched from memory then serves 16 tokens, plenty to
// be compute-bound) by as many blocks as fit.
constexpr size_t kActivationBlocks = 384;
constexpr size_t kExtraWords = 16;
constexpr size_t kQuantizedTokens = 16;
constexpr size_t kMaxStrips = 8;  // strips of activations quantized at once (kActivationBlocks / 2 tokens / 24)

// Activations quantized by K::quantize, one token after another: token t's blocks start at
// q + t * slots * 32, its scales at d + t * slots and its extra words at e + t * slots * kExtraWords.
struct QuantizedTile {
  const int8_t* q;
  const float* d;
  const int32_t* e;
  size_t slots;
  const int8_t* q_of(size_t t) const { return q + t * slots * 32; }
  const float* d_of(size_t t) const { return d + t * slots; }
  const int32_t* e_of(size_t t) const { return e + t * slots * kExtraWords; }
};

template <typename T>
constexpr T smaller(T a, T b) {
  return a < b ? a : b;
}

// Fetches the cache line at p into L2, for a read a few microseconds later. As an instruction of
// its own: GCC 12 at -O3 deleted __builtin_prefetch from dot_tile's loop.
inline void prefetch_l2(const void* p) {
#if defined(__x86_64__) || defined(__i386__)
  __asm__ volatile("prefetcht2 %0" : : "m"(*static_cast<const char*>(p)));
#elif defined(__aarch64__)
  __asm__ volatile("prfm pldl2keep, [%0]" : : "r"(p));
#else
  __builtin_prefetch(p, 0, 1);
#endif
}

// prefetch_l2 of the cache line of column i of each of R rows at w (row r at w + r * stride), once
// per line as i steps through a row.
template <size_t R, typename W>
inline void prefetch_rows(const W* w, size_t stride, size_t i) {
  if (i * sizeof(W) % 64 != 0) return;
  for (size_t r = 0; r < R; ++r) prefetch_l2(w + r * stride + i);
}

constexpr size_t block_bytes(DType t) { return t == DType::Q8_0 ? 34 : 18; }

// y[t, i] = (first ? bias[i] (or 0) : y[t, i]) + sums[t * rows + i] for T tokens of y (rows apart
// by y_stride): the first column tile starts the row's sum.
template <size_t T>
void accumulate(float* y, size_t y_stride, size_t rows, const float* sums, bool first, const float* bias) {
  for (size_t t = 0; t < T; ++t) {
    for (size_t i = 0; i < rows; ++i) {
      float& out = y[t * y_stride + i];
      out = (first ? (bias ? bias[i] : 0.0f) : out) + sums[t * rows + i];
    }
  }
}

// One row of weights (float, F16 or BF16) . x, four sums in flight (enough to hide the latency of
// the multiply-add): decoding.
template <typename K, typename W>
inline float dot_row(const W* w, const float* x, size_t len) {
  constexpr size_t L = K::kLanes;
  typename K::Vec acc[4] = {K::zero(), K::zero(), K::zero(), K::zero()};
  size_t i = 0;
  for (; i + 4 * L <= len; i += 4 * L) {
    for (size_t u = 0; u < 4; ++u) acc[u] = K::fma(acc[u], K::load(w + i + L * u), K::load(x + i + L * u));
  }
  for (; i + L <= len; i += L) acc[0] = K::fma(acc[0], K::load(w + i), K::load(x + i));
  if (i < len) acc[1] = K::fma(acc[1], K::load_first(w + i, len - i), K::load_first(x + i, len - i));
  return K::hsum(K::add(K::add(acc[0], acc[1]), K::add(acc[2], acc[3])));
}

// R rows of weights (float, F16 or BF16, converted as loaded; row i at w + i * stride) times T
// tokens (token j at x + j * x_stride), out[j * R + i]: one sum per (row, token), one vector step
// at a time, the tail zero-padded, so every product is summed in the same order whatever R and T
// and a token's result does not depend on the tile it fell in. Where `ahead` is not null, the
// same columns of the R rows there are fetched into L2 a line at a time.
template <typename K, size_t R, size_t T, typename W>
inline void dot_tile(const W* w, size_t stride, const float* x, size_t x_stride, size_t len, float* out,
                     const W* ahead = nullptr) {
  typename K::Vec acc[T][R];
  for (size_t t = 0; t < T; ++t) {
    for (size_t r = 0; r < R; ++r) acc[t][r] = K::zero();
  }
  const auto step = [&](size_t i, auto load_x, auto load_w) {
    typename K::Vec xv[T];
    for (size_t t = 0; t < T; ++t) xv[t] = load_x(x + t * x_stride + i);
    for (size_t r = 0; r < R; ++r) {
      const typename K::Vec wv = load_w(w + r * stride + i);
      for (size_t t = 0; t < T; ++t) acc[t][r] = K::fma(acc[t][r], wv, xv[t]);
    }
  };
  size_t i = 0;
  for (; i + K::kLanes <= len; i += K::kLanes) {
    if (ahead) prefetch_rows<R>(ahead, stride, i);
    step(i, [](const float* p) { return K::load(p); }, [](const W* p) { return K::load(p); });
  }
  if (i < len) {
    const size_t n = len - i;
    step(i, [n](const float* p) { return K::load_first(p, n); }, [n](const W* p) { return K::load_first(p, n); });
  }
  for (size_t t = 0; t < T; ++t) {
    for (size_t r = 0; r < R; ++r) out[t * R + r] = K::hsum(acc[t][r]);
  }
}

// Columns [j, j + M kLanes) of axpy_tile, the last vector `last` (<= kLanes) wide.
template <typename K, size_t T, size_t M>
inline void axpy_columns(const float* coef, size_t coef_row, size_t coef_col, const float* b, size_t b_stride,
                         size_t count, size_t j, size_t last, float* y, size_t y_stride) {
  constexpr size_t L = K::kLanes;
  typename K::Vec acc[T][M];
  for (size_t t = 0; t < T; ++t) {
    for (size_t m = 0; m < M; ++m) acc[t][m] = K::load_first(y + t * y_stride + j + L * m, m + 1 == M ? last : L);
  }
  for (size_t i = 0; i < count; ++i) {
    typename K::Vec row[M];
    for (size_t m = 0; m < M; ++m) row[m] = K::load_first(b + i * b_stride + j + L * m, m + 1 == M ? last : L);
    for (size_t t = 0; t < T; ++t) {
      const float k = coef[t * coef_row + i * coef_col];
      for (size_t m = 0; m < M; ++m) acc[t][m] = K::madd(acc[t][m], row[m], k);
    }
  }
  for (size_t t = 0; t < T; ++t) {
    for (size_t m = 0; m < M; ++m) K::store_first(y + t * y_stride + j + L * m, acc[t][m], m + 1 == M ? last : L);
  }
}

// For t < T: y[t][0..d) += sum over i < count of coef[t, i] * b[i][0..d), where coef[t, i] is at
// coef + t * coef_row + i * coef_col and d is any width; four vectors of y's columns at a time,
// held in registers across the rows of b, then one.
template <typename K, size_t T>
inline void axpy_tile(const float* coef, size_t coef_row, size_t coef_col, const float* b, size_t b_stride,
                      size_t count, size_t d, float* y, size_t y_stride) {
  constexpr size_t L = K::kLanes;
  size_t j = 0;
  for (; j + 4 * L <= d; j += 4 * L) {
    axpy_columns<K, T, 4>(coef, coef_row, coef_col, b, b_stride, count, j, L, y, y_stride);
  }
  for (; j < d; j += L) {
    axpy_columns<K, T, 1>(coef, coef_row, coef_col, b, b_stride, count, j, smaller(L, d - j), y, y_stride);
  }
}

// F16 or BF16 weights to float.
template <typename K, typename W>
inline void convert(const W* src, size_t len, float* dst) {
  size_t i = 0;
  for (; i + K::kLanes <= len; i += K::kLanes) K::store(dst + i, K::load(src + i));
  if (i < len) K::store_first(dst + i, K::load_first(src + i, len - i), len - i);
}

template <typename K, typename W>
void matvec_rows(const W* w, size_t cols, const float* x, const float* bias, float* y, size_t row_begin,
                 size_t row_end) {
  if constexpr (K::template kRearrangesInput<W>) {
    // Rows longer than the buffer (16,384 columns: a 7B model's widest is 14,336) go a column
    // chunk at a time, each chunk still a long run of every row.
    constexpr size_t kChunk = kColumns * 16;
    alignas(64) float input[kChunk];
    for (size_t c0 = 0; c0 < cols; c0 += kChunk) {
      const size_t len = smaller(kChunk, cols - c0);
      const float factor = K::template rearrange<W>(x + c0, len, input);
      for (size_t r = row_begin; r < row_end; ++r) {
        const float sum = K::dot_rearranged(w + r * cols + c0, input, len) * factor;
        y[r] = (c0 == 0 ? (bias ? bias[r] : 0.0f) : y[r]) + sum;
      }
    }
  } else {
    for (size_t r = row_begin; r < row_end; ++r) {
      const float sum = dot_row<K>(w + r * cols, x, cols);
      y[r] = bias ? sum + bias[r] : sum;
    }
  }
}

// Tokens t..t + T - 1 times `rows` (<= R) rows of weights: an f32 tile, or (streamed) rows of the
// matrix in place, prefetching `ahead` (when not null, R rows) as dot_tile does.
template <typename K, size_t R, size_t T, typename W>
void float_tile(const W* weights, size_t stride, size_t rows, const float* x, size_t cols, size_t len, float* y,
                size_t y_stride, bool first, const float* bias, const W* ahead = nullptr) {
  float sums[R * T];
  if (rows == R) {
    dot_tile<K, R, T>(weights, stride, x, cols, len, sums, ahead);
  } else {
    for (size_t i = 0; i < rows; ++i) {
      float row_sums[T];
      dot_tile<K, 1, T>(weights + i * stride, stride, x, cols, len, row_sums);
      for (size_t t = 0; t < T; ++t) sums[t * rows + i] = row_sums[t];
    }
  }
  accumulate<T>(y, y_stride, rows, sums, first, bias);
}

// tile(Tokens<T>{}) for the run-time tokens T in [1, Max]: a register tile's width is a template
// argument, so a few leftover tokens get a tile of their own width.
template <size_t T>
struct Tokens {
  static constexpr size_t value = T;
};
template <size_t Max, typename Tile>
void with_tokens(size_t tokens, const Tile& tile) {
  if constexpr (Max > 1) {
    if (tokens < Max) return with_tokens<Max - 1>(tokens, tile);
  }
  tile(Tokens<Max>{});
}

// A few tokens: groups of rows in place, one after the other, each column tile of a group times
// every token through float_tile, so that the sums are those of the weight tiles.
template <typename K, typename W>
void matmul_streamed(const W* data, size_t rows, size_t cols, const float* x, size_t n, const float* bias, float* y,
                     size_t row_begin, size_t row_end) {
  constexpr size_t R = K::kStreamedRows, T = K::kStreamedTokens;
  for (size_t r0 = row_begin; r0 < row_end; r0 += R) {
    const size_t count = smaller(R, row_end - r0);
    const float* row_bias = bias ? bias + r0 : nullptr;
    const W* ahead = r0 + 3 * R <= row_end ? data + (r0 + 2 * R) * cols : nullptr;
    for (size_t c0 = 0; c0 < cols; c0 += kColumns) {
      const size_t len = smaller(kColumns, cols - c0);
      for (size_t t = 0; t < n; t += T) {
        with_tokens<T>(smaller(T, n - t), [&](auto tokens) {
          float_tile<K, R, decltype(tokens)::value>(data + r0 * cols + c0, cols, count, x + t * cols + c0, cols, len,
                                                    y + t * rows + r0, rows, c0 == 0, row_bias,
                                                    t == 0 && ahead ? ahead + c0 : nullptr);
        });
      }
    }
  }
}

template <typename K, typename W>
void matmul_float(const Matrix& w, const float* x, size_t n, const float* bias, float* y, size_t row_begin,
                  size_t row_end) {
  const W* data = static_cast<const W*>(w.data);
  const size_t cols = w.cols;
  if (n == 1) return matvec_rows<K>(data, cols, x, bias, y, row_begin, row_end);
  if (n <= kStreamedMaxTokens) return matmul_streamed<K>(data, w.rows, cols, x, n, bias, y, row_begin, row_end);
  constexpr size_t R = K::kTileRows, T = K::kTileTokens;
  alignas(64) float tile[R * kColumns];
  for (size_t r0 = row_begin; r0 < row_end; r0 += R) {
    const size_t rows = smaller(R, row_end - r0);
    const float* row_bias = bias ? bias + r0 : nullptr;
    for (size_t c0 = 0; c0 < cols; c0 += kColumns) {
      const size_t len = smaller(kColumns, cols - c0);
      // f32 weights are copied too: one row after the other is a stream the prefetcher follows,
      // where reading 8 rows in step from memory stalls (measured: 1.7x on [768, 768]).
      for (size_t i = 0; i < rows; ++i) convert<K>(data + (r0 + i) * cols + c0, len, tile + i * len);
      // The next tile's rows start their way from memory while this one is multiplied: with few
      // tokens (a batch of decoding sequences) the product alone would leave the memory idle.
      if (c0 + len == cols) {
        const auto* next = reinterpret_cast<const char*>(data + (r0 + R) * cols);
        const auto* end = reinterpret_cast<const char*>(data + smaller(r0 + 2 * R, row_end) * cols);
        for (; next < end; next += 64) __builtin_prefetch(next);
      }
      size_t t = 0;
      for (; t + T <= n; t += T) {
        float_tile<K, R, T>(tile, len, rows, x + t * cols + c0, cols, len, y + t * w.rows + r0, w.rows, c0 == 0,
                            row_bias);
      }
      // The last n % T tokens in one narrower tile: a batch of two or three decoding sequences is
      // all remainder, and one token at a time would leave most of the registers idle.
      if (t < n) {
        with_tokens<T - 1>(n - t, [&](auto tokens) {
          float_tile<K, R, decltype(tokens)::value>(tile, len, rows, x + t * cols + c0, cols, len,
                                                    y + t * w.rows + r0, w.rows, c0 == 0, row_bias);
        });
      }
    }
  }
}

template <typename K, DType Q, size_t T, size_t U>
void block_tile(const unsigned char* weights, size_t stride, size_t rows, const QuantizedTile& x, size_t t0,
                size_t blocks, float* y, size_t y_stride, bool first, const float* bias) {
  float sums[kRows * T];
  if (rows == kRows) {
    K::template dot_blocks<Q, kRows, T, U>(weights, stride, x, t0, blocks, sums);
  } else {
    for (size_t i = 0; i < rows; ++i) {
      float row_sums[T];
      K::template dot_blocks<Q, 1, T, U>(weights + i * stride, stride, x, t0, blocks, row_sums);
      for (size_t t = 0; t < T; ++t) sums[t * rows + i] = row_sums[t];
    }
  }
  accumulate<T>(y, y_stride, rows, sums, first, bias);
}


template <typename K, DType Q>
void matmul_blocks(const Matrix& w, const float* x, size_t n, const float* bias, float* y, size_t row_begin,
                   size_t row_end) {
  alignas(64) int8_t q[kActivationBlocks * 32];
  alignas(64) int32_t e[kActivationBlocks * kExtraWords];
  float d[kActivationBlocks];
  const size_t blocks = w.cols / 32, stride = blocks * block_bytes(Q);
  const size_t tile_tokens = smaller(n, kQuantizedTokens);
  // Several tokens: strips of a fixed width, so that where a row's sum is split into partial
  // sums does not depend on n.
  const size_t strip_blocks = smaller(blocks, n == 1 ? kActivationBlocks : kActivationBlocks / kQuantizedTokens);
  const size_t strip_slots = (strip_blocks + 3) / 4 * 4;  // per token, with room for K's padding
  const auto* base = static_cast<const unsigned char*>(w.data);
  for (size_t t0 = 0; t0 < n; t0 += tile_tokens) {
    const size_t tokens = smaller(tile_tokens, n - t0);
    float* y_tile = y + t0 * w.rows;
    // As many strips as the buffers hold for these tokens are quantized at once, and each row
    // group is then multiplied across all of them: with few tokens (a batch of decoding sequences)
    // the rows are read one after the other, as decoding reads them, not strip after strip.
    const size_t span = smaller((blocks + strip_blocks - 1) / strip_blocks,
                                smaller(kActivationBlocks / (tokens * strip_slots), kMaxStrips));
    for (size_t s0 = 0; s0 < blocks; s0 += span * strip_blocks) {
      QuantizedTile strip[kMaxStrips];
      size_t strip_count[kMaxStrips], strips = 0;
      for (size_t b0 = s0; b0 < blocks && strips < span; b0 += strip_blocks, ++strips) {
        const size_t count = smaller(strip_blocks, blocks - b0), slots = (count + 3) / 4 * 4;
        const size_t first = strips * tokens * strip_slots;  // this strip's part of the buffers
        int8_t* strip_q = q + first * 32;
        float* strip_d = d + first;
        int32_t* strip_e = e + first * kExtraWords;
        for (size_t t = 0; t < tokens; ++t) {
          K::template quantize<Q>(x + (t0 + t) * w.cols + b0 * 32, count, strip_q + t * slots * 32, strip_d + t * slots,
                                  strip_e + t * slots * kExtraWords);
        }
        strip[strips] = {strip_q, strip_d, strip_e, slots};
        strip_count[strips] = count;
      }
      if (n == 1) {
        // One token: whole rows (one strip), one after the other, except that four rows within
        // 16 cache lines still read as one stream and go together (measured: 1.5x for
        // 256-column q4_0; longer interleaved rows are slower). A lone row keeps two sums in
        // flight.
        const size_t group = kRows * stride > 1024 ? 1 : kRows;
        const size_t count = strip_count[0];
        for (size_t r0 = row_begin; r0 < row_end; r0 += group) {
          const size_t rows = smaller(group, row_end - r0);
          const unsigned char* weights = base + s0 * block_bytes(Q) + r0 * stride;
          const float* row_bias = bias ? bias + r0 : nullptr;
          if (rows == 1) {
            float sum;
            K::template dot_blocks<Q, 1, 1, 2>(weights, stride, strip[0], 0, count, &sum);
            accumulate<1>(y_tile + r0, 0, 1, &sum, s0 == 0, row_bias);
          } else {
            block_tile<K, Q, 1, 1>(weights, stride, rows, strip[0], 0, count, y_tile + r0, w.rows, s0 == 0, row_bias);
          }
        }
        continue;
      }
      constexpr size_t T = K::block_tile_tokens(Q);
      // Up to a tile of tokens (a batch of decoding sequences) the product is bound by memory, and
      // long rows stream faster one after the other than four interleaved, as for one token
      // (measured from DRAM, [65536, 768] q8_0, 2 tokens: 9.3 -> 3.9 ms).
      const size_t group = tokens <= T && kRows * stride > 1024 ? 1 : kRows;
      for (size_t r0 = row_begin; r0 < row_end; r0 += group) {
        const size_t rows = smaller(group, row_end - r0);
        const float* row_bias = bias ? bias + r0 : nullptr;
        for (size_t j = 0; j < strips; ++j) {
          const size_t b0 = s0 + j * strip_blocks, count = strip_count[j];
          const unsigned char* weights = base + b0 * block_bytes(Q) + r0 * stride;
          size_t t = 0;
          for (; t + T <= tokens; t += T) {
            block_tile<K, Q, T, 1>(weights, stride, rows, strip[j], t, count, y_tile + t * w.rows + r0, w.rows,
                                   b0 == 0, row_bias);
          }
          if (t < tokens) {  // the rest in one narrower tile: the weights unpacked once for them all
            with_tokens<T - 1>(tokens - t, [&](auto rest) {
              block_tile<K, Q, decltype(rest)::value, 1>(weights, stride, rows, strip[j], t, count,
                                                         y_tile + t * w.rows + r0, w.rows, b0 == 0, row_bias);
            });
          }
        }
      }
    }
  }
}

template <typename K>
void matmul(const Matrix& w, const float* x, size_t n, const float* bias, float* y, size_t row_begin,
            size_t row_end) {
  if (n == 0 || row_begin >= row_end) return;
  switch (w.dtype) {
    case DType::F32: return matmul_float<K, float>(w, x, n, bias, y, row_begin, row_end);
    case DType::F16: return matmul_float<K, F16>(w, x, n, bias, y, row_begin, row_end);
    case DType::BF16: return matmul_float<K, BF16>(w, x, n, bias, y, row_begin, row_end);
    case DType::Q8_0: return matmul_blocks<K, DType::Q8_0>(w, x, n, bias, y, row_begin, row_end);
    case DType::Q4_0: return matmul_blocks<K, DType::Q4_0>(w, x, n, bias, y, row_begin, row_end);
  }
}

}  // namespace
}  // namespace t2r::cpu::tiles
