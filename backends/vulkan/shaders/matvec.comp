#version 450
// Y = epilogue(W X + bias) (projection.glsl) for few columns at a time.
// A team of invocations (a subgroup, or 32 invocations reducing in shared memory) computes one
// weight row at a time, for up to COLUMNS columns at once: each weight is read once and multiplied
// by every column's activation in registers. Each column's sum is formed in the same order whatever
// the other columns are, so a batch row's results are bit for bit those of the row alone. A
// workgroup covers ROWS_PER_GROUP consecutive rows. For q8_0 and q4_0 weights each lane takes
// whole blocks of the columns in q8 (quantize.comp's pass, as the CPU quantizes them).
#extension GL_EXT_control_flow_attributes : require
#include "common.glsl"
#include "projection.glsl"

layout(constant_id = 2) const uint ROWS_PER_GROUP = 1;

// Columns a workgroup computes (each a sum per matrix, held in registers: the loops over them
// unroll); more columns take more workgroups. The host sets it to the dispatch's most columns, up
// to 8. Where the batch has fewer, the workgroup computes its last column again in their place and
// stores nothing for them: a CPU device (lavapipe) would run a branch around them anyway, masked.
layout(constant_id = 3) const uint COLUMNS = 8;
uint x_at[COLUMNS];  // where each column starts in X
uint column_of[COLUMNS];

// Element i of column c.
float xn(uint c, uint i) { return x[x_at[c] + i]; }

vec4 x4(uint c, uint i) { return vec4(xn(c, i), xn(c, i + 1), xn(c, i + 2), xn(c, i + 3)); }

#if WEIGHT_DTYPE <= 2
// Unit u of a row (8 weights: columns 8u..8u+7) dotted with each column, into sums[c].
void unit_dots(uint m, uint row, uint u, inout float sums[COLUMNS]) {
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
  [[unroll]] for (uint c = 0; c < COLUMNS; ++c) sums[c] += dot(a, x4(c, xi)) + dot(b, x4(c, xi + 4));
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
  [[unroll]] for (uint c = 0; c < COLUMNS; ++c) {
    sums[c] += dot(even, vec4(xn(c, xi), xn(c, xi + 2), xn(c, xi + 4), xn(c, xi + 6))) +
               dot(odd, vec4(xn(c, xi + 1), xn(c, xi + 3), xn(c, xi + 5), xn(c, xi + 7)));
  }
#endif
}
#else
// Block b of row `row` of matrix m (blocks per row) times each column's block b, into sums[c].
void block_products(uint m, uint row, uint blocks, uint b, inout float sums[COLUMNS]) {
  const WeightBlock w = weight_block(m, row * blocks + b);
  [[unroll]] for (uint c = 0; c < COLUMNS; ++c) {
    uint q[8];
    const float d = column_block(column_of[c], b, q);
    sums[c] += block_dot(w, q, d);
  }
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
  // Workgroup (g, chunk): rows g ROWS_PER_GROUP.. of columns chunk COLUMNS..; chunks past the
  // batch's columns return at once (the program is recorded for the most columns).
  const uint groups = (p.rows + ROWS_PER_GROUP - 1) / ROWS_PER_GROUP;
  const uint first = (group_index() % groups) * ROWS_PER_GROUP, c0 = (group_index() / groups) * COLUMNS;
  const uint columns = column_count();
  if (c0 >= columns) return;
  const uint n = min(COLUMNS, columns - c0);
#ifdef USE_SUBGROUPS
  const uint lane = gl_SubgroupInvocationID, lanes = gl_SubgroupSize, team = gl_SubgroupID, teams = gl_NumSubgroups;
#else
  const uint lane = gl_LocalInvocationID.x % LANES, lanes = LANES, team = gl_LocalInvocationID.x / LANES,
             teams = gl_WorkGroupSize.x / LANES;
#endif
  [[unroll]] for (uint c = 0; c < COLUMNS; ++c) {
    column_of[c] = c0 + min(c, n - 1);
    x_at[c] = column_at(column_of[c]);
  }
  // Every team runs the same number of iterations (team_sum needs all of them); teams past the
  // last row compute a row again.
  for (uint i0 = 0; i0 < ROWS_PER_GROUP; i0 += teams) {
    const uint i = i0 + team;
    const uint row = min(first + i, p.rows - 1);
    float acc[COLUMNS], acc_up[COLUMNS];
    [[unroll]] for (uint c = 0; c < COLUMNS; ++c) {
      acc[c] = 0.0;
      acc_up[c] = 0.0;
    }
#if WEIGHT_DTYPE <= 2
    const uint units = p.cols / 8;
    for (uint u = lane; u < units; u += lanes) {
      unit_dots(0, row, u, acc);
      if (EPILOGUE == EPILOGUE_SWIGLU) unit_dots(1, row, u, acc_up);
    }
    for (uint k = units * 8 + lane; k < p.cols; k += lanes) {
      const float w = weight_at(0, row, k, p.cols);
      const float w_up = EPILOGUE == EPILOGUE_SWIGLU ? weight_at(1, row, k, p.cols) : 0.0;
      [[unroll]] for (uint c = 0; c < COLUMNS; ++c) {
        acc[c] += w * xn(c, k);
        if (EPILOGUE == EPILOGUE_SWIGLU) acc_up[c] += w_up * xn(c, k);
      }
    }
#else
    const uint blocks = p.cols / 32;
    for (uint b = lane; b < blocks; b += lanes) {
      block_products(0, row, blocks, b, acc);
      if (EPILOGUE == EPILOGUE_SWIGLU) block_products(1, row, blocks, b, acc_up);
    }
#endif
    [[unroll]] for (uint c = 0; c < COLUMNS; ++c) {
      const float sum = team_sum(acc[c], team, lane);
      const float sum_up = EPILOGUE == EPILOGUE_SWIGLU ? team_sum(acc_up[c], team, lane) : 0.0;
      if (lane == 0 && c < n && i < ROWS_PER_GROUP && first + i < p.rows) {
        store_output((c0 + c) * p.rows + row, row, sum, sum_up);
      }
    }
  }
}
