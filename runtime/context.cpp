#include "context.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>
#include <string>

#include "error.h"
#include "sequence_state.h"

namespace t2r {
namespace {

constexpr size_t kAlignFloats = 16;  // 64 bytes: every buffer starts on a cache line

// Checked before the pool starts any thread: a hostile count must not spawn a billion.
int checked_thread_count(int requested) {
  if (requested < 0 || requested > 1024) throw Error("threads must be in [0, 1024]");
  return requested > 0 ? requested : physical_core_count();
}

}  // namespace

Context::Context(const Model& model, ContextOptions options)
    : model_(model), pool_(checked_thread_count(options.threads)) {
  const Hyperparams& hp = model.hparams();
  const ContextLimits limits =
      check_context_limits(hp, options.max_sequences, options.max_batch, options.max_outputs, options.max_context);
  layout_ = plan_state_layout(hp, limits.max_context);
  max_sequences_ = limits.max_sequences;
  max_batch_ = limits.max_batch;
  max_outputs_ = limits.max_outputs;
  if (options.max_adaptive_prompt < 0 || options.max_adaptive_prompt > (int64_t(1) << 24)) {
    throw Error("max adaptive prompt must be in [0, 16777216]");
  }
  if (options.max_adaptive_prompt > 0 && hp.has_softmax_attention()) {
    throw Error("length-adaptive prefill needs a linear-attention model; this one uses softmax attention");
  }
  if (options.max_adaptive_prompt > 0 &&
      std::any_of(hp.layers.begin(), hp.layers.end(), [](const LayerSpec& l) { return !l.attention.linear.fused(); })) {
    throw Error("length-adaptive prefill needs t2r or elu attention; this model's attention is " +
                std::string(hp.attention_summary()));
  }
  max_adaptive_prompt_ = size_t(options.max_adaptive_prompt);
  positions_of_.assign(size_t(max_sequences_), 0);
  plan_sources(hp, options);

  // The plan: every buffer's size in floats, laid out back to back in one allocation.
  struct Slot {
    float** view;
    size_t floats;
  };
  const size_t d = hp.dim, V = hp.vocab_size, features = size_t(hp.max_linear_features());
  const size_t context = size_t(layout_.max_context), S = size_t(max_sequences_);
  // A translation model's encoder runs a whole source through the same per-row buffers, as wide as the
  // decoder's or the encoder's rows need.
  const size_t Ls = max_source_length_, C = std::max(max_batch_, Ls);
  const size_t q_width = std::max(size_t(hp.n_heads * hp.head_dim), Ls > 0 ? d : 0),
               kv_width = std::max(size_t(hp.n_kv_heads * hp.head_dim), Ls > 0 ? d : 0),
               F = std::max(size_t(hp.ffn_dim), size_t(hp.encoder.ffn_dim));
  size_t gate_floats = 0;
  for (const LayerSpec& layer : hp.layers) {
    const LinearAttentionSpec& linear = layer.attention.linear;
    if (!layer.attention.is_linear() || linear.fused()) continue;
    recurrent_scratch_floats_ =
        std::max(recurrent_scratch_floats_, size_t(linear.window) + size_t(hp.head_dim) + size_t(linear.features));
    if (linear.decay == Decay::KeyGate) gate_floats = C * size_t(hp.n_kv_heads * hp.head_dim);
  }
  const size_t P = max_adaptive_prompt_, rows = std::max(C, P), window = P > 0 ? kLengthWindow : 0;
  scores_stride_ = std::max(context, Ls > 0 ? kEncoderQueryBlock * (Ls + 2 * d) : 0);
  float *positions, *runs, *output_rows, *candidates;  // integer buffers, typed below
  static_assert(sizeof(int64_t) == 2 * sizeof(float) && sizeof(uint32_t) == sizeof(float) &&
                    sizeof(Run) == 3 * sizeof(float),
                "arena units");
  const Slot plan[] = {
      {&x_, rows * d},
      {&xb_, C * d},
      {&xb2_, C * d},
      {&q_, C * q_width},
      {&k_, C * kv_width},
      {&v_, C * kv_width},
      {&phi_q_, C * features},
      {&phi_k_, C * features},
      {&attn_out_, C * q_width},
      {&hidden_, C * F},
      {&hidden2_, C * F},
      {&logits_, max_outputs_ * V},
      {&states_, S * layout_.floats},
      {&scores_, size_t(pool_.size()) * scores_stride_},
      {&encoder_keys_, 2 * Ls * d},
      {&gate_, gate_floats},
      {&recurrent_scratch_, size_t(pool_.size()) * recurrent_scratch_floats_},
      {&sources_, size_t(max_sources_) * source_floats_},
      {&positions, 2 * rows},
      {&runs, 3 * C},
      {&output_rows, max_outputs_},
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
  // What max_adaptive_prompt adds: the rows of x_ and positions_ beyond a batch, and its own buffers.
  adaptive_bytes_ = (padded(rows * d) - padded(C * d) + padded(2 * rows) - padded(2 * C) + padded(P * features) +
                     padded(window * features) + 2 * padded(P) + 2 * padded(window > 0 ? features : 0)) *
                    sizeof(float);
  if (options.memory_budget > 0 && bytes_ > options.memory_budget) {
    const size_t cache_bytes = (S * layout_.floats) * sizeof(float);  // the sequences' states
    const std::string cache = context > 0 ? " (a KV cache of " + std::to_string(context) + " positions: " +
                                                std::to_string(cache_bytes) + " bytes)"
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
  runs_ = reinterpret_cast<Run*>(runs);
  output_rows_ = reinterpret_cast<uint32_t*>(output_rows);
  candidates_ = reinterpret_cast<uint32_t*>(candidates);
  std::memset(arena_, 0, bytes_);
}

Context::~Context() { ::operator delete(arena_, std::align_val_t(64)); }

void Context::plan_sources(const Hyperparams& hp, const ContextOptions& options) {
  if (options.max_sources < 0 || options.max_sources > 4096) throw Error("max sources must be in [0, 4096]");
  if (options.max_source_length < 0 || options.max_source_length > (int64_t(1) << 20)) {
    throw Error("max source length must be in [0, 1048576]");
  }
  if (!hp.has_encoder()) {
    if (options.max_sources > 0 || options.max_source_length > 0) {
      throw Error("max sources and max source length are for translation models; this model has no encoder");
    }
    return;
  }
  if (max_adaptive_prompt_ > 0) throw Error("length-adaptive prefill is for language models, not translation models");
  max_sources_ = options.max_sources > 0 ? options.max_sources : max_sequences_;
  max_source_length_ = size_t(options.max_source_length > 0 ? options.max_source_length : hp.encoder.max_positions);
  source_of_.assign(size_t(max_sequences_), -1);
  source_length_.assign(size_t(max_sources_), 0);
  const size_t H = size_t(hp.n_heads), dh = size_t(hp.head_dim);
  for (const LayerSpec& layer : hp.layers) {
    source_offsets_.push_back(source_floats_);
    const size_t r = size_t(layer.cross.linear.features);
    source_floats_ += layer.cross.is_linear() ? H * r * dh + H * r : 2 * max_source_length_ * H * dh;
  }
  if (double(source_floats_) * double(max_sources_) * sizeof(float) > double(uint64_t(1) << 46)) {
    throw Error("the encoded sources would need more than 64 TiB; choose fewer or shorter sources");
  }
}

int Context::check_sequence(int sequence) const { return t2r::check_sequence(sequence, max_sequences_); }

int Context::check_source(int source) const {
  if (max_sources_ == 0) throw Error("this model has no encoder: it takes no source");
  if (source < 0 || source >= max_sources_) {
    throw Error("source " + std::to_string(source) + " does not exist (this context holds " +
                std::to_string(max_sources_) + ")");
  }
  return source;
}

void Context::attach(int sequence, int source) {
  check_sequence(sequence);
  source_of_[size_t(sequence)] = check_source(source);
}

int Context::source_of(int sequence) const {
  check_sequence(sequence);
  return source_of_.empty() ? -1 : source_of_[size_t(sequence)];
}

void Context::check_rows(const BatchRow* rows, size_t count) const {
  check_batch(model_.hparams(), {max_sequences_, max_batch_, max_outputs_, layout_.max_context}, positions_of_.data(),
              rows, count);
  if (source_of_.empty()) return;
  for (size_t i = 0; i < count; ++i) {
    const int source = source_of_[size_t(rows[i].sequence)];
    if (source < 0 || source_length_[size_t(source)] == 0) {
      throw Error("sequence " + std::to_string(rows[i].sequence) + " is not attached to an encoded source");
    }
  }
}

const float* Context::decode(const BatchRow* rows, size_t count) {
  check_rows(rows, count);
  size_t n_runs = 0;
  outputs_ = 0;
  for (size_t i = 0; i < count; ++i) {
    positions_[i] = rows[i].position;
    if (i == 0 || rows[i - 1].sequence != rows[i].sequence) runs_[n_runs++] = Run{rows[i].sequence, uint32_t(i), 0};
    ++runs_[n_runs - 1].count;
    if (rows[i].logits) output_rows_[outputs_++] = uint32_t(i);
  }
  if (count == 0) return logits_;
  const size_t d = size_t(model_.hparams().dim);
  for (size_t i = 0; i < count; ++i) embed(model_.embedding(), rows[i].token, positions_[i], x_ + i * d);
  for (size_t l = 0; l < model_.blocks().size(); ++l) layer_forward(l, x_, positions_, count, runs_, n_runs);
  compute_logits(x_, output_rows_, outputs_);
  for (size_t r = 0; r < n_runs; ++r) positions_of_[size_t(runs_[r].sequence)] += runs_[r].count;
  return logits_;
}

int64_t Context::position(int sequence) const { return positions_of_[size_t(check_sequence(sequence))]; }

void Context::clear(int sequence) {
  std::memset(sequence_state(sequence), 0, layout_.floats * sizeof(float));
  positions_of_[size_t(sequence)] = 0;
}

void Context::copy(int from, int to) {
  const float* source = sequence_state(from);
  float* target = sequence_state(to);
  if (source != target) std::memcpy(target, source, layout_.floats * sizeof(float));
  positions_of_[size_t(to)] = positions_of_[size_t(from)];
  if (!source_of_.empty()) source_of_[size_t(to)] = source_of_[size_t(from)];
}

size_t Context::state_size(int sequence) const {
  return kStateHeaderBytes + state_payload_floats(model_.hparams(), layout_, position(sequence)) * sizeof(float);
}

void Context::save(int sequence, void* out, size_t size) const {
  const size_t needed = state_size(sequence);
  if (size < needed) {
    throw Error("state buffer of " + std::to_string(size) + " bytes is too small (needs " + std::to_string(needed) +
                ")");
  }
  write_state_header(out, {kSequenceStateVersion, model_.file().checksum(), position(sequence),
                           uint64_t(needed - kStateHeaderBytes)});
  save_blocks(sequence, static_cast<unsigned char*>(out) + kStateHeaderBytes);
}

void Context::restore(int sequence, const void* data, size_t size) {
  check_sequence(sequence);
  const StateHeader header = check_state(data, size, kSequenceStateVersion, model_.file().checksum(), max_context(),
                                         model_.hparams(), layout_, 0);
  restore_blocks(sequence, header.position, static_cast<const unsigned char*>(data) + kStateHeaderBytes);
}

void Context::save_blocks(int sequence, void* out) const {
  const float* block = sequence_state(sequence);
  auto p = static_cast<unsigned char*>(out);
  for_each_state_block(model_.hparams(), layout_, position(sequence), [&](size_t offset, size_t floats) {
    std::memcpy(p, block + offset, floats * sizeof(float));
    p += floats * sizeof(float);
  });
}

void Context::restore_blocks(int sequence, int64_t position, const void* blocks) {
  float* block = sequence_state(sequence);
  auto p = static_cast<const unsigned char*>(blocks);
  for_each_state_block(model_.hparams(), layout_, position, [&](size_t offset, size_t floats) {
    std::memcpy(block + offset, p, floats * sizeof(float));
    p += floats * sizeof(float);
  });
  positions_of_[size_t(sequence)] = position;
}

StateMagnitude Context::state_magnitude(int sequence) const {
  const Hyperparams& hp = model_.hparams();
  if (!hp.has_linear_attention()) throw Error("state_magnitude: softmax attention has no recurrent state");
  const float* block = sequence_state(sequence);
  StateMagnitude m;
  for (size_t l = 0; l < layout_.layers.size(); ++l) {
    if (!hp.attention(l).is_linear()) continue;
    const StateLayout::Layer& layer = layout_.layers[l];
    for (size_t i = 0; i < layer.state_floats; ++i) {
      m.max_abs_state = std::max(m.max_abs_state, std::fabs(block[layer.offset + i]));
    }
    for (size_t i = 0; i < layer.normalizer_floats; ++i) {
      m.max_normalizer = std::max(m.max_normalizer, block[layer.offset + layer.state_floats + i]);
    }
  }
  return m;
}

HeadView Context::last_layer_head(int sequence, size_t head) const {
  const Hyperparams& hp = model_.hparams();
  const size_t last = size_t(hp.n_layers - 1);
  if (!hp.attention(last).is_linear()) throw Error("last_layer_head: softmax attention has no recurrent state");
  if (!hp.attention(last).linear.fused()) {
    throw Error("last_layer_head: only t2r and elu attention keep one state per head and phi(k) per row");
  }
  if (head >= size_t(hp.n_heads)) throw Error("last_layer_head: head " + std::to_string(head) + " does not exist");
  const size_t r = size_t(hp.attention(last).linear.features), dh = size_t(hp.head_dim),
               group = size_t(hp.n_heads / hp.n_kv_heads);
  // phi_q_, phi_k_ and v_ are reused by every layer, so after a one-row decode they hold the last layer's.
  const StateLayout::Layer& layer = layout_.layers[last];
  const float* block = sequence_state(sequence) + layer.offset;
  return {phi_q_ + head * r, phi_k_ + head * r, v_ + (head / group) * dh, block + head * r * dh,
          block + layer.state_floats + head * r};
}

}  // namespace t2r
