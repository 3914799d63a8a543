// A decode's batch as the shaders read it (shaders/batch.glsl): a header (rows, runs, outputs and
// where the runs and outputs start), then one 16-byte entry per row (token, position), per run of
// consecutive rows of one sequence (first row, rows, the offset of its sequence's state block) and
// per row that asks for logits. The context writes it into an upload buffer before each decode; its
// size is fixed by the context's limits, so decoding allocates nothing.
#pragma once

#include <cstddef>
#include <cstdint>

#include "batch.h"

namespace t2r::vulkan {

struct BatchInputLimits {
  size_t max_rows = 1, max_runs = 1, max_outputs = 1;
};

// Bytes of the batch input for those limits.
size_t batch_input_bytes(const BatchInputLimits& limits);

// Writes `count` checked rows (at most max_rows, the rows of a sequence consecutive, at most
// max_runs sequences and max_outputs logits) to `out`; sequence s's block starts at s *
// sequence_floats floats of the state binding. Returns the number of rows that ask for logits.
size_t write_batch_input(void* out, const BatchInputLimits& limits, const BatchRow* rows, size_t count,
                         size_t sequence_floats);

}  // namespace t2r::vulkan
