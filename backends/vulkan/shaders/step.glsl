// The per-token input, copied up before each step: the only data that changes between replays
// of a session's command buffer.
layout(binding = 7) readonly buffer Step {
  uint token;
  uint position;
} step;
