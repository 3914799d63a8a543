// Folding a T2R feature map into the projection before it (the paper's inference trick):
// relu(W_phi (W x + b) * scale + b_phi) = relu(W' x + b') with, per head h,
//   W'[h] = scale * W_phi[h] W[h],  b'[h] = scale * W_phi[h] b[h] + b_phi[h].
#pragma once

#include <cstddef>
#include <vector>

namespace t2r {

struct FoldedProjection {
  std::vector<float> weight;  // [heads * r, in]
  std::vector<float> bias;    // [heads * r]
};

// feature_weight [heads, r, head_dim], feature_bias [heads, r], projection [heads * head_dim, in],
// projection_bias [heads * head_dim] or empty. Computed in double precision.
FoldedProjection fold_feature_map(const std::vector<float>& feature_weight, const std::vector<float>& feature_bias,
                                  const std::vector<float>& projection, const std::vector<float>& projection_bias,
                                  double scale, size_t heads, size_t r, size_t head_dim, size_t in);

}  // namespace t2r
