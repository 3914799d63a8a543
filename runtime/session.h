// A session: one running sequence over a shared Model. Every activation buffer, the logits and
// the recurrent state (S and z per layer and head; a KV cache for softmax models) are planned
// and allocated once, here, with the worker threads; feeding tokens allocates nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "length_config.h"
#include "model.h"
#include "thread_pool.h"

namespace t2r {

struct SessionOptions {
  // Softmax models only: the KV cache holds this many positions (0: the model's max_positions).
  int64_t max_context = 0;
  int threads = 0;         // 0: one per physical core
  int prefill_chunk = 64;  // prompt tokens processed together (matrix-matrix kernels)
  // Linear-attention models: the longest prompt prefill_adaptive takes. Its buffers (the residual
  // stream, positions and phi(k) of a whole prompt) are planned for this many tokens. 0: off.
  int64_t max_adaptive_prompt = 0;
  // The most bytes the session may allocate (everything bytes() counts: state or KV cache,
  // activations, logits); 0: no limit. A larger plan is refused when the session is created.
  uint64_t memory_budget = 0;
};

// The magnitude of a linear-attention state: max |S| and max z over all layers and heads.
struct StateMagnitude {
  float max_abs_state = 0;
  float max_normalizer = 0;
};

// One head of the last layer as of the last token stepped (for diagnostics such as comparing
// the float32 state with a higher-precision accumulation of the same increments).
struct HeadView {
  const float *phi_q, *phi_k, *v;   // [r], [r], [d_h]
  const float *state, *normalizer;  // S [r, d_h], z [r]
};

class Session {
 public:
  // Throws t2r::Error for bad options, and when the plan exceeds options.memory_budget (the
  // message states the bytes needed) or cannot be allocated.
  Session(const Model& model, SessionOptions options = {});
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Feeds one token at the next position and returns the logits predicting the one after it
  // (vocab_size floats, valid until the next call). Throws t2r::Error for an id outside the
  // vocabulary or a full KV cache; never allocates.
  const float* step(int32_t token);
  // Feeds a whole prompt in chunks; returns the logits after its last token. Gives the same
  // state and logits as stepping token by token, to float rounding.
  const float* prefill(const int32_t* tokens, size_t count);
  // Length-adaptive prefill: the prompt goes through the model layer by layer (each layer in
  // chunks, as prefill does), and only config.tokens_entering(l, count) of its tokens enter
  // layer l: the last kLengthWindow always, the first config.pinned_head, and the most
  // significant of the rest among those that entered layer l - 1, in their original order and
  // positions. A token dropped before layer l has updated the state of the layers below only.
  // Returns the logits after the last token. The full configuration gives exactly prefill()'s
  // state and logits. Needs count <= SessionOptions::max_adaptive_prompt; never allocates.
  const float* prefill_adaptive(const int32_t* tokens, size_t count, const LengthConfig& config);
  const float* logits() const { return logits_; }
  void reset();  // back to the empty sequence

  int64_t position() const { return position_; }
  int64_t max_context() const { return max_context_; }  // -1: unbounded (linear attention)
  size_t bytes() const { return bytes_; }              // everything this session allocated
  size_t adaptive_bytes() const { return adaptive_bytes_; }  // the part only prefill_adaptive needs
  int threads() const { return pool_.size(); }

  // The recurrent state (or the filled KV cache) and the last logits, as a versioned byte
  // buffer tied to this model: restoring it resumes generation exactly where it was saved.
  // Layout, little-endian: "T2RSTATE", u32 version 1, u32 0, u64 model file checksum,
  // i64 position, u64 payload bytes; then the payload, all f32: the last logits [V]; for linear
  // attention S [L, H, r, d_h] and z [L, H, r]; for softmax, per layer, the keys and then the
  // values of the filled positions [position, H_kv d_h].
  size_t state_size() const;
  void save_state(void* out, size_t size) const;
  // Throws t2r::Error, leaving the session as it was, for a state of another model or size, a
  // nonzero reserved field, a position beyond 2^53 or the KV cache, or a NaN or infinite float.
  void restore_state(const void* data, size_t size);

  const Model& model() const { return model_; }

  // Linear attention only (both throw t2r::Error for softmax models). Read-only; no allocation.
  StateMagnitude state_magnitude() const;
  HeadView last_layer_head(size_t head) const;  // valid after step(), until the next call

 private:
  void check_tokens(const int32_t* tokens, size_t n) const;
  void forward(const int32_t* tokens, size_t n);  // n <= chunk_
  // Embeds n tokens at positions_[0..n) into rows of x_.
  void embed(const int32_t* tokens, size_t n);
  // One layer over n tokens: rows of the residual stream x at positions (n <= chunk_).
  void layer_forward(size_t layer, float* x, const int64_t* positions, size_t n);
  void attention(size_t layer, const LayerWeights& w, const int64_t* positions, size_t n);
  void compute_logits(const float* x);  // from one row of the residual stream
  // Keeps `keep` of the n prompt tokens that entered `layer` for the next one: scores them
  // from the phi(k) and window phi(q) stored during the layer, and compacts x_ and positions_.
  void select_tokens(size_t layer, size_t n, size_t keep, const LengthConfig& config);
  // Y = X W^T (+ bias) for n tokens, rows split across the pool.
  void matmul(const cpu::Matrix& w, const float* x, size_t n, const float* bias, float* y);
  // f(begin, end) over the tokens [0, n), split across the pool when there are several.
  template <typename F>
  void for_tokens(size_t n, F f);
  size_t state_payload_bytes() const;
  // Calls visit(float* block, size_t bytes) for each part of the saved state, in order.
  template <typename Visit>
  void for_each_state_block(Visit visit) const;

  const Model& model_;
  ThreadPool pool_;
  size_t chunk_ = 1;
  int64_t max_context_ = -1;
  int64_t position_ = 0;
  size_t bytes_ = 0, adaptive_bytes_ = 0;
  size_t max_adaptive_prompt_ = 0;
  float* arena_ = nullptr;
  // Views into the arena; per-token buffers hold chunk_ rows, x_ and positions_
  // max(chunk_, max_adaptive_prompt_).
  float *x_, *xb_, *xb2_, *q_, *k_, *v_, *phi_q_, *phi_k_, *attn_out_, *hidden_, *hidden2_, *logits_;
  float *state_, *normalizer_;  // linear attention: [L, H, r, d_h] and [L, H, r]
  float *key_cache_, *value_cache_;  // softmax: [L, max_context, H_kv d_h] each
  float* scores_;                    // softmax: [threads, max_context]
  int64_t* positions_;               // of the rows of x_
  // Length-adaptive prefill: phi(k) [P, H r] of the tokens entering a layer, phi(q) of its last
  // kLengthWindow tokens, each token's significance [P] and candidate order [P], and [H r]
  // scratch for the window's summed normalized queries and the normalizer it rewinds.
  float *prompt_phi_k_, *window_phi_q_, *significance_, *query_sum_, *window_normalizer_;
  uint32_t* candidates_;
};

}  // namespace t2r
