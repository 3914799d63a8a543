// A translation model's source: the whole of it at once through the encoder's non-causal softmax
// blocks (forward.cpp), then each decoder layer's cross-attention memory of the encoder output.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "context.h"
#include "error.h"
#include "feature_map.h"
#include "kernels.h"

namespace t2r {

void Context::encode(int source, const int32_t* tokens, size_t count) {
  check_source(source);
  const Hyperparams& hp = model_.hparams();
  const Hyperparams::Encoder& e = hp.encoder;
  if (count == 0 || count > max_source_length_) {
    throw Error("a source of " + std::to_string(count) + " tokens: this context takes 1 to " +
                std::to_string(max_source_length_));
  }
  for (size_t i = 0; i < count; ++i) {
    if (tokens[i] < 0 || tokens[i] >= e.vocab_size) {
      throw Error("source token id " + std::to_string(tokens[i]) + " is outside the source vocabulary (0.." +
                  std::to_string(e.vocab_size - 1) + ")");
    }
  }
  const size_t d = size_t(hp.dim);
  for (size_t i = 0; i < count; ++i) embed(model_.encoder_embedding(), tokens[i], int64_t(i), x_ + i * d);
  for (size_t l = 0; l < model_.encoder_blocks().size(); ++l) encoder_layer(l, count);
  const float* output = x_;
  if (e.norm_position == NormPosition::Pre) {
    norm_rows(model_.encoder_output_norm(), x_, count, xb2_);
    output = xb2_;
  }
  store_source(source, output, count);
}

void Context::store_source(int source, const float* encoded, size_t n) {
  const Hyperparams& hp = model_.hparams();
  const size_t H = size_t(hp.n_heads), dh = size_t(hp.head_dim), width = H * dh;
  for (size_t l = 0; l < model_.blocks().size(); ++l) {
    const AttentionSpec& spec = hp.layers[l].cross;
    const AttentionWeights& w = model_.blocks()[l].cross;
    float* memory = source_memory(source, l);
    if (!spec.is_linear()) {  // the keys and values themselves
      matmul(w.k, encoded, n, memory);
      matmul(w.v, encoded, n, memory + max_source_length_ * width);
      continue;
    }
    // S = sum_j phi(k_j) v_j^T and z = sum_j phi(k_j), per head.
    const size_t r = size_t(spec.linear.features), features = H * r;
    const bool folded = spec.linear.folded;
    matmul(folded ? w.feature_k : w.k, encoded, n, folded ? phi_k_ : k_);
    matmul(w.v, encoded, n, v_);
    for_rows(n, [&](size_t begin, size_t end) {
      for (size_t t = begin; t < end; ++t) {
        float* phi_k = phi_k_ + t * features;
        feature_map(spec.linear, w.feature_map, folded ? phi_k : k_ + t * width, H, 1, dh, phi_k);
      }
    });
    auto job = [&](int thread, int threads) {
      size_t begin, end;
      split_range(H, thread, threads, &begin, &end);
      for (size_t h = begin; h < end; ++h) {
        float* state = memory + h * r * dh;
        float* normalizer = memory + features * dh + h * r;
        std::fill(state, state + r * dh, 0.0f);
        std::fill(normalizer, normalizer + r, 0.0f);
        for (size_t j = 0; j < n; ++j) {
          const float* phi = phi_k_ + j * features + h * r;
          const float* v = v_ + j * width + h * dh;
          for (size_t i = 0; i < r; ++i) {
            normalizer[i] += phi[i];
            float* row = state + i * dh;
            for (size_t c = 0; c < dh; ++c) row[c] += phi[i] * v[c];
          }
        }
      }
    };
    pool_.run(job);
  }
  source_length_[size_t(source)] = n;
}

}  // namespace t2r
