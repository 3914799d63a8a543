#version 450
// cpu::layer_norm or cpu::rms_norm (NORM) of each batch row, or with `outputs` set of each row
// that asks for logits, into Y at the row's place: a workgroup per row. One pass before the
// projections that read a norm (q, k and v share one), so that no projection workgroup computes a
// row's statistics again, and every kernel reads the same normed values. With QUANTIZE it also
// writes them in q8 blocks, as quantize.comp would (for the projections of q8_0 and q4_0 weights),
// saving that pass's dependent step.
#include "common.glsl"
#include "reduce.glsl"
#include "quantize.glsl"

layout(constant_id = 1) const uint NORM = 1;
const uint NORM_LAYER = 1;  // (x - mean) / sqrt(var + eps) * weight + bias
const uint NORM_RMS = 2;    // weight * (x / sqrt(mean(x^2) + eps))
layout(constant_id = 2) const uint QUANTIZE = 0;

layout(push_constant) uniform Push {
  uint cols;
  float eps;
  uint outputs;  // the rows are the batch's outputs, not all its rows
} p;

layout(binding = 1) readonly buffer X { float x[]; };
layout(binding = 2) writeonly buffer Y { float y[]; };
layout(binding = 5) readonly buffer Weight { float weight[]; };
layout(binding = 6) readonly buffer Bias { float bias[]; };
layout(binding = 3) writeonly buffer Quads { uvec4 quads[]; };    // QUANTIZE: quantize.comp's layout
layout(binding = 4) writeonly buffer Scales { float scales[]; };

#include "batch.glsl"

float normed(uint at, uint i, float mean, float inverse) {
  precise float v;
  if (NORM == NORM_LAYER) {
    v = (x[at + i] - mean) * inverse * weight[i] + bias[i];
  } else {
    v = weight[i] * (x[at + i] * inverse);
  }
  return v;
}

void main() {
  const uint c = group_index();
  if (c >= (p.outputs != 0 ? batch.outputs : batch.rows)) return;  // rows the batch does not have
  const uint at = (p.outputs != 0 ? output_row(c) : c) * p.cols;
  const uint id = gl_LocalInvocationID.x, wg = gl_WorkGroupSize.x;
  float mean = 0.0;
  if (NORM == NORM_LAYER) {
    float sum = 0.0;
    for (uint i = id; i < p.cols; i += wg) sum += x[at + i];
    mean = workgroup_sum(sum) / float(p.cols);
  }
  float squares = 0.0;
  for (uint i = id; i < p.cols; i += wg) squares += (x[at + i] - mean) * (x[at + i] - mean);
  const float inverse = 1.0 / sqrt(workgroup_sum(squares) / float(p.cols) + p.eps);
  if (QUANTIZE == 0) {
    for (uint i = id; i < p.cols; i += wg) y[at + i] = normed(at, i, mean, inverse);
    return;
  }
  // An invocation per block (cols is a multiple of 32): its values normed, stored and quantized.
  const uint blocks = p.cols / 32;
  for (uint b = id; b < blocks; b += wg) {
    float v[32];
    for (uint j = 0; j < 32; ++j) {
      v[j] = normed(at, b * 32 + j, mean, inverse);
      y[at + b * 32 + j] = v[j];
    }
    uint q[8];
    const uint o = c * blocks + b;
    scales[o] = quantize_block(v, q);
    quads[2 * o] = uvec4(q[0], q[1], q[2], q[3]);
    quads[2 * o + 1] = uvec4(q[4], q[5], q[6], q[7]);
  }
}
