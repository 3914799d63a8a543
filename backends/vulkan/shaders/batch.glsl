// A decode's batch as the host wrote it (vulkan/batch_input.h), copied up before the program runs:
// the only data that changes between replays of a context's command buffers. The row count
// varies per decode while the program is recorded once, so kernels bound their loops by it.
layout(binding = 7) readonly buffer Batch {
  uint rows;        // rows of this decode
  uint runs;        // runs of consecutive rows of one sequence
  uint outputs;     // rows that ask for logits
  uint runs_at;     // the entry of run 0 (after max_batch rows)
  uint outputs_at;  // the entry of output 0 (after max_runs runs)
  uint unused_[3];
  // Row r: {token, position}; run i: {first row, rows, the offset in floats of its sequence's
  // block in the state binding}; output o: {row}.
  uvec4 entries[];
} batch;

uint row_token(uint r) { return batch.entries[r].x; }
uint row_position(uint r) { return batch.entries[r].y; }
uvec4 batch_run(uint i) { return batch.entries[batch.runs_at + i]; }
uint output_row(uint o) { return batch.entries[batch.outputs_at + o].x; }
