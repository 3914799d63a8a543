// phi, the feature map of linear attention, for one row of queries or keys: the reference the CPU
// forward pass calls and the Vulkan tests compare against.
#pragma once

#include <cstddef>

#include "architecture.h"
#include "model.h"

namespace t2r {

// phi [heads, r] of one row. Head h reads x + (h / group) * head_dim (group > 1: grouped keys).
//   ReluMlp, not folded: relu(W_h x_h + b_h), W_h the r rows of `map` for head h;
//   ReluMlp, folded:     relu(x): x already holds the folded projection's [heads, r] (x may be phi);
//   EluPlusOne:          elu(x_h) + 1;
//   Hedgehog:            max(eps, [softmax(W_h x_h), softmax(-W_h x_h)]), W_h the r/2 rows of `map` for head h;
//   ReluThenRotary:      x_h (the caller applied the relu before rotary);
//   HeadSoftmax:         softmax(x_h).
void feature_map(const LinearAttentionSpec& spec, const Linear& map, const float* x, size_t heads, size_t group,
                 size_t head_dim, float* phi);

// The unfolded ReluMlp map of n rows for heads [h0, h1) (row t's heads at x + t * x_stride, its phi
// at phi + t * heads * r): one matmul per head over all the rows, which reads W_h once where one
// row at a time reads it n times (on a prompt of small heads, the calls cost more than the
// products). scratch holds n * head_dim floats: the head's rows, gathered.
void relu_mlp_rows(const Linear& map, size_t r, const float* x, size_t x_stride, size_t n, size_t h0, size_t h1,
                   size_t group, size_t head_dim, float* phi, float* scratch);

}  // namespace t2r
