// The forward pass of a Context over a batch of rows: embedding, then per layer the attention block
// (and a translation decoder's cross-attention block) and the feed-forward block, each with its norm
// and residual, then the logits of the rows that want them; and a translation encoder's blocks. Each
// matrix product runs over all rows at once; the attention forms are in attention.cpp.
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

void Context::embed(const cpu::Matrix& table, int32_t token, int64_t position, float* x) {
  const Hyperparams& hp = model_.hparams();
  cpu::matrix_row(table, size_t(token), hp.embedding_scale, x);
  if (hp.positions == PositionKind::Sinusoidal) {
    cpu::add_sinusoidal_position(x, size_t(hp.dim), model_.position_freq().data(), position + hp.position_offset);
  } else if (hp.positions == PositionKind::Learned) {
    cpu::add(x, model_.position_table() + size_t(position) * size_t(hp.dim), size_t(hp.dim));
  }
}

// The element-wise steps of a batch are split across the threads too: left to one, they would be a
// serial part of every prompt chunk (about 5% of a 1-thread prefill: norms, silu, adds).
void Context::norm_row(const Norm& norm, const float* in, float* out) const {
  const Hyperparams& hp = model_.hparams();
  if (hp.norm == NormKind::LayerNorm) {
    cpu::layer_norm(in, norm.weight, norm.bias, hp.norm_eps, size_t(hp.dim), out);
  } else {
    cpu::rms_norm(in, norm.weight, hp.norm_eps, size_t(hp.dim), out);
  }
}

void Context::norm_rows(const Norm& norm, const float* in, size_t n, float* out) {
  const size_t d = size_t(model_.hparams().dim);
  for_rows(n, [&](size_t begin, size_t end) {
    for (size_t t = begin; t < end; ++t) norm_row(norm, in + t * d, out + t * d);
  });
}

template <typename Sublayer>
void Context::residual(NormPosition position, const Norm& norm, float* x, size_t n, Sublayer sublayer) {
  const size_t d = size_t(model_.hparams().dim);
  if (position == NormPosition::Pre) {
    norm_rows(norm, x, n, xb_);
  } else {
    std::memcpy(xb_, x, n * d * sizeof(float));
  }
  sublayer();
  if (position == NormPosition::Pre) {
    for_rows(n, [&](size_t begin, size_t end) { cpu::add(x + begin * d, xb2_ + begin * d, (end - begin) * d); });
  } else {  // x + f(x), summed in xb2_, then normalized back into x
    for_rows(n, [&](size_t begin, size_t end) { cpu::add(xb2_ + begin * d, x + begin * d, (end - begin) * d); });
    norm_rows(norm, xb2_, n, x);
  }
}

void Context::feed_forward(const FfnWeights& w, size_t hidden, size_t n) {
  const FfnKind kind = model_.hparams().ffn;
  if (kind == FfnKind::SwiGlu) {
    matmul(w.gate, xb_, n, hidden_);
    matmul(w.up, xb_, n, hidden2_);
    for_rows(n, [&](size_t begin, size_t end) {
      cpu::silu_mul(hidden_ + begin * hidden, hidden2_ + begin * hidden, (end - begin) * hidden);
    });
  } else {
    matmul(w.up, xb_, n, hidden_);
    for_rows(n, [&](size_t begin, size_t end) {
      if (kind == FfnKind::GeluTanh) {
        cpu::gelu_tanh(hidden_ + begin * hidden, (end - begin) * hidden);
      } else {
        cpu::relu(hidden_ + begin * hidden, (end - begin) * hidden);
      }
    });
  }
  matmul(w.down, hidden_, n, xb2_);
}

void Context::layer_forward(size_t layer, float* x, const int64_t* positions, size_t n, const Run* runs,
                            size_t n_runs) {
  const Hyperparams& hp = model_.hparams();
  const BlockWeights& w = model_.blocks()[layer];
  residual(hp.norm_position, w.attn_norm, x, n, [&] {
    attention(layer, positions, n, runs, n_runs);
    matmul(w.attention.o, attn_out_, n, xb2_);
  });
  if (hp.layers[layer].has_cross) {
    residual(hp.norm_position, w.cross_norm, x, n, [&] {
      cross_attention(layer, n, runs);
      matmul(w.cross.o, attn_out_, n, xb2_);
    });
  }
  residual(hp.norm_position, w.ffn_norm, x, n, [&] { feed_forward(w.ffn, size_t(hp.ffn_dim), n); });
}

// An encoder block over the n rows of a source in x_: softmax attention over all of them.
void Context::encoder_layer(size_t layer, size_t n) {
  const Hyperparams::Encoder& e = model_.hparams().encoder;
  const BlockWeights& w = model_.encoder_blocks()[layer];
  const size_t H = size_t(e.n_heads), d = size_t(model_.hparams().dim), dh = d / H;
  residual(e.norm_position, w.attn_norm, x_, n, [&] {
    project_queries(w.attention.q, n, dh);
    matmul(w.attention.k, xb_, n, k_);
    matmul(w.attention.v, xb_, n, v_);
    encoder_attention(n, H, dh);
    matmul(w.attention.o, attn_out_, n, xb2_);
  });
  residual(e.norm_position, w.ffn_norm, x_, n, [&] { feed_forward(w.ffn, size_t(e.ffn_dim), n); });
}

void Context::compute_logits(const float* x, const uint32_t* rows, size_t count) {
  if (count == 0) return;
  const size_t d = size_t(model_.hparams().dim);
  const Norm& norm = model_.output_norm();
  for_rows(count, [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) {  // the rows asked for, gathered into xb_
      if (norm.weight) {
        norm_row(norm, x + size_t(rows[i]) * d, xb_ + i * d);
      } else {
        std::memcpy(xb_ + i * d, x + size_t(rows[i]) * d, d * sizeof(float));
      }
    }
  });
  matmul(Linear{model_.output()}, xb_, count, logits_);
}

}  // namespace t2r
