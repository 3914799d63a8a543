// Choosing the next token from logits: greedy, or temperature / top-k / top-p sampling with a
// repetition penalty. Buffers are allocated at construction; sampling allocates nothing.
// The same seed and the same logits give the same choices.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace t2r {

struct SamplerOptions {
  float temperature = 0.0f;         // 0: greedy (argmax)
  int32_t top_k = 0;                // 0: no limit
  float top_p = 1.0f;               // 1: no nucleus cut
  float repetition_penalty = 1.0f;  // > 1 discourages the last `penalty_window` tokens
  int32_t penalty_window = 64;
  uint64_t seed = 0;
};

class Sampler {
 public:
  // Throws t2r::Error for options out of range.
  Sampler(int32_t vocab_size, SamplerOptions options);

  // Picks a token from `logits` (not modified) and remembers it for the repetition penalty.
  int32_t sample(const float* logits);
  // Remembers a token the sampler did not pick (e.g. the prompt) for the repetition penalty.
  void accept(int32_t token);
  void reset();  // forgets history and restarts the random sequence

 private:
  float next_uniform();  // in [0, 1)

  int32_t vocab_size_;
  SamplerOptions options_;
  uint64_t rng_state_;
  std::vector<float> probs_;
  std::vector<int32_t> order_;
  std::vector<int32_t> history_;  // ring buffer of the last penalty_window tokens
  size_t history_count_ = 0, history_next_ = 0;
};

}  // namespace t2r
