#include "context.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <string>

#include "batch_input.h"
#include "error.h"
#include "ops.h"
#include "sequence_state.h"

namespace t2r::vulkan {
namespace {

Features features_of(const LinearAttentionSpec& spec) {
  if (spec.folded) return Features::Given;
  return spec.feature_map == FeatureMap::ReluMlp ? Features::Map : Features::Elu;
}

// Forms of the model the shaders do not compute, refused before any device work.
const Model& supported(const Model& model) {
  const Hyperparams& hp = model.hparams();
  if (hp.has_encoder() || hp.norm_position != NormPosition::Pre) {
    throw Error("the Vulkan backend does not run translation models (an encoder, post-norm blocks); use the CPU "
                "backend");
  }
  if (hp.positions == PositionKind::Learned || hp.ffn == FfnKind::GeluTanh) {
    throw Error("the Vulkan backend does not compute " +
                std::string(hp.positions == PositionKind::Learned ? "learned positions" : "the gelu-tanh feed-forward") +
                " (a GPT-2 layout); use the CPU backend");
  }
  for (const LayerSpec& layer : hp.layers) {
    const LinearAttentionSpec& l = layer.attention.linear;
    if (layer.attention.is_linear() && !l.fused()) {
      throw Error("the Vulkan backend does not compute " + std::string(attention_kind_name(layer.attention)) +
                  " attention (readout " + std::string(name_of(l.readout)) + ", decay " + std::string(name_of(l.decay)) +
                  (l.window > 0 ? ", a window of " + std::to_string(l.window) : std::string()) + "); use the CPU backend");
    }
  }
  if (hp.positions == PositionKind::Rotary && hp.rotary.attention_factor != 1 && hp.has_linear_attention()) {
    throw Error("the Vulkan backend cannot run linear attention with a rotary attention factor (yarn, " +
                std::to_string(hp.rotary.attention_factor) + "); use the CPU backend");
  }
  return model;
}

// The shaders attend to every cached position, so a context must fit in every sliding window.
ContextLimits within_windows(const Hyperparams& hp, ContextLimits limits) {
  for (const LayerSpec& layer : hp.layers) {
    const int64_t window = layer.attention.window;
    if (window > 0 && limits.max_context > window) {
      throw Error("the Vulkan backend does not compute sliding windows: a context of " +
                  std::to_string(limits.max_context) + " positions is longer than the model's window of " +
                  std::to_string(window) + "; choose a max context of at most " + std::to_string(window) +
                  " or the CPU backend");
    }
  }
  return limits;
}

}  // namespace

// Regions of the activation arena: the batch input, then activations for max_batch rows (the
// logits for max_outputs, the softmax scores for max_runs runs).
struct Context::Regions {
  size_t batch, x, normed, q8_blocks, q8_scales, q, k, v, attn_out, hidden, logits, scores, partials;
};

Context::Context(const Model& model, const ContextOptions& options)
    : model_(supported(model)),
      limits_(within_windows(model.hparams(), check_context_limits(model.hparams(), options.max_sequences,
                                                                   options.max_batch, options.max_outputs,
                                                                   options.max_context))),
      layout_(plan_state_layout(model.hparams(), limits_.max_context)),
      batch_limits_{limits_.max_batch, std::min(limits_.max_batch, size_t(limits_.max_sequences)), limits_.max_outputs},
      vocab_size_(size_t(model.hparams().vocab_size)),
      device_model_(DeviceModel::open(model, options.device)),
      device_(device_model_->device()),
      positions_of_(size_t(limits_.max_sequences), 0),
      activations_(device_),
      states_(device_) {
  Regions r;
  plan(r);
  const VkDeviceSize inputs = batch_input_bytes(batch_limits_),
                     readback = VkDeviceSize(limits_.max_outputs) * vocab_size_ * sizeof(float),
                     transfer = std::max<VkDeviceSize>(layout_.floats * sizeof(float), 16);
  bytes_ = size_t(activations_.bytes() + states_.bytes() + inputs + readback + transfer);
  const size_t needed = bytes_ + weight_bytes();
  if (options.memory_budget > 0 && needed > options.memory_budget) {
    const size_t state_bytes = size_t(states_.bytes());
    const std::string states = layout_.max_context > 0 ? "a KV cache of " + std::to_string(layout_.max_context) +
                                                             " positions: " + std::to_string(state_bytes) + " bytes"
                                                       : "the states: " + std::to_string(state_bytes) + " bytes";
    throw Error("the session needs " + std::to_string(needed) + " bytes of device memory (the weights: " +
                std::to_string(weight_bytes()) + " bytes; " + states + "; activations for a batch of " +
                std::to_string(limits_.max_batch) + " rows: " + std::to_string(activations_.bytes()) +
                " bytes), over the memory budget of " + std::to_string(options.memory_budget) + " bytes");
  }
  activations_.allocate(Memory::Device);
  states_.allocate(Memory::Device);
  inputs_ = Buffer(device_, inputs, Memory::Upload);
  readback_ = Buffer(device_, readback, Memory::Readback);
  transfer_ = Buffer(device_, transfer, Memory::Readback);
  host_logits_ = static_cast<float*>(readback_.mapped());
  record(r);
  run_once([&](Program& p) { p.fill_zero(states_[states_region_]); });
  for (size_t output = 0; output < limits_.max_outputs; ++output) write_logits(output, nullptr);
}

Context::~Context() = default;

bool Context::splits_attention() const { return layout_.max_context > int64_t(kSplitPositions); }

void Context::plan(Regions& a) {
  const Hyperparams& hp = model_.hparams();
  const uint64_t d = hp.dim, H = hp.n_heads, Hkv = hp.n_kv_heads, dh = hp.head_dim,
                 r = uint64_t(hp.max_linear_features()) / H, F = hp.ffn_dim, V = hp.vocab_size;
  const uint64_t context = uint64_t(layout_.max_context), f = sizeof(float), n = limits_.max_batch;
  Arena& act = activations_;
  a.batch = act.reserve(batch_input_bytes(batch_limits_), "the batch input");
  a.x = act.reserve(n * d * f, "x");
  a.normed = act.reserve(n * d * f, "the normed rows");
  // A projection's input in q8, for q8_0 and q4_0 weights: at most the widest (rounded to whole
  // blocks: other inputs take no q8).
  const uint64_t widest = std::max({d, H * dh, F}) / kQuantBlock * kQuantBlock;
  a.q8_blocks = act.reserve(q8_block_bytes(n, widest), "the input in q8");
  a.q8_scales = act.reserve(q8_scale_bytes(n, widest), "the input's q8 scales");
  // q and k hold phi(q) and phi(k) when the feature map is folded.
  a.q = act.reserve(n * H * std::max(dh, r) * f, "q");
  a.k = act.reserve(n * H * std::max(dh, r) * f, "k");
  a.v = act.reserve(n * Hkv * dh * f, "v");
  a.attn_out = act.reserve(n * H * dh * f, "the attention output");
  a.hidden = act.reserve(n * F * f, "the feed-forward hidden layer");
  a.logits = act.reserve(uint64_t(limits_.max_outputs) * V * f, "the logits");
  a.scores = act.reserve(uint64_t(batch_limits_.max_runs) * H * context * f, "the attention scores");
  // The split softmax attention's partial sums, for the sections of at most kMatmulMinRows rows.
  const uint64_t split_rows = splits_attention() ? std::min<uint64_t>(n, kMatmulMinRows) : 0;
  a.partials = act.reserve(split_rows * H * softmax_attention_splits(uint32_t(context)) * (dh + 2) * f,
                           "the split attention's partial sums");
  // One binding holds every sequence's block, so that a row's shaders find its sequence by offset.
  const std::string hint = context > 0 ? " (KV caches of " + std::to_string(context) +
                                             " positions; choose a smaller max context or fewer sequences)"
                                       : "";
  states_region_ = states_.reserve(uint64_t(limits_.max_sequences) * layout_.floats * f,
                                   "the states of " + std::to_string(limits_.max_sequences) + " sequences" + hint);
}

void Context::record(const Regions& a) {
  const Hyperparams& hp = model_.hparams();
  Device& dev = device_;
  const Weights& w = device_model_->weights();
  const uint32_t H = uint32_t(hp.n_heads), Hkv = uint32_t(hp.n_kv_heads), dh = uint32_t(hp.head_dim);
  auto act = [&](size_t region) { return activations_[region]; };
  const Span states = states_[states_region_], batch = act(a.batch);
  program_ = std::make_unique<Program>(dev);
  Program& p = *program_;
  // The section being recorded: the most rows (and runs) it takes, the columns a matvec workgroup
  // computes at once, and whether its projections are tiled matrix products.
  uint32_t max_rows = 1, max_runs = 1, tile = 1;
  bool tiled = false;
  const Q8Columns q8{act(a.q8_blocks), act(a.q8_scales)};
  // W x (+ bias) for every row of the batch (block weights read x in q8, which record_norm or
  // record_quantize writes first).
  auto project = [&](const Linear& m, size_t in, size_t out, Epilogue e = Epilogue::Store) {
    Matvec op;
    op.w = w.matrix(m.weight);
    op.x = act(in);
    op.xq = q8;
    op.y = act(out);
    op.bias = w.vector(m.bias);
    op.batch = batch;
    op.columns = max_rows;
    op.tile = tile;
    op.epilogue = e;
    return op;
  };
  auto projection = [&](const Matvec& op) { return tiled ? matmul(dev, op) : matvec(dev, op); };
  // Whether any of these matrices holds blocks, which read their input in q8.
  auto reads_q8 = [](std::initializer_list<const Linear*> readers) {
    return std::any_of(readers.begin(), readers.end(), [](const Linear* m) { return dtype_is_block(m->weight.dtype); });
  };
  // norm(x) of every row of the batch (with `outputs`, of the rows that ask for logits) into
  // `normed`, which the projections after it (`readers`) read, and in q8 when they need it.
  auto record_norm = [&](const Norm& norm, bool outputs, std::initializer_list<const Linear*> readers) {
    RowNorm op;
    op.kind = hp.norm;
    op.x = act(a.x);
    op.y = act(a.normed);
    op.weight = w.vector(norm.weight);
    op.bias = w.vector(norm.bias);
    op.batch = batch;
    op.cols = uint32_t(hp.dim);
    op.rows = max_rows;
    op.eps = hp.norm_eps;
    op.outputs = outputs;
    if (reads_q8(readers)) op.q8 = q8;
    p.dispatch(row_norm(dev, op));
    p.barrier();
  };
  // Region `in` (a batch row per row) in q8, when the matrix about to read it holds blocks.
  auto record_quantize = [&](size_t in, const Linear& reader) {
    if (!reads_q8({&reader})) return;
    Quantize op;
    op.x = act(in);
    op.batch = batch;
    op.out = q8;
    op.cols = uint32_t(reader.weight.cols);
    op.rows = max_rows;
    p.dispatch(quantize(dev, op));
    p.barrier();
  };
  const Span rotary = hp.positions == PositionKind::Rotary ? w.position_freq() : Span{};
  const float q_scale = 1.0f / std::sqrt(float(dh));  // as the CPU computes it
  // YaRN's attention factor multiplies q and k; softmax attention sees only their product, so it
  // moves onto q (the constructor refuses it for linear attention, whose feature map sees each).
  const float rotary_gain = hp.positions == PositionKind::Rotary ? float(hp.rotary.attention_factor) : 1.0f;
  const bool sinusoidal = hp.positions == PositionKind::Sinusoidal;
  const auto& blocks = model_.blocks();

  // A batch: its input up, the embedding of every row, then per layer seven dependent steps over
  // all rows: the attention norm, the q, k and v projections, attention, the output projection
  // (plus the residual), the feed-forward norm, the up projections, the down projection (plus the
  // residual). The logits are sections of their own (below).
  auto record_batch = [&] {
    p.copy(inputs_.span(), batch);
    p.barrier();
    p.dispatch(embed(dev, w.matrix(model_.embedding()), hp.embedding_scale, batch, act(a.x),
                     sinusoidal ? w.position_freq() : Span{}, uint32_t(hp.position_offset)));
    p.barrier();
    for (size_t l = 0; l < blocks.size(); ++l) {
      const BlockWeights& block = blocks[l];
      const AttentionWeights& aw = block.attention;
      const AttentionSpec& spec = hp.attention(l);
      const StateLayout::Layer& state = layout_.layers[l];
      const bool folded = spec.is_linear() && spec.linear.folded;
      const Linear& q_weights = folded ? aw.feature_q : aw.q;
      const Linear& k_weights = folded ? aw.feature_k : aw.k;
      record_norm(block.attn_norm, false, {&q_weights, &k_weights, &aw.v});
      const Matvec q = project(q_weights, a.normed, a.q, folded ? Epilogue::Relu : Epilogue::Store);
      const Matvec k = project(k_weights, a.normed, a.k, folded ? Epilogue::Relu : Epilogue::Store);
      const Matvec v = project(aw.v, a.normed, a.v);
      p.dispatch(projection(q));
      p.dispatch(projection(k));
      p.dispatch(projection(v));
      p.barrier();
      if (spec.is_linear()) {
        LinearAttention la;
        la.features_kind = features_of(spec.linear);
        if (la.features_kind == Features::Map) {
          la.map = w.matrix(aw.feature_map.weight);
          la.map_bias = w.vector(aw.feature_map.bias);
        }
        la.q = act(a.q);
        la.k = act(a.k);
        la.v = act(a.v);
        la.state = states;
        la.state_offset = uint32_t(state.offset);
        la.out = act(a.attn_out);
        la.batch = batch;
        la.rotary_freq = rotary;
        la.heads = H;
        la.kv_heads = Hkv;
        la.features = uint32_t(spec.linear.features);
        la.head_dim = dh;
        la.max_runs = max_runs;
        la.q_stride = q.w.rows;
        la.k_stride = k.w.rows;
        la.v_stride = v.w.rows;
        la.q_scale = q_scale;
        la.floor = spec.linear.floor;
        p.dispatch(linear_attention(dev, la));
      } else {
        SoftmaxAttention sa;
        sa.q = act(a.q);
        sa.k = act(a.k);
        sa.v = act(a.v);
        sa.keys = states;
        sa.values = states;
        sa.keys_offset = uint32_t(state.offset);
        sa.values_offset = uint32_t(state.offset + size_t(layout_.max_context) * state.cache_row_floats);
        sa.scores = act(a.scores);
        sa.out = act(a.attn_out);
        sa.batch = batch;
        sa.rotary_freq = rotary;
        sa.heads = H;
        sa.kv_heads = Hkv;
        sa.head_dim = dh;
        sa.max_context = uint32_t(layout_.max_context);
        sa.max_runs = max_runs;
        sa.q_scale = q_scale * rotary_gain * rotary_gain;
        if (splits_attention() && !tiled) {
          const std::array<Dispatch, 3> passes = softmax_attention_split(dev, sa, act(a.partials), max_rows);
          p.dispatch(passes[0]);
          p.barrier();
          p.dispatch(passes[1]);
          p.barrier();
          p.dispatch(passes[2]);
        } else {
          p.dispatch(softmax_attention(dev, sa));
        }
      }
      p.barrier();
      record_quantize(a.attn_out, aw.o);
      p.dispatch(projection(project(aw.o, a.attn_out, a.x, Epilogue::Add)));
      p.barrier();
      record_norm(block.ffn_norm, false, {hp.ffn == FfnKind::SwiGlu ? &block.ffn.gate : &block.ffn.up, &block.ffn.up});
      if (hp.ffn == FfnKind::SwiGlu) {
        Matvec gate = project(block.ffn.gate, a.normed, a.hidden, Epilogue::SwiGlu);
        gate.up = w.matrix(block.ffn.up.weight);
        p.dispatch(projection(gate));
      } else {
        p.dispatch(projection(project(block.ffn.up, a.normed, a.hidden, Epilogue::Relu)));
      }
      p.barrier();
      record_quantize(a.hidden, block.ffn.down);
      p.dispatch(projection(project(block.ffn.down, a.hidden, a.x, Epilogue::Add)));
      p.barrier();
    }
  };
  // The final norm and the output projection of the rows that ask for logits, for at most
  // max_rows of them.
  auto record_logits = [&] {
    const Linear output_weights{model_.output()};
    record_norm(model_.output_norm(), true, {&output_weights});
    Matvec output = project(output_weights, a.normed, a.logits);
    output.outputs = true;
    p.dispatch(projection(output));
  };
  // Section 0 takes batches of up to kMatmulMinRows rows, 8 rows per matvec workgroup (each weight
  // read once for them); another, for batches of one row, dispatches only that row's workgroups: a
  // row's results are the same bits in both. Larger batches take a third, whose projections are
  // tiled matrix products (each weight read once per 32 rows) and whose softmax attention is never
  // split. Long contexts split the others' (splits_attention()). The logits take the same three
  // forms, chosen by how many rows ask for them (decode()).
  const uint32_t few_rows = uint32_t(std::min<size_t>(size_t(limits_.max_batch), kMatmulMinRows));
  max_rows = few_rows;
  max_runs = std::min(uint32_t(batch_limits_.max_runs), max_rows);
  tile = 8;
  record_batch();
  max_rows = std::min(uint32_t(limits_.max_outputs), few_rows);
  logits_sections_[1] = p.section();
  record_logits();
  if (size_t(limits_.max_batch) > kMatmulMinRows) {
    tiled = true;
    max_rows = uint32_t(limits_.max_batch);
    max_runs = uint32_t(batch_limits_.max_runs);
    tiled_section_ = p.section();
    record_batch();
    if (size_t(limits_.max_outputs) > kMatmulMinRows) {
      max_rows = uint32_t(limits_.max_outputs);
      logits_sections_[2] = p.section();
      record_logits();
    }
    tiled = false;
  }
  max_rows = max_runs = tile = 1;
  if (limits_.max_batch > 1) {
    one_row_section_ = p.section();
    record_batch();
  }
  if (limits_.max_outputs > 1) {
    logits_sections_[0] = p.section();
    record_logits();
  } else {
    logits_sections_[0] = logits_sections_[1];
  }
  // Section copy_section_ + k - 1 (k = 1..max_outputs): the copy of k outputs' logits to the host,
  // submitted after the batch when k rows asked for logits (a copy's size is fixed when recorded).
  const VkDeviceSize logits_bytes = vocab_size_ * sizeof(float);
  for (size_t outputs = 1; outputs <= limits_.max_outputs; ++outputs) {
    const uint32_t section = p.section();
    if (outputs == 1) copy_section_ = section;
    const VkDeviceSize bytes = outputs * logits_bytes;
    p.copy(Span{act(a.logits).buffer, act(a.logits).offset, bytes}, Span{readback_.span().buffer, 0, bytes});
    p.host_barrier();
  }
  p.finish();
}

const float* Context::decode(const BatchRow* rows, size_t count) {
  check_batch(model_.hparams(), limits_, positions_of_.data(), rows, count);
  for (size_t i = 0; i < count; ++i) {
    if (rows[i].position >= int64_t(UINT32_MAX)) throw Error("the Vulkan backend counts positions below 2^32");
  }
  outputs_ = write_batch_input(inputs_.mapped(), batch_limits_, rows, count, layout_.floats);
  const uint32_t batch_section = count == 1 ? one_row_section_ : count > kMatmulMinRows ? tiled_section_ : 0;
  const uint32_t logits_section = logits_sections_[outputs_ == 1 ? 0 : outputs_ > kMatmulMinRows ? 2 : 1];
  const uint32_t sections[3] = {batch_section, logits_section, copy_section_ + uint32_t(outputs_) - 1};
  program_->run(sections, outputs_ > 0 ? 3 : 1);
  if (outputs_ > 0) readback_.invalidate();
  // Rows of a sequence are consecutive and ascending: its last row leaves its next position.
  for (size_t i = 0; i < count; ++i) positions_of_[size_t(rows[i].sequence)] = rows[i].position + 1;
  return host_logits_;
}

int64_t Context::position(int sequence) const {
  return positions_of_[size_t(check_sequence(sequence, limits_.max_sequences))];
}

Span Context::state_span(int sequence, size_t offset, size_t floats) const {
  const Span all = states_[states_region_];
  return {all.buffer, all.offset + (size_t(sequence) * layout_.floats + offset) * sizeof(float), floats * sizeof(float)};
}

template <typename Record>
void Context::run_once(Record record) const {
  Program program(device_);
  record(program);
  program.host_barrier();
  program.finish();
  program.run();
}

void Context::clear(int sequence) {
  check_sequence(sequence, limits_.max_sequences);
  run_once([&](Program& p) { p.fill_zero(state_span(sequence, 0, layout_.floats)); });
  positions_of_[size_t(sequence)] = 0;
}

void Context::copy(int from, int to) {
  check_sequence(from, limits_.max_sequences);
  check_sequence(to, limits_.max_sequences);
  if (from != to) {
    run_once([&](Program& p) { p.copy(state_span(from, 0, layout_.floats), state_span(to, 0, layout_.floats)); });
  }
  positions_of_[size_t(to)] = positions_of_[size_t(from)];
}

size_t Context::state_size(int sequence) const {
  return kStateHeaderBytes + state_payload_floats(model_.hparams(), layout_, position(sequence)) * sizeof(float);
}

void Context::save_blocks(int sequence, void* out) const {
  const int64_t position = this->position(sequence);
  size_t packed = 0;  // floats
  run_once([&](Program& p) {
    for_each_state_block(model_.hparams(), layout_, position, [&](size_t offset, size_t floats) {
      if (floats == 0) return;  // an empty KV cache
      p.copy(state_span(sequence, offset, floats),
             Span{transfer_.span().buffer, packed * sizeof(float), floats * sizeof(float)});
      packed += floats;
    });
  });
  transfer_.invalidate();
  std::memcpy(out, transfer_.mapped(), packed * sizeof(float));
}

void Context::restore_blocks(int sequence, int64_t position, const void* blocks) {
  check_sequence(sequence, limits_.max_sequences);
  std::memcpy(transfer_.mapped(), blocks,
              state_payload_floats(model_.hparams(), layout_, position) * sizeof(float));
  transfer_.flush();
  size_t packed = 0;
  run_once([&](Program& p) {
    for_each_state_block(model_.hparams(), layout_, position, [&](size_t offset, size_t floats) {
      if (floats == 0) return;
      p.copy(Span{transfer_.span().buffer, packed * sizeof(float), floats * sizeof(float)},
             state_span(sequence, offset, floats));
      packed += floats;
    });
  });
  positions_of_[size_t(sequence)] = position;
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
  check_sequence(sequence, limits_.max_sequences);
  const StateHeader header = check_state(data, size, kSequenceStateVersion, model_.file().checksum(), max_context(),
                                         model_.hparams(), layout_, 0);
  restore_blocks(sequence, header.position, static_cast<const unsigned char*>(data) + kStateHeaderBytes);
}

void Context::write_logits(size_t output, const void* values) {
  if (output >= limits_.max_outputs) throw Error("output " + std::to_string(output) + " does not exist");
  float* target = host_logits_ + output * vocab_size_;
  if (values) {
    std::memcpy(target, values, vocab_size_ * sizeof(float));
  } else {
    std::memset(target, 0, vocab_size_ * sizeof(float));
  }
  readback_.flush();
}

}  // namespace t2r::vulkan
