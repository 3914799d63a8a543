#include "session.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "error.h"
#include "finite_check.h"
#include "kernels.h"

namespace t2r {
namespace {

constexpr char kStateMagic[8] = {'T', '2', 'R', 'S', 'T', 'A', 'T', 'E'};
constexpr uint32_t kStateVersion = 1;
constexpr size_t kStateHeaderBytes = 40;  // magic, version, reserved, model checksum, position, payload
constexpr size_t kAlignFloats = 16;       // 64 bytes: every buffer starts on a cache line
// Positions are counted in int64_t; a bound far beyond any real run (2^53 tokens) keeps that
// count from overflowing, whatever position a restored state claims.
constexpr int64_t kMaxPosition = int64_t(1) << 53;

// Checked before the pool starts any thread: a hostile count must not spawn a billion.
int checked_thread_count(int requested) {
  if (requested < 0 || requested > 1024) throw Error("threads must be in [0, 1024]");
  return requested > 0 ? requested : physical_core_count();
}

}  // namespace

Session::Session(const Model& model, SessionOptions options)
    : model_(model), pool_(checked_thread_count(options.threads)) {
  const Hyperparams& hp = model.hparams();
  const size_t L = hp.n_layers, d = hp.dim, H = hp.n_heads, Hkv = hp.n_kv_heads, dh = hp.head_dim,
               r = hp.feature_dim, F = hp.ffn_dim, V = hp.vocab_size;
  if (options.prefill_chunk < 1 || options.prefill_chunk > 4096) throw Error("prefill chunk must be in [1, 4096]");
  if (options.max_context < 0) throw Error("max context must be >= 0 (0: the model's maximum)");
  chunk_ = size_t(options.prefill_chunk);
  size_t context = 0;
  if (!hp.linear_attention()) {
    int64_t wanted = options.max_context > 0 ? options.max_context : hp.max_positions;
    // Checked in double first: a hostile max_positions must not wrap the size computation.
    const double cache_bytes = 2.0 * double(L) * double(wanted) * double(Hkv * dh) * sizeof(float);
    if (cache_bytes > double(size_t(1) << 46)) {
      throw Error("a KV cache of " + std::to_string(wanted) + " positions needs " + std::to_string(cache_bytes / 1e9) +
                  " GB; choose a smaller max context");
    }
    max_context_ = wanted;
    context = size_t(wanted);
  }

  if (options.max_adaptive_prompt < 0 || options.max_adaptive_prompt > (int64_t(1) << 24)) {
    throw Error("max adaptive prompt must be in [0, 16777216]");
  }
  if (options.max_adaptive_prompt > 0 && !hp.linear_attention()) {
    throw Error("length-adaptive prefill needs a linear-attention model; this one uses softmax attention");
  }
  max_adaptive_prompt_ = size_t(options.max_adaptive_prompt);

  // The plan: every buffer's size in floats, laid out back to back in one allocation.
  struct Slot {
    float** view;
    size_t floats;
  };
  const size_t C = chunk_, features = hp.linear_attention() ? H * r : 0;
  const size_t P = max_adaptive_prompt_, rows = std::max(C, P), window = P > 0 ? kLengthWindow : 0;
  float *positions, *candidates;  // integer buffers, typed below
  static_assert(sizeof(int64_t) == 2 * sizeof(float) && sizeof(uint32_t) == sizeof(float), "arena units");
  const Slot plan[] = {
      {&x_, rows * d},
      {&xb_, C * d},
      {&xb2_, C * d},
      {&q_, C * H * dh},
      {&k_, C * Hkv * dh},
      {&v_, C * Hkv * dh},
      {&phi_q_, C * features},
      {&phi_k_, C * features},
      {&attn_out_, C * H * dh},
      {&hidden_, C * F},
      {&hidden2_, C * F},
      {&logits_, V},
      {&state_, L * features * dh},
      {&normalizer_, L * features},
      {&key_cache_, L * context * Hkv * dh},
      {&value_cache_, L * context * Hkv * dh},
      {&scores_, size_t(pool_.size()) * context},
      {&positions, 2 * rows},
      {&prompt_phi_k_, P * features},
      {&window_phi_q_, window * features},
      {&significance_, P},
      {&candidates, P},
      {&query_sum_, window > 0 ? features : 0},
      {&window_normalizer_, window > 0 ? features : 0},
  };
  const auto padded = [](size_t floats) { return (floats + kAlignFloats - 1) / kAlignFloats * kAlignFloats; };
  size_t total = 0;
  for (const Slot& slot : plan) total += padded(slot.floats);
  bytes_ = total * sizeof(float);
  // What max_adaptive_prompt adds: the rows of x_ and positions_ beyond a chunk, and its own buffers.
  adaptive_bytes_ = (padded(rows * d) - padded(C * d) + padded(2 * rows) - padded(2 * C) + padded(P * features) +
                     padded(window * features) + 2 * padded(P) + 2 * padded(window > 0 ? features : 0)) *
                    sizeof(float);
  if (options.memory_budget > 0 && bytes_ > options.memory_budget) {
    const std::string cache =
        context > 0 ? " (a KV cache of " + std::to_string(context) + " positions: " +
                          std::to_string(2 * L * context * Hkv * dh * sizeof(float)) + " bytes)"
                    : "";
    throw Error("the session needs " + std::to_string(bytes_) + " bytes" + cache + ", over the memory budget of " +
                std::to_string(options.memory_budget) + " bytes");
  }
  try {
    arena_ = static_cast<float*>(::operator new(bytes_, std::align_val_t(64)));
  } catch (const std::bad_alloc&) {
    throw Error("cannot allocate the " + std::to_string(bytes_) + " bytes the session needs");
  }
  size_t offset = 0;
  for (const Slot& slot : plan) {
    *slot.view = arena_ + offset;
    offset += padded(slot.floats);
  }
  positions_ = reinterpret_cast<int64_t*>(positions);
  candidates_ = reinterpret_cast<uint32_t*>(candidates);
  std::memset(arena_, 0, bytes_);
}

Session::~Session() { ::operator delete(arena_, std::align_val_t(64)); }

void Session::reset() {
  position_ = 0;
  std::memset(arena_, 0, bytes_);
}

void Session::matmul(const cpu::Matrix& w, const float* x, size_t n, const float* bias, float* y) {
  auto job = [&](int thread, int threads) {
    size_t begin, end;
    split_range(w.rows, thread, threads, &begin, &end);
    cpu::matmul(w, x, n, bias, y, begin, end);
  };
  pool_.run(job);
}

template <typename F>
void Session::for_tokens(size_t n, F f) {
  if (n == 1) return f(size_t(0), size_t(1));  // decoding: not worth waking the pool
  auto job = [&](int thread, int threads) {
    size_t begin, end;
    split_range(n, thread, threads, &begin, &end);
    f(begin, end);
  };
  pool_.run(job);
}

void Session::attention(size_t layer, const LayerWeights& w, const int64_t* positions, size_t n) {
  const Hyperparams& hp = model_.hparams();
  const size_t H = hp.n_heads, Hkv = hp.n_kv_heads, dh = hp.head_dim, r = hp.feature_dim, group = H / Hkv;
  const size_t q_width = H * dh, kv_width = Hkv * dh, features = H * r;

  if (hp.feature_map_folded) {
    matmul(w.feature_q, xb_, n, w.feature_q_bias, phi_q_);
    matmul(w.feature_k, xb_, n, w.feature_k_bias, phi_k_);
    for_tokens(n, [&](size_t begin, size_t end) {
      cpu::relu(phi_q_ + begin * features, (end - begin) * features);
      cpu::relu(phi_k_ + begin * features, (end - begin) * features);
    });
  } else {
    matmul(w.q, xb_, n, w.q_bias, q_);
    matmul(w.k, xb_, n, w.k_bias, k_);
    const float scale = 1.0f / std::sqrt(float(dh));
    for_tokens(n, [&](size_t begin, size_t end) {
      for (size_t t = begin; t < end; ++t) {
        float* q = q_ + t * q_width;
        if (hp.positions == PositionKind::Rotary) {
          cpu::rotary(q, H, dh, model_.position_freq().data(), positions[t]);
          cpu::rotary(k_ + t * kv_width, Hkv, dh, model_.position_freq().data(), positions[t]);
        }
        for (size_t i = 0; i < q_width; ++i) q[i] *= scale;
      }
    });
  }
  matmul(w.v, xb_, n, w.v_bias, v_);

  if (hp.attention == AttentionKind::Softmax) {
    float* keys = key_cache_ + layer * size_t(max_context_) * kv_width;
    float* values = value_cache_ + layer * size_t(max_context_) * kv_width;
    std::memcpy(keys + size_t(position_) * kv_width, k_, n * kv_width * sizeof(float));
    std::memcpy(values + size_t(position_) * kv_width, v_, n * kv_width * sizeof(float));
    auto job = [&](int thread, int threads) {
      size_t begin, end;
      split_range(n * H, thread, threads, &begin, &end);
      float* scores = scores_ + size_t(thread) * size_t(max_context_);
      for (size_t item = begin; item < end; ++item) {
        const size_t t = item / H, h = item % H, kv = h / group;
        cpu::softmax_attention(q_ + t * q_width + h * dh, keys + kv * dh, values + kv * dh,
                               size_t(position_) + t + 1, kv_width, dh, scores, attn_out_ + t * q_width + h * dh);
      }
    };
    pool_.run(job);
    return;
  }

  if (!hp.feature_map_folded) {
    for_tokens(n, [&](size_t begin, size_t end) {
      for (size_t t = begin; t < end; ++t) {
        for (size_t h = 0; h < H; ++h) {
          const float* q_head = q_ + t * q_width + h * dh;
          const float* k_head = k_ + t * kv_width + (h / group) * dh;
          float* phi_q = phi_q_ + t * features + h * r;
          float* phi_k = phi_k_ + t * features + h * r;
          if (hp.attention == AttentionKind::T2R) {
            const cpu::Matrix map = cpu::row_slice(w.feature_map, h * r, r);
            cpu::matvec(map, q_head, w.feature_map_bias + h * r, phi_q);
            cpu::matvec(map, k_head, w.feature_map_bias + h * r, phi_k);
          } else {
            std::memcpy(phi_q, q_head, dh * sizeof(float));
            std::memcpy(phi_k, k_head, dh * sizeof(float));
          }
        }
      }
      const size_t first = begin * features, count = (end - begin) * features;
      if (hp.attention == AttentionKind::T2R) {
        cpu::relu(phi_q_ + first, count);
        cpu::relu(phi_k_ + first, count);
      } else {
        cpu::elu_plus_one(phi_q_ + first, count);
        cpu::elu_plus_one(phi_k_ + first, count);
      }
    });
  }
  auto job = [&](int thread, int threads) {
    size_t begin, end;
    split_range(H, thread, threads, &begin, &end);
    for (size_t h = begin; h < end; ++h) {
      const size_t head = layer * H + h;
      if (n == 1) {  // decoding: the recurrent form is the whole computation
        cpu::linear_attention_step(state_ + head * r * dh, normalizer_ + head * r, phi_q_ + h * r, phi_k_ + h * r,
                                   v_ + (h / group) * dh, r, dh, hp.denominator_floor, attn_out_ + h * dh);
        continue;
      }
      const cpu::LinearAttentionChunk chunk{phi_q_ + h * r,  phi_k_ + h * r, features, v_ + (h / group) * dh,
                                            kv_width,        attn_out_ + h * dh, q_width, n, r, dh,
                                            hp.denominator_floor};
      cpu::linear_attention_chunk(chunk, state_ + head * r * dh, normalizer_ + head * r);
    }
  };
  pool_.run(job);
}

void Session::check_tokens(const int32_t* tokens, size_t n) const {
  const Hyperparams& hp = model_.hparams();
  for (size_t i = 0; i < n; ++i) {
    if (tokens[i] < 0 || tokens[i] >= hp.vocab_size) {
      throw Error("token id " + std::to_string(tokens[i]) + " is outside the vocabulary (0.." +
                  std::to_string(hp.vocab_size - 1) + ")");
    }
  }
  if (n > size_t(kMaxPosition - position_)) {
    throw Error("the session cannot count beyond " + std::to_string(kMaxPosition) + " positions; reset it");
  }
  if (max_context_ >= 0 && position_ + int64_t(n) > max_context_) {
    throw Error("the KV cache is full (" + std::to_string(max_context_) + " positions); start a larger session");
  }
}

void Session::embed(const int32_t* tokens, size_t n) {
  const Hyperparams& hp = model_.hparams();
  const size_t d = hp.dim;
  for (size_t t = 0; t < n; ++t) {
    cpu::matrix_row(model_.embedding(), size_t(tokens[t]), hp.embedding_scale, x_ + t * d);
    if (hp.positions == PositionKind::Sinusoidal) {
      cpu::add_sinusoidal_position(x_ + t * d, d, model_.position_freq().data(), positions_[t] + hp.position_offset);
    }
  }
}

void Session::layer_forward(size_t layer, float* x, const int64_t* positions, size_t n) {
  const Hyperparams& hp = model_.hparams();
  const size_t d = hp.dim, F = hp.ffn_dim;
  const LayerWeights& w = model_.layers()[layer];
  // The element-wise steps of a prompt chunk are split across the threads too: left to one, they
  // would be a serial part of every chunk (about 5% of a 1-thread prefill: norms, silu, adds).
  const auto norm = [&](const Norm& weights) {
    for_tokens(n, [&](size_t begin, size_t end) {
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
    for_tokens(n, [&](size_t begin, size_t end) { cpu::add(x + begin * d, y + begin * d, (end - begin) * d); });
  };
  norm(w.attn_norm);
  attention(layer, w, positions, n);
  matmul(w.o, attn_out_, n, w.o_bias, xb2_);
  add_to_x(xb2_);

  norm(w.ffn_norm);
  if (hp.ffn == FfnKind::SwiGlu) {
    matmul(w.gate, xb_, n, nullptr, hidden_);
    matmul(w.up, xb_, n, nullptr, hidden2_);
    for_tokens(n, [&](size_t begin, size_t end) {
      cpu::silu_mul(hidden_ + begin * F, hidden2_ + begin * F, (end - begin) * F);
    });
  } else {
    matmul(w.up, xb_, n, w.up_bias, hidden_);
    for_tokens(n, [&](size_t begin, size_t end) { cpu::relu(hidden_ + begin * F, (end - begin) * F); });
  }
  matmul(w.down, hidden_, n, w.down_bias, xb2_);
  add_to_x(xb2_);
}

void Session::compute_logits(const float* x) {
  const Hyperparams& hp = model_.hparams();
  if (hp.norm == NormKind::LayerNorm) {
    cpu::layer_norm(x, model_.output_norm().weight, model_.output_norm().bias, hp.norm_eps, size_t(hp.dim), xb_);
  } else {
    cpu::rms_norm(x, model_.output_norm().weight, hp.norm_eps, size_t(hp.dim), xb_);
  }
  matmul(model_.output(), xb_, 1, nullptr, logits_);
}

void Session::forward(const int32_t* tokens, size_t n) {
  for (size_t t = 0; t < n; ++t) positions_[t] = position_ + int64_t(t);
  embed(tokens, n);
  for (size_t l = 0; l < model_.layers().size(); ++l) layer_forward(l, x_, positions_, n);
  compute_logits(x_ + (n - 1) * size_t(model_.hparams().dim));  // only the last token's logits are wanted
  position_ += int64_t(n);
}

const float* Session::step(int32_t token) {
  check_tokens(&token, 1);
  forward(&token, 1);
  return logits_;
}

const float* Session::prefill(const int32_t* tokens, size_t count) {
  check_tokens(tokens, count);
  for (size_t done = 0; done < count; done += chunk_) forward(tokens + done, std::min(chunk_, count - done));
  return logits_;
}

const float* Session::prefill_adaptive(const int32_t* tokens, size_t count, const LengthConfig& config) {
  const Hyperparams& hp = model_.hparams();
  const size_t L = size_t(hp.n_layers), d = size_t(hp.dim), features = size_t(hp.n_heads * hp.feature_dim);
  if (max_adaptive_prompt_ == 0) {
    throw Error("length-adaptive prefill is off in this session (SessionOptions::max_adaptive_prompt is 0)");
  }
  if (count > max_adaptive_prompt_) {
    throw Error("a prompt of " + std::to_string(count) + " tokens is longer than this session's max adaptive prompt (" +
                std::to_string(max_adaptive_prompt_) + ")");
  }
  config.validate(L);
  check_tokens(tokens, count);
  if (count == 0) return logits_;

  for (size_t t = 0; t < count; ++t) positions_[t] = position_ + int64_t(t);
  embed(tokens, count);
  size_t n = count;  // prompt tokens entering layer l: rows [0, n) of x_
  for (size_t l = 0; l < L; ++l) {
    const size_t next = l + 1 < L ? config.tokens_entering(l + 1, count) : n;
    const size_t window_start = n - std::min(kLengthWindow, n);
    // The same chunks as prefill(), so the full configuration makes the same kernel calls.
    for (size_t s = 0; s < n; s += chunk_) {
      const size_t m = std::min(chunk_, n - s);
      layer_forward(l, x_ + s * d, positions_ + s, m);
      if (next == n) continue;  // nothing dropped after this layer: no scores needed
      std::memcpy(prompt_phi_k_ + s * features, phi_k_, m * features * sizeof(float));
      for (size_t t = std::max(s, window_start); t < s + m; ++t) {
        std::memcpy(window_phi_q_ + (t - window_start) * features, phi_q_ + (t - s) * features, features * sizeof(float));
      }
    }
    if (next < n) {
      select_tokens(l, n, next, config);
      n = next;
    }
  }
  compute_logits(x_ + (n - 1) * d);  // the last prompt token is always kept, and last
  position_ += int64_t(count);
  return logits_;
}

void Session::select_tokens(size_t layer, size_t n, size_t keep, const LengthConfig& config) {
  const Hyperparams& hp = model_.hparams();
  const size_t d = size_t(hp.dim), H = size_t(hp.n_heads), r = size_t(hp.feature_dim), features = H * r;
  const size_t window_start = n - std::min(kLengthWindow, n);
  const size_t pinned = std::min(config.pinned_head, window_start);
  const size_t picks = keep - (n - window_start) - pinned;  // tokens_entering keeps room for the pinned ones

  switch (config.significance) {
    case Significance::Attention: {
      // sum_i A[h, i, t] = phi(k_t) . sum_i phi(q_i) / max(phi(q_i) . z_i, floor) over the window
      // queries i > t, per head: one vector of H r floats scores every candidate. z_i (the
      // normalizer just after token i) is the layer's final one minus the keys after i.
      float* z = window_normalizer_;
      std::memcpy(z, normalizer_ + layer * features, features * sizeof(float));
      std::memset(query_sum_, 0, features * sizeof(float));
      for (size_t i = n; i-- > window_start;) {
        const float* q = window_phi_q_ + (i - window_start) * features;
        for (size_t h = 0; h < H; ++h) {
          float dot = 0;
          for (size_t j = h * r; j < (h + 1) * r; ++j) dot += q[j] * z[j];
          const float inverse = 1.0f / std::max(dot, hp.denominator_floor);
          for (size_t j = h * r; j < (h + 1) * r; ++j) query_sum_[j] += q[j] * inverse;
        }
        const float* k = prompt_phi_k_ + i * features;
        for (size_t j = 0; j < features; ++j) z[j] -= k[j];
      }
      for (size_t t = pinned; t < window_start; ++t) {
        const float* k = prompt_phi_k_ + t * features;
        float score = 0;
        for (size_t j = 0; j < features; ++j) score += k[j] * query_sum_[j];
        significance_[t] = score;
      }
      break;
    }
    case Significance::KeyNorm:
      for (size_t t = pinned; t < window_start; ++t) {
        const float* k = prompt_phi_k_ + t * features;
        float score = 0;
        for (size_t h = 0; h < H; ++h) {
          float squares = 0;
          for (size_t j = h * r; j < (h + 1) * r; ++j) squares += k[j] * k[j];
          score += std::sqrt(squares);
        }
        significance_[t] = score;
      }
      break;
    case Significance::Recency:
      for (size_t t = pinned; t < window_start; ++t) significance_[t] = float(t);
      break;
  }

  // The `picks` most significant candidates (ties to the earlier token), back in prompt order.
  uint32_t* first = candidates_;
  uint32_t* last = candidates_ + (window_start - pinned);
  for (size_t t = pinned; t < window_start; ++t) candidates_[t - pinned] = uint32_t(t);
  const auto more_significant = [&](uint32_t a, uint32_t b) {
    return significance_[a] > significance_[b] || (significance_[a] == significance_[b] && a < b);
  };
  std::nth_element(first, first + picks, last, more_significant);
  std::sort(first, first + picks);

  // Compact the kept rows to the front, in order; the pinned head is already in place.
  size_t out = pinned;
  const auto keep_row = [&](size_t from) {
    if (from != out) {
      std::memcpy(x_ + out * d, x_ + from * d, d * sizeof(float));
      positions_[out] = positions_[from];
    }
    ++out;
  };
  for (size_t i = 0; i < picks; ++i) keep_row(candidates_[i]);
  for (size_t t = window_start; t < n; ++t) keep_row(t);
}

template <typename Visit>
void Session::for_each_state_block(Visit visit) const {
  const Hyperparams& hp = model_.hparams();
  visit(logits_, size_t(hp.vocab_size) * sizeof(float));
  if (hp.linear_attention()) {
    const size_t features = size_t(hp.n_layers * hp.n_heads * hp.feature_dim);
    visit(state_, features * size_t(hp.head_dim) * sizeof(float));
    visit(normalizer_, features * sizeof(float));
    return;
  }
  // Only the filled part of each layer's cache.
  const size_t row = size_t(hp.n_kv_heads * hp.head_dim);
  for (int64_t l = 0; l < hp.n_layers; ++l) {
    visit(key_cache_ + size_t(l) * size_t(max_context_) * row, size_t(position_) * row * sizeof(float));
    visit(value_cache_ + size_t(l) * size_t(max_context_) * row, size_t(position_) * row * sizeof(float));
  }
}

size_t Session::state_payload_bytes() const {
  size_t total = 0;
  for_each_state_block([&](float*, size_t bytes) { total += bytes; });
  return total;
}

size_t Session::state_size() const { return kStateHeaderBytes + state_payload_bytes(); }

void Session::save_state(void* out, size_t size) const {
  if (size < state_size()) {
    throw Error("state buffer of " + std::to_string(size) + " bytes is too small (needs " +
                std::to_string(state_size()) + ")");
  }
  auto p = static_cast<unsigned char*>(out);
  const uint32_t version = kStateVersion, reserved = 0;
  const uint64_t checksum = model_.file().checksum(), payload = state_payload_bytes();
  std::memcpy(p, kStateMagic, 8);
  std::memcpy(p + 8, &version, 4);
  std::memcpy(p + 12, &reserved, 4);
  std::memcpy(p + 16, &checksum, 8);
  std::memcpy(p + 24, &position_, 8);
  std::memcpy(p + 32, &payload, 8);
  p += kStateHeaderBytes;
  for_each_state_block([&](const float* block, size_t bytes) {
    std::memcpy(p, block, bytes);
    p += bytes;
  });
}

void Session::restore_state(const void* data, size_t size) {
  auto p = static_cast<const unsigned char*>(data);
  if (size < kStateHeaderBytes || std::memcmp(p, kStateMagic, 8) != 0) {
    throw Error("not a t2r session state");
  }
  uint32_t version, reserved;
  uint64_t checksum, payload;
  int64_t position;
  std::memcpy(&version, p + 8, 4);
  std::memcpy(&reserved, p + 12, 4);
  std::memcpy(&checksum, p + 16, 8);
  std::memcpy(&position, p + 24, 8);
  std::memcpy(&payload, p + 32, 8);
  if (version != kStateVersion) {
    throw Error("session state version " + std::to_string(version) + " is not supported (expected " +
                std::to_string(kStateVersion) + ")");
  }
  if (reserved != 0) throw Error("session state is damaged (its reserved field is not zero)");
  if (checksum != model_.file().checksum()) throw Error("session state was saved with a different model");
  if (position < 0 || position > kMaxPosition || (max_context_ >= 0 && position > max_context_)) {
    throw Error("session state position " + std::to_string(position) + " does not fit this session");
  }
  const int64_t current = position_;
  position_ = position;  // the payload size of a softmax model depends on it
  const size_t expected = state_payload_bytes();
  if (payload != expected || size != kStateHeaderBytes + expected) {
    position_ = current;
    throw Error("session state of " + std::to_string(size) + " bytes does not match this model (expected " +
                std::to_string(kStateHeaderBytes + expected) + ")");
  }
  p += kStateHeaderBytes;
  // A saved state is always finite; NaN or infinity would poison every later output.
  NonFinite bad;
  if (find_non_finite(DType::F32, p, expected, &bad)) {
    position_ = current;
    throw Error("session state holds " + std::string(non_finite_name(bad.value)) + " at float " +
                std::to_string(bad.element) + " of its payload");
  }
  for_each_state_block([&](float* block, size_t bytes) {
    std::memcpy(block, p, bytes);
    p += bytes;
  });
}

StateMagnitude Session::state_magnitude() const {
  const Hyperparams& hp = model_.hparams();
  if (!hp.linear_attention()) throw Error("state_magnitude: softmax attention has no recurrent state");
  const size_t features = size_t(hp.n_layers * hp.n_heads * hp.feature_dim);
  StateMagnitude m;
  for (size_t i = 0; i < features * size_t(hp.head_dim); ++i) {
    m.max_abs_state = std::max(m.max_abs_state, std::fabs(state_[i]));
  }
  for (size_t i = 0; i < features; ++i) m.max_normalizer = std::max(m.max_normalizer, normalizer_[i]);
  return m;
}

HeadView Session::last_layer_head(size_t head) const {
  const Hyperparams& hp = model_.hparams();
  if (!hp.linear_attention()) throw Error("last_layer_head: softmax attention has no recurrent state");
  if (head >= size_t(hp.n_heads)) throw Error("last_layer_head: head " + std::to_string(head) + " does not exist");
  const size_t r = size_t(hp.feature_dim), dh = size_t(hp.head_dim), group = size_t(hp.n_heads / hp.n_kv_heads);
  // phi_q_, phi_k_ and v_ are reused by every layer, so after a step they hold the last layer's.
  const size_t state_head = size_t(hp.n_layers - 1) * size_t(hp.n_heads) + head;
  return {phi_q_ + head * r, phi_k_ + head * r, v_ + (head / group) * dh, state_ + state_head * r * dh,
          normalizer_ + state_head * r};
}

}  // namespace t2r
