// A context: the machinery that runs a model (the thread pool and every activation buffer, planned
// for a batch) and the states of up to max_sequences sequences, each one plain fixed-size block of
// floats laid out by a StateLayout (for linear attention S and z per layer and head, for softmax a
// KV cache). Everything is planned and allocated once, at creation; decoding allocates nothing.
//
// A batch is a list of rows, each one token of one sequence at its next position. Rows of one
// step share one read of the weights: every matrix product runs over all rows at once. A batch may
// mix sequences that are decoding (one row each) with a prompt chunk of another (consecutive rows),
// and each row's results are those of the same sequence run alone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "architecture.h"
#include "batch.h"
#include "length_config.h"
#include "model.h"
#include "thread_pool.h"

namespace t2r {

struct ContextOptions {
  int max_sequences = 1;
  int max_batch = 64;       // rows one decode() takes: tokens of every sequence together
  int max_outputs = 0;      // rows of one decode() that ask for logits (0: max_sequences)
  int64_t max_context = 0;  // softmax layers: KV positions per sequence (0: the model's max_positions)
  int threads = 0;          // 0: one per physical core
  // Linear attention: the longest prompt prefill_adaptive takes (its buffers are planned for it; 0: off).
  int64_t max_adaptive_prompt = 0;
  // The most bytes the context may allocate (everything bytes() counts); 0: no limit.
  uint64_t memory_budget = 0;
  // Translation models: how many encoded sources the context keeps at once (each read by any number of
  // sequences: a sentence's beams) and the longest (0: max_sequences, and the encoder's max_positions).
  int max_sources = 0;
  int64_t max_source_length = 0;
};

// The magnitude of the linear-attention state of a sequence: max |S| and max z over its layers and heads.
struct StateMagnitude {
  float max_abs_state = 0;
  float max_normalizer = 0;
};

// One head of the last layer as of the last row decoded (for diagnostics such as comparing the float32
// state with a higher-precision accumulation of the same increments).
struct HeadView {
  const float *phi_q, *phi_k, *v;   // [r], [r], [d_h]
  const float *state, *normalizer;  // S [r, d_h], z [r]
};

class Context {
 public:
  // Throws t2r::Error for bad options, and when the plan exceeds options.memory_budget (the message
  // states the bytes needed) or cannot be allocated.
  Context(const Model& model, ContextOptions options = {});
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  // Runs the rows through the model and returns the logits of the rows that asked for them,
  // [outputs(), vocab_size] in row order, valid until the next call. The rows of one sequence are
  // consecutive and continue it: the first at position(s), the next one after it, and so on. Throws
  // t2r::Error, changing nothing, for more than max_batch rows or max_outputs logits, an id outside
  // the vocabulary, an unknown sequence, a position that does not continue its sequence, or a full
  // KV cache. Never allocates.
  const float* decode(const BatchRow* rows, size_t count);
  const float* logits(size_t output) const { return logits_ + output * size_t(model_.hparams().vocab_size); }
  size_t outputs() const { return outputs_; }

  // Translation models (hparams().has_encoder()). encode() runs the encoder over a source (ids of the
  // source vocabulary, its final </s> included) and keeps in slot `source` what the decoder's cross
  // attentions read of it: per decoder layer S and z for linear cross attention (so a target token's cost
  // no longer depends on the source length), or the keys and values of every source position for
  // softmax. Throws t2r::Error for a slot outside [0, max_sources), a length of 0 or over
  // max_source_length, or an id outside the source vocabulary. Never allocates.
  void encode(int source, const int32_t* tokens, size_t count);
  // The rows of `sequence` attend to encoded source `source` from now on; copy() carries it, clear() keeps it.
  void attach(int sequence, int source);
  int source_of(int sequence) const;  // -1: none
  int max_sources() const { return max_sources_; }
  size_t max_source_length() const { return max_source_length_; }

  // Sequence operations; each throws t2r::Error for a sequence outside [0, max_sequences).
  int64_t position(int sequence) const;
  void clear(int sequence);           // back to the empty sequence
  void copy(int from, int to);        // `to` continues exactly as `from` would
  // A sequence's state as versioned bytes tied to this model (runtime/sequence_state.cpp).
  size_t state_size(int sequence) const;
  void save(int sequence, void* out, size_t size) const;
  // Throws t2r::Error, leaving the sequence as it was, for a state of another model or size, a
  // damaged header, a position beyond 2^53 or the KV cache, or a NaN or infinite float.
  void restore(int sequence, const void* data, size_t size);

  // Length-adaptive prefill of one sequence (see Session::prefill_adaptive); returns its logits.
  // Needs count <= ContextOptions::max_adaptive_prompt; never allocates.
  const float* prefill_adaptive(int sequence, const int32_t* tokens, size_t count, const LengthConfig& config);

  // Linear-attention layers only (both throw t2r::Error for a model without). Read-only.
  StateMagnitude state_magnitude(int sequence) const;
  HeadView last_layer_head(int sequence, size_t head) const;  // valid after a one-row decode()

  const Model& model() const { return model_; }
  const StateLayout& state_layout() const { return layout_; }
  int max_sequences() const { return max_sequences_; }
  size_t max_batch() const { return max_batch_; }
  size_t max_outputs() const { return max_outputs_; }
  int64_t max_context() const { return layout_.max_context > 0 ? layout_.max_context : -1; }  // -1: unbounded
  size_t bytes() const { return bytes_; }                    // everything this context allocated
  size_t adaptive_bytes() const { return adaptive_bytes_; }  // the part only prefill_adaptive needs
  int threads() const { return pool_.size(); }

  // The blocks of a sequence's saved state (runtime/sequence_state.h) without the header, for a
  // Session's state, which puts the logits before them. restore_blocks takes blocks already checked
  // (check_state) and sets the sequence's position.
  void save_blocks(int sequence, void* out) const;
  void restore_blocks(int sequence, int64_t position, const void* blocks);

  // Where logits live: Session's saved state carries its last logits, and restores them here.
  float* logits_buffer() { return logits_; }

 private:
  // Rows [first, first + count) of a batch, all of one sequence.
  struct Run {
    int32_t sequence;
    uint32_t first, count;
  };
  int check_sequence(int sequence) const;
  int check_source(int source) const;
  void plan_sources(const Hyperparams& hp, const ContextOptions& options);
  // The flat state block of a sequence (state_layout().floats floats).
  float* sequence_state(int sequence) { return states_ + size_t(check_sequence(sequence)) * layout_.floats; }
  const float* sequence_state(int sequence) const {
    return states_ + size_t(check_sequence(sequence)) * layout_.floats;
  }
  void check_rows(const BatchRow* rows, size_t count) const;

  // The forward pass (runtime/forward.cpp).
  void embed(const cpu::Matrix& table, int32_t token, int64_t position, float* x);  // one row of the residual stream
  // out = norm(in) for one row, and for n rows across the pool.
  void norm_row(const Norm& norm, const float* in, float* out) const;
  void norm_rows(const Norm& norm, const float* in, size_t n, float* out);
  // One residual block over n rows of x: `sublayer` reads its input from xb_ and writes its output to
  // xb2_; pre-norm: x += f(norm(x)), post-norm: x = norm(x + f(x)).
  template <typename Sublayer>
  void residual(NormPosition position, const Norm& norm, float* x, size_t n, Sublayer sublayer);
  void feed_forward(const FfnWeights& w, size_t hidden, size_t n);  // xb_ -> xb2_
  // One layer over n rows of the residual stream x at `positions`, grouped into runs.
  void layer_forward(size_t layer, float* x, const int64_t* positions, size_t n, const Run* runs, size_t n_runs);
  void compute_logits(const float* x, const uint32_t* rows, size_t count);  // the rows' logits into logits_
  // Y = X W^T (+ bias) for n rows, the weight rows split across the pool.
  void matmul(const Linear& w, const float* x, size_t n, float* y);
  // f(begin, end) over [0, n), split across the pool when there are several rows.
  template <typename F>
  void for_rows(size_t n, F f) {
    if (n == 1) return f(size_t(0), size_t(1));  // decoding one row: not worth waking the pool
    auto job = [&](int thread, int threads) {
      size_t begin, end;
      split_range(n, thread, threads, &begin, &end);
      f(begin, end);
    };
    pool_.run(job);
  }

  // The attention forms (runtime/attention.cpp): projections, feature maps, state or cache.
  void attention(size_t layer, const int64_t* positions, size_t n, const Run* runs, size_t n_runs);
  void linear_attention(size_t layer, const Run* runs, size_t n_runs);
  void softmax_attention(size_t layer, const int64_t* positions, size_t n, const Run* runs, size_t n_runs);
  // The recurrent forms (runtime/recurrent_attention.cpp): what a row's q and k need before rotary
  // and after it (feature maps, key gates), then the state, window and readout of each run.
  void before_rotary(const LinearAttentionSpec& spec, float* q, float* k, size_t row);
  void after_rotary(const LinearAttentionSpec& spec, const AttentionWeights& w, size_t row);
  void recurrent_attention(size_t layer, const int64_t* positions, const Run* runs, size_t n_runs);
  // A translation decoder layer's attention to each row's source (runtime/cross_attention.cpp).
  void cross_attention(size_t layer, size_t n, const Run* runs);
  // q_ = (W_q xb_ + b) / sqrt(head_dim) for n rows.
  void project_queries(const Linear& w, size_t n, size_t head_dim);

  // The encoder (runtime/encoder.cpp): its layer over n source rows of x_, and the cross-attention
  // memory of each decoder layer, from the encoder output in x_, into a source slot.
  void encoder_layer(size_t layer, size_t n);
  // Softmax attention of every source row over all of them (q_, k_, v_ -> attn_out_), by blocks of
  // kEncoderQueryBlock queries per head as matrix products.
  void encoder_attention(size_t n, size_t heads, size_t head_dim);
  static constexpr size_t kEncoderQueryBlock = 32;
  void store_source(int source, const float* encoded, size_t n);
  float* source_memory(int source, size_t layer) { return sources_ + size_t(source) * source_floats_ + source_offsets_[layer]; }

  // Length-adaptive prefill (runtime/length_adaptive_prefill.cpp): keeps `keep` of the n prompt tokens
  // that entered `layer` for the next one, and compacts x_ and positions_.
  void select_tokens(int sequence, size_t layer, size_t n, size_t keep, const LengthConfig& config);

  const Model& model_;
  ThreadPool pool_;
  StateLayout layout_;
  int max_sequences_ = 1;
  size_t max_batch_ = 1, max_outputs_ = 1, max_adaptive_prompt_ = 0;
  size_t bytes_ = 0, adaptive_bytes_ = 0;
  size_t outputs_ = 0;
  std::vector<int64_t> positions_of_;  // each sequence's next position
  // Translation models: each sequence's source slot (-1: none), each slot's encoded length (0: none),
  // and where each decoder layer's cross-attention memory lives in a slot of source_floats_ floats
  // (linear: S [H, r, d_h] then z [H, r]; softmax: keys then values [max_source_length, d]).
  std::vector<int> source_of_;
  std::vector<size_t> source_length_, source_offsets_;
  int max_sources_ = 0;
  size_t max_source_length_ = 0, source_floats_ = 0;
  float* sources_ = nullptr;
  float* arena_ = nullptr;
  // Views into the arena. Per-row buffers hold max_batch rows; x_ and positions_
  // max(max_batch, max_adaptive_prompt) rows.
  float *x_, *xb_, *xb2_, *q_, *k_, *v_, *phi_q_, *phi_k_, *attn_out_, *hidden_, *hidden2_, *logits_;
  float* states_;   // [max_sequences, layout_.floats]
  float* scores_;   // softmax: [threads, scores_stride_]
  size_t scores_stride_ = 0;  // max_context, or an encoder's query block: its scores, queries and outputs
  float* encoder_keys_ = nullptr;  // a source's packed keys and transposed values [2, max_source_length, d]
  float* gate_;     // key-gated decay: [max_batch, H_kv d_h]
  // The recurrent forms, per thread: window scores [window], its output [d_h] and a leaving key's phi [r].
  float* recurrent_scratch_;
  size_t recurrent_scratch_floats_ = 0;
  int64_t* positions_;  // of the rows of x_
  Run* runs_;           // [max_batch]
  uint32_t* output_rows_;  // [max_outputs]: the rows whose logits decode() computes
  // Length-adaptive prefill: phi(k) [P, H r] of the tokens entering a layer, phi(q) of its last
  // kLengthWindow tokens, each token's significance [P] and candidate order [P], and [H r] scratch for
  // the window's summed normalized queries and the normalizer it rewinds.
  float *prompt_phi_k_, *window_phi_q_, *significance_, *query_sum_, *window_normalizer_;
  uint32_t* candidates_;
};

}  // namespace t2r
