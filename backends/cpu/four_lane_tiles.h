// The loop nests the two 4-lane instruction sets (NEON, WebAssembly SIMD128) share, over the
// static members of a type L that an instruction-set file supplies:
//   Vec                             4 floats
//   zero(), load(p), store(p, v), add(a, b), fma(acc, a, b), madd(acc, a, s), hsum(v)
//                                   matmul_tiles.h's vector primitives
//   scale(a, s)                     a * s
//   add_block<Q>(w, b, q, d, acc)   acc + block b of the row at w times the q8 activations (q, d)
//   kAxpyTokens                     the T of axpy_tile that fits L's registers
// FourLanes<L, Vec> gives L the rest of the primitives (kLanes, load_first, store_first) and the
// block micro-kernels matmul_tiles.h asks for. Same linkage rules as matmul_tiles.h.
#pragma once

#include <cstddef>
#include <cstring>

#include "kernels.h"
#include "matmul_tiles.h"

namespace t2r::cpu::tiles {
namespace {

template <typename L, typename Vec4>
struct FourLanes {
  // The rest of matmul_tiles.h's vector primitives: the first n (<= 4) values at p, the rest zero;
  // and the first n lanes of v stored.
  static constexpr size_t kLanes = 4;
  template <typename W>
  static Vec4 load_first(const W* p, size_t n) {
    if (n == 4) return L::load(p);
    W part[4] = {};
    std::memcpy(part, p, n * sizeof(W));
    return L::load(part);
  }
  static void store_first(float* p, Vec4 v, size_t n) {
    if (n == 4) return L::store(p, v);
    float part[4];
    L::store(part, v);
    std::memcpy(p, part, n * sizeof(float));
  }

  // 16 sums, 4 token vectors and a weight vector.
  static constexpr size_t kTileRows = 4, kTileTokens = 4;
  // Rows streamed for a few tokens (matmul_tiles.h): 8 sums, 2 weight vectors and 4 token vectors.
  static constexpr size_t kStreamedRows = 2, kStreamedTokens = 4;
  template <typename W>
  static constexpr bool kRearrangesInput = false;  // decoding reads x as it is

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

}  // namespace
}  // namespace t2r::cpu::tiles
