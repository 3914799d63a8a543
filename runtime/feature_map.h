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

}  // namespace t2r
