// Softmax attention of one query over `length` cached positions (kernel_table.h's
// softmax_attention), built on matmul_tiles.h's micro-kernels for every instruction set: the
// scores by dot_row, cpu::softmax, then out = the scores' weighted sum of the value rows by
// axpy_tile, each value element summed in position order. Same linkage rules as matmul_tiles.h.
#pragma once

#include <cstddef>

#include "kernels.h"
#include "matmul_tiles.h"

namespace t2r::cpu::tiles {
namespace {

template <typename K>
void softmax_attention(const float* q, const float* keys, const float* values, size_t length, size_t stride,
                       size_t head_dim, float* scores, float* out) {
  for (size_t t = 0; t < length; ++t) scores[t] = dot_row<K>(keys + t * stride, q, head_dim);
  softmax(scores, length);
  for (size_t j = 0; j < head_dim; ++j) out[j] = 0;
  axpy_tile<K, 1>(scores, 0, 1, values, stride, length, head_dim, out, 0);
}

}  // namespace
}  // namespace t2r::cpu::tiles
