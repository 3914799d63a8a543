#include "feature_map.h"

#include <algorithm>
#include <cstring>

#include "kernels.h"

namespace t2r {

void feature_map(const LinearAttentionSpec& spec, const Linear& map, const float* x, size_t heads, size_t group,
                 size_t head_dim, float* phi) {
  const size_t r = size_t(spec.features);
  switch (spec.feature_map) {
    case FeatureMap::ReluMlp:
      if (!spec.folded) {
        for (size_t h = 0; h < heads; ++h) {
          cpu::matvec(cpu::row_slice(map.weight, h * r, r), x + (h / group) * head_dim, map.bias + h * r, phi + h * r);
        }
      } else if (x != phi) {
        std::memcpy(phi, x, heads * r * sizeof(float));
      }
      cpu::relu(phi, heads * r);
      return;
    case FeatureMap::EluPlusOne:
      for (size_t h = 0; h < heads; ++h) std::memcpy(phi + h * r, x + (h / group) * head_dim, r * sizeof(float));
      cpu::elu_plus_one(phi, heads * r);
      return;
    case FeatureMap::Hedgehog: {
      const size_t f = r / 2;
      for (size_t h = 0; h < heads; ++h) {
        float* p = phi + h * r;
        cpu::matvec(cpu::row_slice(map.weight, h * f, f), x + (h / group) * head_dim, nullptr, p);
        for (size_t i = 0; i < f; ++i) p[f + i] = -p[i];
        cpu::softmax(p, f);
        cpu::softmax(p + f, f);
        for (size_t i = 0; i < r; ++i) p[i] = std::max(p[i], spec.feature_eps);
      }
      return;
    }
    case FeatureMap::ReluThenRotary:  // the relu came before rotary (Context::attention): the head as it is
      for (size_t h = 0; h < heads; ++h) std::memcpy(phi + h * r, x + (h / group) * head_dim, r * sizeof(float));
      return;
    case FeatureMap::HeadSoftmax:
      for (size_t h = 0; h < heads; ++h) {
        std::memcpy(phi + h * r, x + (h / group) * head_dim, r * sizeof(float));
        cpu::softmax(phi + h * r, r);
      }
      return;
  }
}

void relu_mlp_rows(const Linear& map, size_t r, const float* x, size_t x_stride, size_t n, size_t h0, size_t h1,
                   size_t group, size_t head_dim, float* phi, float* scratch) {
  const size_t features = map.weight.rows;  // heads * r: the rows of head h write phi's columns of head h
  for (size_t h = h0; h < h1; ++h) {
    for (size_t t = 0; t < n; ++t) {
      std::memcpy(scratch + t * head_dim, x + t * x_stride + (h / group) * head_dim, head_dim * sizeof(float));
    }
    cpu::matmul(map.weight, scratch, n, map.bias, phi, h * r, (h + 1) * r);
  }
  for (size_t t = 0; t < n; ++t) cpu::relu(phi + t * features + h0 * r, (h1 - h0) * r);
}

}  // namespace t2r
