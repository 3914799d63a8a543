#include "feature_map_fold.h"

namespace t2r {

FoldedProjection fold_feature_map(const std::vector<float>& feature_weight, const std::vector<float>& feature_bias,
                                  const std::vector<float>& projection, const std::vector<float>& projection_bias,
                                  double scale, size_t heads, size_t r, size_t head_dim, size_t in) {
  FoldedProjection out;
  out.weight.resize(heads * r * in);
  out.bias.resize(heads * r);
  std::vector<double> row(in);
  for (size_t h = 0; h < heads; ++h) {
    for (size_t i = 0; i < r; ++i) {
      const float* phi = &feature_weight[(h * r + i) * head_dim];
      std::fill(row.begin(), row.end(), 0.0);
      double bias = 0;
      for (size_t j = 0; j < head_dim; ++j) {
        const float* w = &projection[(h * head_dim + j) * in];
        for (size_t c = 0; c < in; ++c) row[c] += double(phi[j]) * double(w[c]);
        if (!projection_bias.empty()) bias += double(phi[j]) * double(projection_bias[h * head_dim + j]);
      }
      for (size_t c = 0; c < in; ++c) out.weight[(h * r + i) * in + c] = float(scale * row[c]);
      out.bias[h * r + i] = float(scale * bias + double(feature_bias[h * r + i]));
    }
  }
  return out;
}

}  // namespace t2r
