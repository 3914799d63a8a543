// A session on a Vulkan device: runtime/session.h's Session, as a thin layer over a vulkan::Context
// of one sequence (vulkan/context.h). The weights are uploaded once per device and model and shared
// with every other context of the model there; activations, the recurrent state (or KV cache) and
// the logits live on the device. Stepping allocates nothing, on the host or the device.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "context.h"
#include "device.h"
#include "model.h"

namespace t2r::vulkan {

struct SessionOptions {
  // Softmax models only: the KV cache holds this many positions (0: the model's max_positions).
  int64_t max_context = 0;
  int prefill_chunk = 64;  // prompt tokens run together as one batch
  // The most device memory the session may need (everything bytes() counts, the shared weights
  // included); 0: no limit. A larger plan is refused when the session is created.
  uint64_t memory_budget = 0;
  DeviceOptions device;
};

class Session {
 public:
  // Opens (or shares) the device and the uploaded model and records the context's program; throws
  // t2r::Error for bad options, when no suitable device exists, when the plan exceeds the memory
  // budget (stating the bytes needed) or when the model does not fit the device.
  Session(const Model& model, const SessionOptions& options = {});

  // As t2r::Session: the logits (vocab_size floats) predicting the next token, valid until the
  // next call; throws t2r::Error for an id outside the vocabulary or a full KV cache.
  const float* step(int32_t token);
  // Feeds a whole prompt, checked first, in chunks; gives exactly the logits of stepping through it.
  const float* prefill(const int32_t* tokens, size_t count);
  const float* logits() const { return context_.logits(0); }
  void reset();

  int64_t position() const { return context_.position(0); }
  int64_t max_context() const { return context_.max_context(); }  // -1: unbounded (linear attention)
  // Device memory this session needs: the model's weights (shared with the model's other contexts on
  // the device), activations, state, transfer buffers.
  size_t bytes() const { return context_.bytes() + context_.weight_bytes(); }

  // As t2r::Session's: the state and the last logits as version 1 of runtime/sequence_state.h,
  // byte for byte the CPU session's format, so a state saved on either backend restores on the other.
  size_t state_size() const;
  void save_state(void* out, size_t size) const;
  // Throws t2r::Error, leaving the session as it was, for a state of another model or size, a
  // damaged header, a position beyond 2^53 or the KV cache, or a NaN or infinite float.
  void restore_state(const void* data, size_t size);

  const Model& model() const { return context_.model(); }
  const Device& device() const { return context_.device(); }
  Context& context() { return context_; }

 private:
  Context context_;
  std::vector<BatchRow> rows_;  // one prompt chunk, sized when the session is created
};

}  // namespace t2r::vulkan
