// The portable scalar implementations of the kernels that have SIMD paths. They define what every
// path computes: the "scalar" kernel path runs them, and the tests compare the others with them.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels.h"

namespace t2r::cpu::reference {

// Fills the f16 conversion table the reference reads f16 weights through.
void init_tables();

// Quantizes `blocks` x 32 activations to q8 blocks as matmul does for block-typed weights:
// d[b] = max|x| / 127 (f32), q = x / d rounded half to even (0 when d is 0).
void quantize_activations(const float* x, size_t blocks, int8_t* q, float* d);

void matmul(const Matrix& w, const float* x, size_t n, const float* bias, float* y, size_t row_begin,
            size_t row_end);
void linear_attention_step(float* state, float* normalizer, const float* phi_q, const float* phi_k,
                           const float* v, size_t r, size_t d_v, float floor, float* out);
void linear_attention_chunk(const LinearAttentionChunk& c, float* state, float* normalizer);
void softmax_attention(const float* q, const float* keys, const float* values, size_t length,
                       size_t stride, size_t head_dim, float* scores, float* out);
void silu_mul(float* gate, const float* up, size_t n);

}  // namespace t2r::cpu::reference
