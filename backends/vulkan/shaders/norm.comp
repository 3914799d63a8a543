#version 450
// cpu::layer_norm or cpu::rms_norm (NORM) of each batch row, or with `outputs` set of each row
// that asks for logits, into Y at the row's place: a workgroup per row. One pass before the
// projections that read a norm (q, k and v share one), so that no projection workgroup computes a
// row's statistics again, and every kernel reads the same normed values.
#include "common.glsl"
#include "reduce.glsl"

layout(constant_id = 1) const uint NORM = 1;
const uint NORM_LAYER = 1;  // (x - mean) / sqrt(var + eps) * weight + bias
const uint NORM_RMS = 2;    // weight * (x / sqrt(mean(x^2) + eps))

layout(push_constant) uniform Push {
  uint cols;
  float eps;
  uint outputs;  // the rows are the batch's outputs, not all its rows
} p;

layout(binding = 1) readonly buffer X { float x[]; };
layout(binding = 2) writeonly buffer Y { float y[]; };
layout(binding = 5) readonly buffer Weight { float weight[]; };
layout(binding = 6) readonly buffer Bias { float bias[]; };

#include "batch.glsl"

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
  for (uint i = id; i < p.cols; i += wg) {
    precise float v;
    if (NORM == NORM_LAYER) {
      v = (x[at + i] - mean) * inverse * weight[i] + bias[i];
    } else {
      v = weight[i] * (x[at + i] * inverse);
    }
    y[at + i] = v;
  }
}
