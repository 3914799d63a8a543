#version 450
// Row r of x [rows, cols] = scale * row `token` of the embedding table (any dtype, weights.glsl),
// plus fairseq's sinusoidal position (x[i] += sin(p f_i), x[half + i] += cos(p f_i), p = position
// + offset) when `sinusoidal` is set, for every row r of the batch. One invocation per element,
// looping over the rows.
#include "common.glsl"

layout(push_constant) uniform Push {
  uint cols;
  float scale;
  uint sinusoidal;
  uint position_offset;
} p;

layout(binding = 1) writeonly buffer Out { float x[]; };
layout(binding = 2) readonly buffer Freq { float freq[]; };
#include "batch.glsl"
#include "weights.glsl"
#include "trig.glsl"

void main() {
  const uint i = global_index();
  if (i >= p.cols) return;
  for (uint r = 0; r < batch.rows; ++r) {
    precise float v = weight_at(0, row_token(r), i, p.cols) * p.scale;
    if (p.sinusoidal != 0) {
      const uint halfway = p.cols / 2;
      const float angle = float(row_position(r) + p.position_offset) * freq[i % halfway];
      const vec2 sc = sin_cos(angle);
      v += i < halfway ? sc.x : sc.y;
    }
    x[r * p.cols + i] = v;
  }
}
