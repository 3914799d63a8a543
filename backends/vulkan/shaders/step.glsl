// A row's input, copied up before the row's section runs: the only data that changes between
// replays of a context's command buffers.
layout(binding = 7) readonly buffer Step {
  uint token;
  uint position;
  uint state;  // floats from the start of the state binding to the row's sequence's block
} step;
