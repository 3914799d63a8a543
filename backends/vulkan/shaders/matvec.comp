#version 450
// y = epilogue(W norm(x) + bias) for a weight matrix in any dtype (WEIGHT_DTYPE, weights.glsl),
// where norm is none, layernorm or rmsnorm (NORM), computed by every workgroup as
// cpu::layer_norm / cpu::rms_norm do: fusing the norm saves a dispatch and a barrier.
// A team of invocations (a subgroup, or 32 invocations reducing in shared memory) computes one
// row at a time; a workgroup covers ROWS_PER_GROUP consecutive rows. For q8_0 and q4_0 weights the
// workgroup quantizes the (normed) input to q8 blocks, as the CPU does, and each lane takes whole
// blocks (weights.glsl).
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

#if WEIGHT_DTYPE <= 2
// Unit u of a row: 8 weights (columns 8u..8u+7) dotted with x.
float unit_dot(uint m, uint row, uint u) {
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
}
#else
// The (normed) input in q8 (weights.glsl), CHUNK_BLOCKS blocks at a time, so that any width fits
// in the 16 KiB of shared memory every device has; word k of block b at k * CHUNK_BLOCKS + b, so
// that a team's lanes (a block each) read consecutive words.
const uint CHUNK_BLOCKS = 128;
shared uint chunk_q[8 * CHUNK_BLOCKS];
shared float chunk_d[CHUNK_BLOCKS];

// Quantizes blocks first .. first + count - 1 of the input; all invocations of the workgroup call this.
void quantize_chunk(uint first, uint count) {
  barrier();  // the previous chunk may still be being read
  for (uint b = gl_LocalInvocationID.x; b < count; b += gl_WorkGroupSize.x) {
    float v[32];
    for (uint j = 0; j < 32; ++j) v[j] = xn((first + b) * 32 + j);
    uint q[8];
    chunk_d[b] = quantize_block(v, q);
    for (uint k = 0; k < 8; ++k) chunk_q[k * CHUNK_BLOCKS + b] = q[k];
  }
  barrier();
}

// Block b of the chunk in row `row` of matrix m (blocks per row) times the quantized input.
float chunk_product(uint m, uint row, uint blocks, uint first, uint b) {
  uint q[8];
  for (uint k = 0; k < 8; ++k) q[k] = chunk_q[k * CHUNK_BLOCKS + b];
  return block_product(m, row * blocks + first + b, q, chunk_d[b]);
}
#endif

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
  // Every team runs the same number of iterations (quantize_chunk and team_sum need all of them);
  // teams past the last row compute a row again.
  for (uint i0 = 0; i0 < ROWS_PER_GROUP; i0 += teams) {
    const uint i = i0 + team;
    const uint row = min(first + i, p.rows - 1);
    float acc = 0.0, acc_up = 0.0;
#if WEIGHT_DTYPE <= 2
    const uint units = p.cols / 8;
    for (uint u = lane; u < units; u += lanes) {
      acc += unit_dot(0, row, u);
      if (EPILOGUE == EPILOGUE_SWIGLU) acc_up += unit_dot(1, row, u);
    }
    for (uint c = units * 8 + lane; c < p.cols; c += lanes) {
      acc += weight_at(0, row, c, p.cols) * xn(c);
      if (EPILOGUE == EPILOGUE_SWIGLU) acc_up += weight_at(1, row, c, p.cols) * xn(c);
    }
#else
    const uint blocks = p.cols / 32;
    for (uint first_block = 0; first_block < blocks; first_block += CHUNK_BLOCKS) {
      const uint count = min(CHUNK_BLOCKS, blocks - first_block);
      quantize_chunk(first_block, count);
      for (uint b = lane; b < count; b += lanes) {
        acc += chunk_product(0, row, blocks, first_block, b);
        if (EPILOGUE == EPILOGUE_SWIGLU) acc_up += chunk_product(1, row, blocks, first_block, b);
      }
    }
#endif
    acc = team_sum(acc, team, lane);
    if (EPILOGUE == EPILOGUE_SWIGLU) acc_up = team_sum(acc_up, team, lane);
    if (lane == 0 && i < ROWS_PER_GROUP && first + i < p.rows) {
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
