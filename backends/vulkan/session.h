// A session on a Vulkan device: runtime/session.h's Session, computed by compute shaders.
// The weights are uploaded once; activations, the recurrent state (or KV cache) and the logits
// live on the device. A whole token is one command buffer, recorded when the session is created
// and replayed for every token: per step only the token id and position go up and only the
// logits come back. Stepping allocates nothing, on the host or the device.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "device.h"
#include "memory.h"
#include "model.h"
#include "program.h"
#include "weights.h"

namespace t2r::vulkan {

struct SessionOptions {
  // Softmax models only: the KV cache holds this many positions (0: the model's max_positions).
  int64_t max_context = 0;
  DeviceOptions device;
};

class Session {
 public:
  // Opens the device, uploads the model and records the token's command buffer; throws
  // t2r::Error when no suitable device exists or the model does not fit it.
  Session(const Model& model, const SessionOptions& options = {});
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // As t2r::Session: the logits (vocab_size floats) predicting the next token, valid until the
  // next call; throws t2r::Error for an id outside the vocabulary or a full KV cache.
  const float* step(int32_t token);
  const float* prefill(const int32_t* tokens, size_t count);
  const float* logits() const;
  void reset();

  int64_t position() const { return position_; }
  int64_t max_context() const { return max_context_; }  // -1: unbounded (linear attention)
  size_t bytes() const;  // device memory this session holds: weights, activations, state, transfer buffers

  const Model& model() const { return model_; }
  const Device& device() const { return *device_; }

 private:
  struct Activations;
  void plan(Activations& a);
  void record(const Activations& a);

  const Model& model_;
  int64_t max_context_ = -1;
  int64_t position_ = 0;
  std::unique_ptr<Device> device_;
  std::unique_ptr<Weights> weights_;
  Arena activations_, state_;
  Buffer input_;     // {token, position}, written by the host before each step
  Buffer readback_;  // the logits, copied back by each step
  std::unique_ptr<Program> step_, clear_;
};

}  // namespace t2r::vulkan
