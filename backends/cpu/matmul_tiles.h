// The loop nests every SIMD matmul shares, over micro-kernels an instruction-set file supplies as
// the static members of a type K:
//   dot<R>(w, stride, x, len, out)  R rows of weights (row i at w + i * stride elements) . x, for
//                                   w of float, F16 or BF16
//   convert(src, len, dst)          F16 or BF16 to float
//   quantize<T>(x, blocks, q, d, e) activations to q8 blocks as reference::quantize_activations,
//                                   plus, in e, kExtraWords 32-bit words per block of whatever
//                                   K's dot_blocks<T> needs; K chooses the layout, and may pad
//                                   to a multiple of 4 blocks
//   dot_blocks<T, R>(w, stride, q, d, e, blocks, out)  R rows of T blocks (stride in bytes) . x
//
// Decoding (n = 1) streams the matrix row after row, the order hardware prefetchers follow best
// (block rows of 256 bytes or less go four at a time, still one stream).
// Several tokens (n > 1) go through [4 rows, column tile] weight tiles that are read from memory
// (and converted, for f16 and bf16) once and used for every token while they sit in L1.
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

constexpr size_t kRows = 4;  // rows per micro-kernel call when grouped: each load of x serves 4 rows
constexpr size_t kColumns = 1024;  // a [4, 1024] tile is 16 KB as f32
// x quantized on the stack, once per call: at most this many blocks (38 KB with the extras), as a
// tile of up to 16 tokens (each weight block fetched from memory then serves 16 tokens, plenty to
// be compute-bound) by as many blocks as fit.
constexpr size_t kActivationBlocks = 384;
constexpr size_t kExtraWords = 16;
constexpr size_t kTileTokens = 16;

template <typename T>
constexpr T smaller(T a, T b) {
  return a < b ? a : b;
}

constexpr size_t block_bytes(DType t) { return t == DType::Q8_0 ? 34 : 18; }

// y[i] = (first ? bias[i] (or 0) : y[i]) + sums[i]: the first column tile starts the row's sum.
void accumulate(float* y, size_t rows, const float* sums, bool first, const float* bias) {
  for (size_t i = 0; i < rows; ++i) y[i] = (first ? (bias ? bias[i] : 0.0f) : y[i]) + sums[i];
}

template <typename K, typename W>
void matvec_rows(const W* w, size_t cols, const float* x, const float* bias, float* y, size_t row_begin,
                 size_t row_end) {
  for (size_t r = row_begin; r < row_end; ++r) {
    float sum;
    K::template dot<1>(w + r * cols, cols, x, cols, &sum);
    y[r] = bias ? sum + bias[r] : sum;
  }
}

template <typename K, typename W>
void matmul_float(const Matrix& w, const float* x, size_t n, const float* bias, float* y, size_t row_begin,
                  size_t row_end) {
  const W* data = static_cast<const W*>(w.data);
  const size_t cols = w.cols;
  if (n == 1) return matvec_rows<K>(data, cols, x, bias, y, row_begin, row_end);
  alignas(64) float tile[kRows * kColumns];
  for (size_t r0 = row_begin; r0 < row_end; r0 += kRows) {
    const size_t rows = smaller(kRows, row_end - r0);
    for (size_t c0 = 0; c0 < cols; c0 += kColumns) {
      const size_t len = smaller(kColumns, cols - c0);
      const float* weights = tile;
      size_t stride = len;
      if constexpr (sizeof(W) == sizeof(float)) {
        weights = data + r0 * cols + c0;
        stride = cols;
      } else {
        for (size_t i = 0; i < rows; ++i) K::convert(data + (r0 + i) * cols + c0, len, tile + i * len);
      }
      for (size_t t = 0; t < n; ++t) {
        float sums[kRows];
        const float* xt = x + t * cols + c0;
        if (rows == kRows) {
          K::template dot<kRows>(weights, stride, xt, len, sums);
        } else {
          for (size_t i = 0; i < rows; ++i) K::template dot<1>(weights + i * stride, stride, xt, len, sums + i);
        }
        accumulate(y + t * w.rows + r0, rows, sums, c0 == 0, bias ? bias + r0 : nullptr);
      }
    }
  }
}

template <typename K, DType T>
void matmul_blocks(const Matrix& w, const float* x, size_t n, const float* bias, float* y, size_t row_begin,
                   size_t row_end) {
  alignas(64) int8_t q[kActivationBlocks * 32];
  alignas(64) int32_t e[kActivationBlocks * kExtraWords];
  float d[kActivationBlocks];
  const size_t blocks = w.cols / 32, stride = blocks * block_bytes(T);
  const size_t tile_tokens = smaller(n, kTileTokens);
  const size_t tile_blocks = smaller(blocks, kActivationBlocks / tile_tokens / 4 * 4);
  // One token: whole rows, one after the other (the tile is then the whole of x), except that
  // four rows within 16 cache lines still read as one stream and go together (measured: 1.5x
  // for 256-column q4_0; longer interleaved rows are slower).
  const size_t group = n == 1 && kRows * stride > 1024 ? 1 : kRows;
  const auto* base = static_cast<const unsigned char*>(w.data);
  for (size_t t0 = 0; t0 < n; t0 += tile_tokens) {
    const size_t tokens = smaller(tile_tokens, n - t0);
    for (size_t b0 = 0; b0 < blocks; b0 += tile_blocks) {
      const size_t count = smaller(tile_blocks, blocks - b0);
      const size_t slots = (count + 3) / 4 * 4;  // per token, with room for K's padding
      for (size_t t = 0; t < tokens; ++t) {
        K::template quantize<T>(x + (t0 + t) * w.cols + b0 * 32, count, q + t * slots * 32, d + t * slots,
                                e + t * slots * kExtraWords);
      }
      for (size_t r0 = row_begin; r0 < row_end; r0 += group) {
        const size_t rows = smaller(group, row_end - r0);
        const unsigned char* weights = base + r0 * stride + b0 * block_bytes(T);
        for (size_t t = 0; t < tokens; ++t) {
          float sums[kRows];
          const int8_t* qt = q + t * slots * 32;
          const float* dt = d + t * slots;
          const int32_t* et = e + t * slots * kExtraWords;
          if (rows == kRows) {
            K::template dot_blocks<T, kRows>(weights, stride, qt, dt, et, count, sums);
          } else {
            for (size_t i = 0; i < rows; ++i) {
              K::template dot_blocks<T, 1>(weights + i * stride, stride, qt, dt, et, count, sums + i);
            }
          }
          accumulate(y + (t0 + t) * w.rows + r0, rows, sums, b0 == 0, bias ? bias + r0 : nullptr);
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
