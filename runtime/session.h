// A session: one sequence over a shared Model, as a thin layer over a Context of one sequence
// (runtime/context.h). Every buffer, the logits and the recurrent state (S and z per layer and head;
// a KV cache for softmax layers) are planned and allocated once, here, with the worker threads;
// feeding tokens allocates nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "context.h"
#include "length_config.h"
#include "model.h"

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

class Session {
 public:
  // Throws t2r::Error for bad options, and when the plan exceeds options.memory_budget (the
  // message states the bytes needed) or cannot be allocated.
  Session(const Model& model, SessionOptions options = {});

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

  int64_t position() const { return context_.position(0); }
  int64_t max_context() const { return context_.max_context(); }  // -1: unbounded (linear attention)
  size_t bytes() const { return context_.bytes(); }                // everything this session allocated
  size_t adaptive_bytes() const { return context_.adaptive_bytes(); }  // the part only prefill_adaptive needs
  int threads() const { return context_.threads(); }

  // The recurrent state (or the filled KV cache) and the last logits, as versioned bytes tied to
  // this model (version 1 of runtime/sequence_state.h): restoring it resumes generation exactly
  // where it was saved.
  size_t state_size() const;
  void save_state(void* out, size_t size) const;
  // Throws t2r::Error, leaving the session as it was, for a state of another model or size, a
  // nonzero reserved field, a position beyond 2^53 or the KV cache, or a NaN or infinite float.
  void restore_state(const void* data, size_t size);

  const Model& model() const { return context_.model(); }
  Context& context() { return context_; }

  // Linear attention only (both throw t2r::Error for softmax models). Read-only; no allocation.
  StateMagnitude state_magnitude() const { return context_.state_magnitude(0); }
  HeadView last_layer_head(size_t head) const { return context_.last_layer_head(0, head); }

 private:
  Context context_;
  std::vector<BatchRow> rows_;  // one prompt chunk, sized when the session is created
  float* logits_;               // the last logits: row 0 of the context's output
};

}  // namespace t2r
