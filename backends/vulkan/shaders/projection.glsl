// What matvec.comp and matmul.comp share: Y = epilogue(W norm(X) + bias) for a weight matrix in
// any dtype (WEIGHT_DTYPE, weights.glsl) and the columns of X [columns, cols] (the batch's rows,
// or with `outputs` set the rows that ask for logits), Y [columns, rows]. norm is none, layernorm or
// rmsnorm (NORM), computed per column by every workgroup as cpu::layer_norm / cpu::rms_norm do:
// fusing the norm saves a dispatch and a barrier.
layout(constant_id = 1) const uint EPILOGUE = 0;
const uint EPILOGUE_STORE = 0;   // y = W x + b
const uint EPILOGUE_RELU = 1;    // y = relu(W x + b)
const uint EPILOGUE_ADD = 2;     // y += W x + b (the residual connection)
const uint EPILOGUE_SWIGLU = 3;  // y = silu(W x) * (W1 x), W1 the second matrix
layout(constant_id = 2) const uint NORM = 0;
const uint NORM_LAYER = 1;  // (x - mean) / sqrt(var + eps) * weight + bias
const uint NORM_RMS = 2;    // weight * (x / sqrt(mean(x^2) + eps))

layout(push_constant) uniform Push {
  uint rows;
  uint cols;
  uint has_bias;
  uint quads;  // cols % 8 == 0: every row starts on 16 bytes, so f32/f16/bf16 load whole quads
  float norm_eps;
  uint outputs;  // the columns are the batch's outputs, not its rows
} p;

layout(binding = 1) readonly buffer X { float x[]; };
layout(binding = 2) buffer Y { float y[]; };
layout(binding = 3) readonly buffer Bias { float bias[]; };
layout(binding = 5) readonly buffer NormWeight { float norm_weight[]; };
layout(binding = 6) readonly buffer NormBias { float norm_bias[]; };

#define SECOND_MATRIX
#include "weights.glsl"
#include "batch.glsl"

// Columns this dispatch takes: the batch's rows or its outputs.
uint column_count() { return p.outputs != 0 ? batch.outputs : batch.rows; }
// Where column c starts in X.
uint column_at(uint c) { return (p.outputs != 0 ? output_row(c) : c) * p.cols; }

// The statistics for NORM of the column starting at `at`: (mean, 1 / deviation) for layernorm,
// (0, 1 / rms) for rmsnorm. All invocations of the workgroup call this (reduce.glsl).
vec2 norm_statistics(uint at) {
  const uint id = gl_LocalInvocationID.x, wg = gl_WorkGroupSize.x;
  vec2 s = vec2(0.0);
  if (NORM == NORM_LAYER) {
    float sum = 0.0;
    for (uint i = id; i < p.cols; i += wg) sum += x[at + i];
    s.x = workgroup_sum(sum) / float(p.cols);
    float squares = 0.0;
    for (uint i = id; i < p.cols; i += wg) squares += (x[at + i] - s.x) * (x[at + i] - s.x);
    s.y = 1.0 / sqrt(workgroup_sum(squares) / float(p.cols) + p.norm_eps);
  } else if (NORM == NORM_RMS) {
    float squares = 0.0;
    for (uint i = id; i < p.cols; i += wg) squares += x[at + i] * x[at + i];
    s.y = 1.0 / sqrt(workgroup_sum(squares) / float(p.cols) + p.norm_eps);
  }
  return s;
}

// Element i of the (normed) column starting at `at`, with its statistics s.
float normed_at(uint at, uint i, vec2 s) {
  precise float v;
  if (NORM == NORM_LAYER) {
    v = (x[at + i] - s.x) * s.y * norm_weight[i] + norm_bias[i];
  } else if (NORM == NORM_RMS) {
    v = norm_weight[i] * (x[at + i] * s.y);
  } else {
    v = x[at + i];
  }
  return v;
}

// Stores Y element `at` (of weight row `row`) from the row's sum (and the second matrix's, swiglu).
void store_output(uint at, uint row, float sum, float sum_up) {
  if (EPILOGUE == EPILOGUE_SWIGLU) {
    y[at] = sum / (1.0 + exp(-sum)) * sum_up;
  } else {
    precise float v = sum;
    if (p.has_bias != 0) v += bias[row];
    if (EPILOGUE == EPILOGUE_RELU) v = v > 0.0 ? v : 0.0;
    if (EPILOGUE == EPILOGUE_ADD) v += y[at];
    y[at] = v;
  }
}
