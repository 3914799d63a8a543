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

void Context::encoder_attention(size_t n, size_t heads, size_t head_dim) {
  const size_t d = heads * head_dim;
  // Each head's keys [n, d_h] and transposed values [d_h, n], packed so that both products of a
  // block of queries are matrix products over contiguous rows.
  float* keys = encoder_keys_;
  float* values_t = encoder_keys_ + n * d;
  auto pack = [&](int thread, int threads) {
    size_t begin, end;
    split_range(heads, thread, threads, &begin, &end);
    for (size_t h = begin; h < end; ++h) {
      for (size_t j = 0; j < n; ++j) {
        const float* k = k_ + j * d + h * head_dim;
        const float* v = v_ + j * d + h * head_dim;
        std::copy(k, k + head_dim, keys + (h * n + j) * head_dim);
        for (size_t c = 0; c < head_dim; ++c) values_t[(h * head_dim + c) * n + j] = v[c];
      }
    }
  };
  pool_.run(pack);
  const size_t blocks = (n + kEncoderQueryBlock - 1) / kEncoderQueryBlock;
  auto attend = [&](int thread, int threads) {
    size_t begin, end;
    split_range(heads * blocks, thread, threads, &begin, &end);
    float* scores = scores_ + size_t(thread) * scores_stride_;  // [block, n], then the block's q and out
    float* q = scores + kEncoderQueryBlock * max_source_length_;
    float* out = q + kEncoderQueryBlock * head_dim;
    for (size_t item = begin; item < end; ++item) {
      const size_t h = item / blocks, first = (item % blocks) * kEncoderQueryBlock,
                   rows = std::min(kEncoderQueryBlock, n - first);
      for (size_t t = 0; t < rows; ++t) {
        std::copy_n(q_ + (first + t) * d + h * head_dim, head_dim, q + t * head_dim);
      }
      const cpu::Matrix k{DType::F32, keys + h * n * head_dim, n, head_dim};
      cpu::matmul(k, q, rows, nullptr, scores, 0, n);
      for (size_t t = 0; t < rows; ++t) cpu::softmax(scores + t * n, n);
      const cpu::Matrix v{DType::F32, values_t + h * head_dim * n, head_dim, n};
      cpu::matmul(v, scores, rows, nullptr, out, 0, head_dim);
      for (size_t t = 0; t < rows; ++t) {
        std::copy_n(out + t * head_dim, head_dim, attn_out_ + (first + t) * d + h * head_dim);
      }
    }
  };
  pool_.run(attend);
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
