#include "session.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "error.h"
#include "ops.h"

namespace t2r::vulkan {

// Regions of the activation and state arenas.
struct Session::Activations {
  size_t step, x, q, k, v, attn_out, hidden, logits, scores;
  // Per layer: state (S then z) for linear attention, keys and values for softmax; the other unused.
  std::vector<size_t> state, keys, values;
};

Session::Session(const Model& model, const SessionOptions& options)
    : model_(model),
      device_(std::make_unique<Device>(options.device)),
      weights_(std::make_unique<Weights>(*device_, model)),
      activations_(*device_),
      state_(*device_) {
  const Hyperparams& hp = model.hparams();
  if (hp.has_softmax_attention()) max_context_ = options.max_context > 0 ? options.max_context : hp.max_positions;
  Activations a;
  plan(a);
  activations_.allocate(Memory::Device);
  state_.allocate(Memory::Device);
  input_ = Buffer(*device_, 2 * sizeof(uint32_t), Memory::Upload);
  readback_ = Buffer(*device_, uint64_t(hp.vocab_size) * sizeof(float), Memory::Readback);
  record(a);
  reset();
}

Session::~Session() = default;

void Session::plan(Activations& a) {
  const Hyperparams& hp = model_.hparams();
  const uint64_t L = hp.n_layers, d = hp.dim, H = hp.n_heads, Hkv = hp.n_kv_heads, dh = hp.head_dim,
                 r = uint64_t(hp.max_linear_features()) / H, F = hp.ffn_dim, V = hp.vocab_size;
  const uint64_t context = max_context_ > 0 ? uint64_t(max_context_) : 0, f = sizeof(float);
  Arena& act = activations_;
  a.step = act.reserve(2 * sizeof(uint32_t), "the step input");
  a.x = act.reserve(d * f, "x");
  // q and k hold phi(q) and phi(k) when the feature map is folded.
  a.q = act.reserve(H * std::max(dh, r) * f, "q");
  a.k = act.reserve(H * std::max(dh, r) * f, "k");
  a.v = act.reserve(Hkv * dh * f, "v");
  a.attn_out = act.reserve(H * dh * f, "the attention output");
  a.hidden = act.reserve(F * f, "the feed-forward hidden layer");
  a.logits = act.reserve(V * f, "the logits");
  a.scores = act.reserve(H * context * f, "the attention scores");
  for (uint64_t l = 0; l < L; ++l) {
    const std::string layer = "layer " + std::to_string(l) + "'s ";
    if (hp.attention(l).is_linear()) {
      const uint64_t features = uint64_t(hp.attention(l).linear.features);
      a.state.push_back(state_.reserve((H * features * dh + H * features) * f, layer + "linear-attention state"));
      a.keys.push_back(0);
      a.values.push_back(0);
    } else {
      const std::string hint = " (of " + std::to_string(context) + " positions; choose a smaller max context)";
      a.state.push_back(0);
      a.keys.push_back(state_.reserve(context * Hkv * dh * f, layer + "key cache" + hint));
      a.values.push_back(state_.reserve(context * Hkv * dh * f, layer + "value cache" + hint));
    }
  }
}

void Session::record(const Activations& a) {
  const Hyperparams& hp = model_.hparams();
  Device& dev = *device_;
  const Weights& w = *weights_;
  const uint32_t H = uint32_t(hp.n_heads), Hkv = uint32_t(hp.n_kv_heads), dh = uint32_t(hp.head_dim);
  auto act = [&](size_t region) { return activations_[region]; };
  // W norm(x) (+ bias), or W x when `norm` is null.
  auto project = [&](const Linear& m, const Norm* norm, size_t in, size_t out, Epilogue e = Epilogue::Store) {
    Matvec op;
    op.w = w.matrix(m.weight);
    op.x = act(in);
    op.y = act(out);
    op.bias = w.vector(m.bias);
    op.epilogue = e;
    if (norm) {
      op.norm = hp.norm;
      op.norm_weight = w.vector(norm->weight);
      op.norm_bias = w.vector(norm->bias);
      op.norm_eps = hp.norm_eps;
    }
    return matvec(dev, op);
  };
  const Span rotary = hp.positions == PositionKind::Rotary ? w.position_freq() : Span{};
  const float q_scale = 1.0f / std::sqrt(float(dh));  // as the CPU session computes it

  // Five dependent steps per layer: projections (with the attention norm), attention, the output
  // projection (plus the residual), the up projections (with the feed-forward norm), the down
  // projection (plus the residual).
  step_ = std::make_unique<Program>(dev);
  Program& p = *step_;
  p.copy(input_.span(), act(a.step));
  p.barrier();
  const bool sinusoidal = hp.positions == PositionKind::Sinusoidal;
  p.dispatch(embed(dev, w.matrix(model_.embedding()), hp.embedding_scale, act(a.step), act(a.x),
                   sinusoidal ? w.position_freq() : Span{}, uint32_t(hp.position_offset)));
  p.barrier();
  const auto& blocks = model_.blocks();
  for (size_t l = 0; l < blocks.size(); ++l) {
    const BlockWeights& block = blocks[l];
    const AttentionWeights& aw = block.attention;
    const AttentionSpec& spec = hp.attention(l);
    if (spec.is_linear() && spec.linear.folded) {
      p.dispatch(project(aw.feature_q, &block.attn_norm, a.x, a.q, Epilogue::Relu));
      p.dispatch(project(aw.feature_k, &block.attn_norm, a.x, a.k, Epilogue::Relu));
    } else {
      p.dispatch(project(aw.q, &block.attn_norm, a.x, a.q));
      p.dispatch(project(aw.k, &block.attn_norm, a.x, a.k));
    }
    p.dispatch(project(aw.v, &block.attn_norm, a.x, a.v));
    p.barrier();
    if (spec.is_linear()) {
      LinearAttention la;
      la.features_kind = spec.linear.folded                             ? Features::Given
                         : spec.linear.feature_map == FeatureMap::ReluMlp ? Features::Map
                                                                          : Features::Elu;
      if (la.features_kind == Features::Map) {
        la.map = w.matrix(aw.feature_map.weight);
        la.map_bias = w.vector(aw.feature_map.bias);
      }
      la.q = act(a.q);
      la.k = act(a.k);
      la.v = act(a.v);
      la.state = state_[a.state[l]];
      la.out = act(a.attn_out);
      la.step = act(a.step);
      la.rotary_freq = rotary;
      la.heads = H;
      la.kv_heads = Hkv;
      la.features = uint32_t(spec.linear.features);
      la.head_dim = dh;
      la.q_scale = q_scale;
      la.floor = spec.linear.floor;
      p.dispatch(linear_attention(dev, la));
    } else {
      SoftmaxAttention sa;
      sa.q = act(a.q);
      sa.k = act(a.k);
      sa.v = act(a.v);
      sa.keys = state_[a.keys[l]];
      sa.values = state_[a.values[l]];
      sa.scores = act(a.scores);
      sa.out = act(a.attn_out);
      sa.step = act(a.step);
      sa.rotary_freq = rotary;
      sa.heads = H;
      sa.kv_heads = Hkv;
      sa.head_dim = dh;
      sa.max_context = uint32_t(max_context_);
      sa.q_scale = q_scale;
      p.dispatch(softmax_attention(dev, sa));
    }
    p.barrier();
    p.dispatch(project(aw.o, nullptr, a.attn_out, a.x, Epilogue::Add));
    p.barrier();
    if (hp.ffn == FfnKind::SwiGlu) {
      Matvec gate;
      gate.w = w.matrix(block.ffn.gate.weight);
      gate.up = w.matrix(block.ffn.up.weight);
      gate.x = act(a.x);
      gate.y = act(a.hidden);
      gate.epilogue = Epilogue::SwiGlu;
      gate.norm = hp.norm;
      gate.norm_weight = w.vector(block.ffn_norm.weight);
      gate.norm_bias = w.vector(block.ffn_norm.bias);
      gate.norm_eps = hp.norm_eps;
      p.dispatch(matvec(dev, gate));
    } else {
      p.dispatch(project(block.ffn.up, &block.ffn_norm, a.x, a.hidden, Epilogue::Relu));
    }
    p.barrier();
    p.dispatch(project(block.ffn.down, nullptr, a.hidden, a.x, Epilogue::Add));
    p.barrier();
  }
  p.dispatch(project(Linear{model_.output()}, &model_.output_norm(), a.x, a.logits));
  p.barrier();
  p.copy(act(a.logits), readback_.span());
  p.host_barrier();
  p.finish();

  clear_ = std::make_unique<Program>(dev);
  for (size_t l = 0; l < blocks.size(); ++l) {
    if (hp.attention(l).is_linear()) {
      clear_->fill_zero(state_[a.state[l]]);
    } else {
      clear_->fill_zero(state_[a.keys[l]]);
      clear_->fill_zero(state_[a.values[l]]);
    }
  }
  clear_->fill_zero(readback_.span());  // zero logits before the first step, as the CPU session has
  clear_->host_barrier();
  clear_->finish();
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
  if (position_ >= int64_t(UINT32_MAX)) throw Error("the Vulkan backend counts positions below 2^32");
  const uint32_t input[2] = {uint32_t(token), uint32_t(position_)};
  std::memcpy(input_.mapped(), input, sizeof(input));
  step_->run();
  readback_.invalidate();
  ++position_;
  return logits();
}

const float* Session::prefill(const int32_t* tokens, size_t count) {
  for (size_t i = 0; i < count; ++i) step(tokens[i]);
  return logits();
}

const float* Session::logits() const { return static_cast<const float*>(readback_.mapped()); }

void Session::reset() {
  position_ = 0;
  clear_->run();
  readback_.invalidate();
}

size_t Session::bytes() const {
  return size_t(weights_->bytes() + activations_.bytes() + state_.bytes() + input_.size() + readback_.size());
}

}  // namespace t2r::vulkan
