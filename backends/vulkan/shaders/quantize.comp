#version 450
// Each batch row of X [rows, cols] (with `outputs` set, each row that asks for logits, the o-th
// of them as column o) in q8 blocks, as cpu::reference::quantize_activations: block b of column
// c at quads 2 (c blocks + b) and the next, its scale at scales[c blocks + b]. An invocation per
// block. One pass before the projections of q8_0 and q4_0 weights that read an input (q, k and v
// share one), so that no projection workgroup quantizes it again.
#include "common.glsl"
#include "quantize.glsl"

layout(push_constant) uniform Push {
  uint cols;     // a multiple of 32
  uint outputs;  // the columns are the batch's outputs, not its rows
} p;

layout(binding = 1) readonly buffer X { float x[]; };
layout(binding = 5) writeonly buffer Quads { uvec4 quads[]; };
layout(binding = 6) writeonly buffer Scales { float scales[]; };

#include "batch.glsl"

void main() {
  const uint blocks = p.cols / 32, i = global_index(), c = i / blocks, b = i % blocks;
  if (c >= (p.outputs != 0 ? batch.outputs : batch.rows)) return;  // columns the batch does not have
  const uint at = (p.outputs != 0 ? output_row(c) : c) * p.cols + b * 32;
  float v[32];
  for (uint j = 0; j < 32; ++j) v[j] = x[at + j];
  uint q[8];
  scales[i] = quantize_block(v, q);
  quads[2 * i] = uvec4(q[0], q[1], q[2], q[3]);
  quads[2 * i + 1] = uvec4(q[4], q[5], q[6], q[7]);
}
