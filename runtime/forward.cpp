// The forward pass of a Context over a batch of rows: embedding, then per layer the attention block
// and the feed-forward block, each with its norm and residual, then the logits of the rows that want
// them. Each matrix product runs over all rows at once; the attention forms are in attention.cpp.
#include <cstring>

#include "context.h"
#include "kernels.h"

namespace t2r {

void Context::matmul(const Linear& w, const float* x, size_t n, float* y) {
  auto job = [&](int thread, int threads) {
    size_t begin, end;
    split_range(w.weight.rows, thread, threads, &begin, &end);
    cpu::matmul(w.weight, x, n, w.bias, y, begin, end);
  };
  pool_.run(job);
}

void Context::embed(int32_t token, int64_t position, float* x) {
  const Hyperparams& hp = model_.hparams();
  cpu::matrix_row(model_.embedding(), size_t(token), hp.embedding_scale, x);
  if (hp.positions == PositionKind::Sinusoidal) {
    cpu::add_sinusoidal_position(x, size_t(hp.dim), model_.position_freq().data(), position + hp.position_offset);
  } else if (hp.positions == PositionKind::Learned) {
    cpu::add(x, model_.position_table() + size_t(position) * size_t(hp.dim), size_t(hp.dim));
  }
}

void Context::layer_forward(size_t layer, float* x, const int64_t* positions, size_t n, const Run* runs,
                            size_t n_runs) {
  const Hyperparams& hp = model_.hparams();
  const size_t d = hp.dim, F = hp.ffn_dim;
  const BlockWeights& w = model_.blocks()[layer];
  // The element-wise steps of a batch are split across the threads too: left to one, they would be
  // a serial part of every prompt chunk (about 5% of a 1-thread prefill: norms, silu, adds).
  const auto norm = [&](const Norm& weights) {
    for_rows(n, [&](size_t begin, size_t end) {
      for (size_t t = begin; t < end; ++t) {
        if (hp.norm == NormKind::LayerNorm) {
          cpu::layer_norm(x + t * d, weights.weight, weights.bias, hp.norm_eps, d, xb_ + t * d);
        } else {
          cpu::rms_norm(x + t * d, weights.weight, hp.norm_eps, d, xb_ + t * d);
        }
      }
    });
  };
  const auto add_to_x = [&](const float* y) {
    for_rows(n, [&](size_t begin, size_t end) { cpu::add(x + begin * d, y + begin * d, (end - begin) * d); });
  };
  norm(w.attn_norm);
  attention(layer, positions, n, runs, n_runs);
  matmul(w.attention.o, attn_out_, n, xb2_);
  add_to_x(xb2_);

  norm(w.ffn_norm);
  if (hp.ffn == FfnKind::SwiGlu) {
    matmul(w.ffn.gate, xb_, n, hidden_);
    matmul(w.ffn.up, xb_, n, hidden2_);
    for_rows(n, [&](size_t begin, size_t end) {
      cpu::silu_mul(hidden_ + begin * F, hidden2_ + begin * F, (end - begin) * F);
    });
  } else {
    matmul(w.ffn.up, xb_, n, hidden_);
    const bool gelu = hp.ffn == FfnKind::GeluTanh;
    for_rows(n, [&](size_t begin, size_t end) {
      if (gelu) {
        cpu::gelu_tanh(hidden_ + begin * F, (end - begin) * F);
      } else {
        cpu::relu(hidden_ + begin * F, (end - begin) * F);
      }
    });
  }
  matmul(w.ffn.down, hidden_, n, xb2_);
  add_to_x(xb2_);
}

void Context::compute_logits(const float* x, const uint32_t* rows, size_t count) {
  if (count == 0) return;
  const Hyperparams& hp = model_.hparams();
  const size_t d = size_t(hp.dim);
  for_rows(count, [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) {
      const float* row = x + size_t(rows[i]) * d;
      if (hp.norm == NormKind::LayerNorm) {
        cpu::layer_norm(row, model_.output_norm().weight, model_.output_norm().bias, hp.norm_eps, d, xb_ + i * d);
      } else {
        cpu::rms_norm(row, model_.output_norm().weight, hp.norm_eps, d, xb_ + i * d);
      }
    }
  });
  matmul(Linear{model_.output()}, xb_, count, logits_);
}

}  // namespace t2r
