// A session: one running sequence over a shared Model. Every activation buffer, the logits and
// the recurrent state (S and z per layer and head; a KV cache for softmax models) are planned
// and allocated once, here, with the worker threads; feeding tokens allocates nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "model.h"
#include "thread_pool.h"

namespace t2r {

struct SessionOptions {
  // Softmax models only: the KV cache holds this many positions (0: the model's max_positions).
  int64_t max_context = 0;
  int threads = 0;         // 0: one per physical core
  int prefill_chunk = 64;  // prompt tokens processed together (matrix-matrix kernels)
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
  const float* logits() const { return logits_; }
  void reset();  // back to the empty sequence

  int64_t position() const { return position_; }
  int64_t max_context() const { return max_context_; }  // -1: unbounded (linear attention)
  size_t bytes() const { return bytes_; }              // everything this session allocated
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
  void attention(size_t layer, const LayerWeights& w, size_t n);
  // Y = X W^T (+ bias) for n tokens, rows split across the pool.
  void matmul(const cpu::Matrix& w, const float* x, size_t n, const float* bias, float* y);
  size_t state_payload_bytes() const;
  // Calls visit(float* block, size_t bytes) for each part of the saved state, in order.
  template <typename Visit>
  void for_each_state_block(Visit visit) const;

  const Model& model_;
  ThreadPool pool_;
  size_t chunk_ = 1;
  int64_t max_context_ = -1;
  int64_t position_ = 0;
  size_t bytes_ = 0;
  float* arena_ = nullptr;
  // Views into the arena; per-token buffers hold chunk_ rows.
  float *x_, *xb_, *xb2_, *q_, *k_, *v_, *phi_q_, *phi_k_, *attn_out_, *hidden_, *hidden2_, *logits_;
  float *state_, *normalizer_;  // linear attention: [L, H, r, d_h] and [L, H, r]
  float *key_cache_, *value_cache_;  // softmax: [L, max_context, H_kv d_h] each
  float* scores_;                    // softmax: [threads, max_context]
};

}  // namespace t2r
