#version 450
// y = epilogue(W norm(x) + bias) for a weight matrix in any dtype (WEIGHT_DTYPE, weights.glsl),
// where norm is none, layernorm or rmsnorm (NORM), computed by every workgroup as
// cpu::layer_norm / cpu::rms_norm do: fusing the norm saves a dispatch and a barrier.
// A team of invocations (a subgroup, or 32 invocations reducing in shared memory) computes one
// row at a time; a workgroup covers ROWS_PER_GROUP consecutive rows.
#include "common.glsl"
#include "reduce.glsl"

layout(constant_id = 1) const uint ROWS_PER_GROUP = 1;
layout(constant_id = 2) const uint EPILOGUE = 0;
const uint EPILOGUE_STORE = 0;   // y = W x + b
const uint EPILOGUE_RELU = 1;    // y = relu(W x + b)
const uint EPILOGUE_ADD = 2;     // y += W x + b (the residual connection)
const uint EPILOGUE_SWIGLU = 3;  // y = silu(W x) * (W1 x), W1 the second matrix
layout(constant_id = 3) const uint NORM = 0;
const uint NORM_LAYER = 1;  // (x - mean) / sqrt(var + eps) * weight + bias
const uint NORM_RMS = 2;    // weight * (x / sqrt(mean(x^2) + eps))

layout(push_constant) uniform Push {
  uint rows;
  uint cols;
  uint has_bias;
  uint quads;  // cols % 8 == 0: every row starts on 16 bytes, so f32/f16/bf16 load whole quads
  float norm_eps;
} p;

layout(binding = 1) readonly buffer X { float x[]; };
layout(binding = 2) buffer Y { float y[]; };
layout(binding = 3) readonly buffer Bias { float bias[]; };
layout(binding = 5) readonly buffer NormWeight { float norm_weight[]; };
layout(binding = 6) readonly buffer NormBias { float norm_bias[]; };

#define SECOND_MATRIX
#include "weights.glsl"

float norm_mean = 0.0, norm_inv = 1.0;

// The statistics of x for NORM; all invocations of the workgroup call this.
void norm_statistics() {
  const uint id = gl_LocalInvocationID.x, wg = gl_WorkGroupSize.x;
  if (NORM == NORM_LAYER) {
    float sum = 0.0;
    for (uint i = id; i < p.cols; i += wg) sum += x[i];
    norm_mean = workgroup_sum(sum) / float(p.cols);
    float squares = 0.0;
    for (uint i = id; i < p.cols; i += wg) squares += (x[i] - norm_mean) * (x[i] - norm_mean);
    norm_inv = 1.0 / sqrt(workgroup_sum(squares) / float(p.cols) + p.norm_eps);
  } else if (NORM == NORM_RMS) {
    float squares = 0.0;
    for (uint i = id; i < p.cols; i += wg) squares += x[i] * x[i];
    norm_inv = 1.0 / sqrt(workgroup_sum(squares) / float(p.cols) + p.norm_eps);
  }
}

// Element i of the (normed) input.
float xn(uint i) {
  precise float v;
  if (NORM == NORM_LAYER) {
    v = (x[i] - norm_mean) * norm_inv * norm_weight[i] + norm_bias[i];
  } else if (NORM == NORM_RMS) {
    v = norm_weight[i] * (x[i] * norm_inv);
  } else {
    v = x[i];
  }
  return v;
}

vec4 x4(uint i) { return vec4(xn(i), xn(i + 1), xn(i + 2), xn(i + 3)); }

// Unit u of a row: 8 weights (columns 8u..8u+7; for the block types, 8 weights of block u / 4)
// dotted with x.
float unit_dot(uint m, uint row, uint u) {
#if WEIGHT_DTYPE <= 2
  const uint e = row * p.cols + u * 8;
  const uint xi = u * 8;
#if WEIGHT_DTYPE == 0
  vec4 a, b;
  if (p.quads != 0) {
    a = uintBitsToFloat(weight_quad(m, e >> 2));
    b = uintBitsToFloat(weight_quad(m, (e >> 2) + 1));
  } else {
    a = uintBitsToFloat(uvec4(weight_word(m, e), weight_word(m, e + 1), weight_word(m, e + 2), weight_word(m, e + 3)));
    b = uintBitsToFloat(uvec4(weight_word(m, e + 4), weight_word(m, e + 5), weight_word(m, e + 6), weight_word(m, e + 7)));
  }
  return dot(a, x4(xi)) + dot(b, x4(xi + 4));
#else
  uvec4 w;
  if (p.quads != 0) {
    w = weight_quad(m, e >> 3);
  } else {
    w = uvec4(weight_bits_at(m, e * 2), weight_bits_at(m, e * 2 + 4), weight_bits_at(m, e * 2 + 8),
              weight_bits_at(m, e * 2 + 12));
  }
#if WEIGHT_DTYPE == 1
  const vec4 even = vec4(unpackHalf2x16(w.x).x, unpackHalf2x16(w.y).x, unpackHalf2x16(w.z).x, unpackHalf2x16(w.w).x);
  const vec4 odd = vec4(unpackHalf2x16(w.x).y, unpackHalf2x16(w.y).y, unpackHalf2x16(w.z).y, unpackHalf2x16(w.w).y);
#else
  const vec4 even = uintBitsToFloat(w << 16);
  const vec4 odd = uintBitsToFloat(w & 0xffff0000u);
#endif
  return dot(even, vec4(xn(xi), xn(xi + 2), xn(xi + 4), xn(xi + 6))) + dot(odd, vec4(xn(xi + 1), xn(xi + 3), xn(xi + 5), xn(xi + 7)));
#endif
#else
  const uint block = row * (p.cols / 32) + u / 4, part = u % 4;
  const uint xi = (u / 4) * 32 + part * 8;
#if WEIGHT_DTYPE == 3
  const uint b = block * 34;
  const uint lo = weight_bits_at(m, b + 2 + part * 8), hi = weight_bits_at(m, b + 6 + part * 8);
  const vec4 q0 = vec4(bitfieldExtract(int(lo), 0, 8), bitfieldExtract(int(lo), 8, 8), bitfieldExtract(int(lo), 16, 8),
                       bitfieldExtract(int(lo), 24, 8));
  const vec4 q1 = vec4(bitfieldExtract(int(hi), 0, 8), bitfieldExtract(int(hi), 8, 8), bitfieldExtract(int(hi), 16, 8),
                       bitfieldExtract(int(hi), 24, 8));
  return block_scale(m, b) * (dot(q0, x4(xi)) + dot(q1, x4(xi + 4)));
#else
  // Bytes 4 part .. 4 part + 3 of the block: elements 4 part + k (low nibbles) and 16 + 4 part + k (high).
  const uint b = block * 18;
  const uint n = weight_bits_at(m, b + 2 + part * 4);
  const vec4 low = vec4(uvec4(n, n >> 8, n >> 16, n >> 24) & 15u) - 8.0;
  const vec4 high = vec4(uvec4(n >> 4, n >> 12, n >> 20, n >> 28) & 15u) - 8.0;
  const uint xq = (u / 4) * 32 + part * 4;
  return block_scale(m, b) * (dot(low, x4(xq)) + dot(high, x4(xq + 16)));
#endif
#endif
}

#ifdef USE_SUBGROUPS
float team_sum(float v, uint team, uint lane) { return subgroupAdd(v); }
#else
const uint LANES = 32;
shared float team_scratch[gl_WorkGroupSize.x];
// Every invocation of the workgroup must call this the same number of times.
float team_sum(float v, uint team, uint lane) {
  const uint base = team * LANES;
  barrier();
  team_scratch[base + lane] = v;
  barrier();
  for (uint s = LANES / 2; s > 0; s >>= 1) {
    if (lane < s) team_scratch[base + lane] += team_scratch[base + lane + s];
    barrier();
  }
  return team_scratch[base];
}
#endif

void main() {
  const uint first = group_index() * ROWS_PER_GROUP;
  if (first >= p.rows) return;
  if (NORM != 0) norm_statistics();
#ifdef USE_SUBGROUPS
  const uint lane = gl_SubgroupInvocationID, lanes = gl_SubgroupSize, team = gl_SubgroupID, teams = gl_NumSubgroups;
#else
  const uint lane = gl_LocalInvocationID.x % LANES, lanes = LANES, team = gl_LocalInvocationID.x / LANES,
             teams = gl_WorkGroupSize.x / LANES;
#endif
  const uint units = p.cols / 8;
  for (uint i = team; i < ROWS_PER_GROUP; i += teams) {
    // Teams past the last row still reduce (the shared-memory variant needs all of them).
    const uint row = min(first + i, p.rows - 1);
    float acc = 0.0, acc_up = 0.0;
    for (uint u = lane; u < units; u += lanes) {
      acc += unit_dot(0, row, u);
      if (EPILOGUE == EPILOGUE_SWIGLU) acc_up += unit_dot(1, row, u);
    }
#if WEIGHT_DTYPE <= 2
    for (uint c = units * 8 + lane; c < p.cols; c += lanes) {
      acc += weight_at(0, row, c, p.cols) * xn(c);
      if (EPILOGUE == EPILOGUE_SWIGLU) acc_up += weight_at(1, row, c, p.cols) * xn(c);
    }
#endif
    acc = team_sum(acc, team, lane);
    if (EPILOGUE == EPILOGUE_SWIGLU) acc_up = team_sum(acc_up, team, lane);
    if (lane == 0 && first + i < p.rows) {
      if (EPILOGUE == EPILOGUE_SWIGLU) {
        y[row] = acc / (1.0 + exp(-acc)) * acc_up;
      } else {
        precise float v = acc;
        if (p.has_bias != 0) v += bias[row];
        if (EPILOGUE == EPILOGUE_RELU) v = v > 0.0 ? v : 0.0;
        if (EPILOGUE == EPILOGUE_ADD) v += y[row];
        y[row] = v;
      }
    }
  }
}
