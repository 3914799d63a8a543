#include "session.h"

#include <cmath>
#include <cstring>
#include <new>
#include <vector>

#include "error.h"

namespace t2r {
namespace {

constexpr char kStateMagic[8] = {'T', '2', 'R', 'S', 'T', 'A', 'T', 'E'};
constexpr uint32_t kStateVersion = 1;
constexpr size_t kStateHeaderBytes = 40;  // magic, version, reserved, model checksum, position, payload
constexpr size_t kAlignFloats = 16;       // 64 bytes: every buffer starts on a cache line

}  // namespace

Session::Session(const Model& model, SessionOptions options) : model_(model) {
  const Hyperparams& hp = model.hparams();
  const size_t L = hp.n_layers, d = hp.dim, H = hp.n_heads, Hkv = hp.n_kv_heads, dh = hp.head_dim,
               r = hp.feature_dim, F = hp.ffn_dim, V = hp.vocab_size;
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

  // The plan: every buffer's size in floats, laid out back to back in one allocation.
  struct Slot {
    float** view;
    size_t floats;
  };
  const size_t features = hp.linear_attention() ? H * r : 0;
  const Slot plan[] = {
      {&x_, d},
      {&xb_, d},
      {&xb2_, d},
      {&q_, H * dh},
      {&k_, Hkv * dh},
      {&v_, Hkv * dh},
      {&phi_q_, features},
      {&phi_k_, features},
      {&attn_out_, H * dh},
      {&hidden_, F},
      {&hidden2_, F},
      {&logits_, V},
      {&state_, L * features * dh},
      {&normalizer_, L * features},
      {&key_cache_, L * context * Hkv * dh},
      {&value_cache_, L * context * Hkv * dh},
      {&scores_, context},
  };
  size_t total = 0;
  for (const Slot& s : plan) total += (s.floats + kAlignFloats - 1) / kAlignFloats * kAlignFloats;
  bytes_ = total * sizeof(float);
  arena_ = static_cast<float*>(::operator new(bytes_, std::align_val_t(64)));
  size_t offset = 0;
  for (const Slot& s : plan) {
    *s.view = arena_ + offset;
    offset += (s.floats + kAlignFloats - 1) / kAlignFloats * kAlignFloats;
  }
  std::memset(arena_, 0, bytes_);
}

Session::~Session() { ::operator delete(arena_, std::align_val_t(64)); }

void Session::reset() {
  position_ = 0;
  std::memset(arena_, 0, bytes_);
}

void Session::attention(size_t layer, const LayerWeights& w) {
  const Hyperparams& hp = model_.hparams();
  const size_t H = hp.n_heads, Hkv = hp.n_kv_heads, dh = hp.head_dim, r = hp.feature_dim,
               group = H / Hkv;
  float* phi_q = phi_q_;
  float* phi_k = phi_k_;

  if (hp.feature_map_folded) {
    cpu::matvec(w.feature_q, xb_, w.feature_q_bias, phi_q);
    cpu::matvec(w.feature_k, xb_, w.feature_k_bias, phi_k);
    cpu::relu(phi_q, H * r);
    cpu::relu(phi_k, H * r);
  } else {
    cpu::matvec(w.q, xb_, w.q_bias, q_);
    cpu::matvec(w.k, xb_, w.k_bias, k_);
    if (hp.positions == PositionKind::Rotary) {
      cpu::rotary(q_, H, dh, model_.position_freq().data(), position_);
      cpu::rotary(k_, Hkv, dh, model_.position_freq().data(), position_);
    }
    const float scale = 1.0f / std::sqrt(float(dh));
    for (size_t i = 0; i < H * dh; ++i) q_[i] *= scale;
  }
  cpu::matvec(w.v, xb_, w.v_bias, v_);

  if (hp.attention == AttentionKind::Softmax) {
    const size_t stride = Hkv * dh;
    float* keys = key_cache_ + layer * size_t(max_context_) * stride;
    float* values = value_cache_ + layer * size_t(max_context_) * stride;
    std::memcpy(keys + size_t(position_) * stride, k_, stride * sizeof(float));
    std::memcpy(values + size_t(position_) * stride, v_, stride * sizeof(float));
    for (size_t h = 0; h < H; ++h) {
      const size_t kv = h / group;
      cpu::softmax_attention(q_ + h * dh, keys + kv * dh, values + kv * dh, size_t(position_) + 1, stride, dh,
                             scores_, attn_out_ + h * dh);
    }
    return;
  }

  if (!hp.feature_map_folded) {
    for (size_t h = 0; h < H; ++h) {
      const float* k_head = k_ + (h / group) * dh;
      if (hp.attention == AttentionKind::T2R) {
        const cpu::Matrix map = cpu::row_slice(w.feature_map, h * r, r);
        cpu::matvec(map, q_ + h * dh, w.feature_map_bias + h * r, phi_q + h * r);
        cpu::matvec(map, k_head, w.feature_map_bias + h * r, phi_k + h * r);
      } else {
        std::memcpy(phi_q + h * r, q_ + h * dh, dh * sizeof(float));
        std::memcpy(phi_k + h * r, k_head, dh * sizeof(float));
      }
    }
    if (hp.attention == AttentionKind::T2R) {
      cpu::relu(phi_q, H * r);
      cpu::relu(phi_k, H * r);
    } else {
      cpu::elu_plus_one(phi_q, H * r);
      cpu::elu_plus_one(phi_k, H * r);
    }
  }
  for (size_t h = 0; h < H; ++h) {
    const size_t head = layer * H + h;
    cpu::linear_attention_step(state_ + head * r * dh, normalizer_ + head * r, phi_q + h * r, phi_k + h * r,
                               v_ + (h / group) * dh, r, dh, hp.denominator_floor, attn_out_ + h * dh);
  }
}

const float* Session::step(int32_t token) {
  const Hyperparams& hp = model_.hparams();
  if (token < 0 || token >= hp.vocab_size) {
    throw Error("token id " + std::to_string(token) + " is outside the vocabulary (0.." +
                std::to_string(hp.vocab_size - 1) + ")");
  }
  if (max_context_ >= 0 && position_ >= max_context_) {
    throw Error("the KV cache is full (" + std::to_string(max_context_) + " positions); start a larger session");
  }
  const size_t d = hp.dim;
  const auto norm = [&](const Norm& n, const float* in, float* out) {
    if (hp.norm == NormKind::LayerNorm) {
      cpu::layer_norm(in, n.weight, n.bias, hp.norm_eps, d, out);
    } else {
      cpu::rms_norm(in, n.weight, hp.norm_eps, d, out);
    }
  };

  cpu::matrix_row(model_.embedding(), size_t(token), hp.embedding_scale, x_);
  if (hp.positions == PositionKind::Sinusoidal) {
    cpu::add_sinusoidal_position(x_, d, model_.position_freq().data(), position_ + hp.position_offset);
  }
  const auto& layers = model_.layers();
  for (size_t l = 0; l < layers.size(); ++l) {
    const LayerWeights& w = layers[l];
    norm(w.attn_norm, x_, xb_);
    attention(l, w);
    cpu::matvec(w.o, attn_out_, w.o_bias, xb2_);
    cpu::add(x_, xb2_, d);

    norm(w.ffn_norm, x_, xb_);
    if (hp.ffn == FfnKind::SwiGlu) {
      cpu::matvec(w.gate, xb_, nullptr, hidden_);
      cpu::matvec(w.up, xb_, nullptr, hidden2_);
      cpu::silu_mul(hidden_, hidden2_, hp.ffn_dim);
    } else {
      cpu::matvec(w.up, xb_, w.up_bias, hidden_);
      cpu::relu(hidden_, hp.ffn_dim);
    }
    cpu::matvec(w.down, hidden_, w.down_bias, xb2_);
    cpu::add(x_, xb2_, d);
  }
  norm(model_.output_norm(), x_, xb_);
  cpu::matvec(model_.output(), xb_, nullptr, logits_);
  ++position_;
  return logits_;
}

const float* Session::prefill(const int32_t* tokens, size_t count) {
  for (size_t i = 0; i < count; ++i) step(tokens[i]);
  return logits_;
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
  uint32_t version;
  uint64_t checksum, payload;
  int64_t position;
  std::memcpy(&version, p + 8, 4);
  std::memcpy(&checksum, p + 16, 8);
  std::memcpy(&position, p + 24, 8);
  std::memcpy(&payload, p + 32, 8);
  if (version != kStateVersion) {
    throw Error("session state version " + std::to_string(version) + " is not supported (expected " +
                std::to_string(kStateVersion) + ")");
  }
  if (checksum != model_.file().checksum()) throw Error("session state was saved with a different model");
  if (position < 0 || (max_context_ >= 0 && position > max_context_)) {
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
  for_each_state_block([&](float* block, size_t bytes) {
    std::memcpy(block, p, bytes);
    p += bytes;
  });
}

}  // namespace t2r
