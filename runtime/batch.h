// Batches for a context, on any backend (runtime/context.h on the CPU, vulkan/context.h on a GPU):
// the row, a context's limits, and the checks of both, so that every backend refuses the same
// options, batches and prompts with the same messages.
#pragma once

#include <cstddef>
#include <cstdint>

#include "hyperparams.h"

namespace t2r {

struct BatchRow {
  int32_t token = 0;
  int32_t sequence = 0;
  int64_t position = 0;  // must be the sequence's next position
  bool logits = false;   // whether this row's logits are wanted
};

// What a context holds and takes, from its options with the defaults resolved.
struct ContextLimits {
  int max_sequences = 1;
  size_t max_batch = 1;     // rows one decode() takes
  size_t max_outputs = 1;   // rows of one decode() that ask for logits
  int64_t max_context = 0;  // positions of each softmax layer's cache; 0 when every layer is linear
};

// Checks a context's options (max_outputs 0: min(max_sequences, max_batch); max_context 0: the
// model's max_positions) and throws t2r::Error naming the option and what it may be. The KV cache
// size is checked in double, so that a hostile max_positions cannot wrap it.
ContextLimits check_context_limits(const Hyperparams& hp, int max_sequences, int max_batch, int max_outputs,
                                   int64_t max_context);

// Returns `sequence`, or throws t2r::Error when it is outside [0, max_sequences).
int check_sequence(int sequence, int max_sequences);

// Throws t2r::Error when a batch of `count` rows is more than max_batch.
void check_batch_size(size_t count, size_t max_batch);

// Checks a batch for a context whose sequence s continues at next_positions[s]: at most max_batch
// rows and max_outputs logits, ids in the vocabulary, known sequences, the rows of a sequence
// consecutive and continuing it, positions below kMaxPosition and within the KV cache. Throws
// t2r::Error for the first bad row.
void check_batch(const Hyperparams& hp, const ContextLimits& limits, const int64_t* next_positions,
                 const BatchRow* rows, size_t count);

// Feeds a prompt to sequence 0 of a context (a Session's, on any backend) in batches of
// rows.size() rows, the logits of each batch's last row asked for; returns the last logits, or
// nullptr when count is 0. The caller has checked the prompt (check_prompt).
template <typename AnyContext>
const float* feed_prompt(AnyContext& context, BatchRow* rows, size_t chunk, const int32_t* tokens, size_t count) {
  const float* logits = nullptr;
  for (size_t done = 0; done < count; done += chunk) {
    const size_t n = count - done < chunk ? count - done : chunk;
    const int64_t start = context.position(0);
    for (size_t i = 0; i < n; ++i) rows[i] = BatchRow{tokens[done + i], 0, start + int64_t(i), i + 1 == n};
    logits = context.decode(rows, n);
  }
  return logits;
}

// Checks a prompt a session is about to feed from `position` (every token before the first chunk
// runs, so a bad id changes nothing); max_context -1: unbounded.
void check_prompt(const Hyperparams& hp, const int32_t* tokens, size_t count, int64_t position, int64_t max_context);

}  // namespace t2r
