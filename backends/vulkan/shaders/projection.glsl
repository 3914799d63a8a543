// What matvec.comp and matmul.comp share: Y = epilogue(W X + bias) for a weight matrix in any
// dtype (WEIGHT_DTYPE, weights.glsl) and the columns of X [columns, cols] (the batch's rows, or
// with `outputs` set the rows that ask for logits), Y [columns, rows]. A norm before the
// projection is norm.comp's pass; q8_0 and q4_0 weights read the columns in q8 blocks, as
// quantize.comp's pass wrote them.
layout(constant_id = 1) const uint EPILOGUE = 0;
const uint EPILOGUE_STORE = 0;   // y = W x + b
const uint EPILOGUE_RELU = 1;    // y = relu(W x + b)
const uint EPILOGUE_ADD = 2;     // y += W x + b (the residual connection)
const uint EPILOGUE_SWIGLU = 3;  // y = silu(W x) * (W1 x), W1 the second matrix

layout(push_constant) uniform Push {
  uint rows;
  uint cols;
  uint has_bias;
  uint quads;    // cols % 8 == 0: every row starts on 16 bytes, so f32/f16/bf16 load whole quads
  uint outputs;  // the columns are the batch's outputs, not its rows
} p;

layout(binding = 1) readonly buffer X { float x[]; };
layout(binding = 2) buffer Y { float y[]; };
layout(binding = 3) readonly buffer Bias { float bias[]; };

#define SECOND_MATRIX
#include "weights.glsl"
#include "batch.glsl"

#if WEIGHT_DTYPE > 2
layout(binding = 5) readonly buffer ColumnQuads { uvec4 column_quads[]; };
layout(binding = 6) readonly buffer ColumnScales { float column_scales[]; };

// Block b of column c in q8 (quantize.comp's layout): its words into q, its scale returned.
float column_block(uint c, uint b, out uint q[8]) {
  const uint i = c * (p.cols / 32) + b;
  const uvec4 low = column_quads[2 * i], high = column_quads[2 * i + 1];
  q = uint[8](low.x, low.y, low.z, low.w, high.x, high.y, high.z, high.w);
  return column_scales[i];
}
#endif

// Columns this dispatch takes: the batch's rows or its outputs.
uint column_count() { return p.outputs != 0 ? batch.outputs : batch.rows; }
// Where column c starts in X.
uint column_at(uint c) { return (p.outputs != 0 ? output_row(c) : c) * p.cols; }

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
