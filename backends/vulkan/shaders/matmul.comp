#version 450
// Y = epilogue(W X + bias) (projection.glsl) for many columns at once (a prompt chunk): a
// workgroup computes a tile of TILE weight rows by TILE columns. Per step of 32 elements of the rows
// (one q8 block) it stages the tile's weights and activations in shared memory, and each of
// its SPAN x SPAN invocations accumulates a BLOCK x BLOCK block of outputs from them in registers:
// each weight is read from memory once per TILE columns, each activation once per TILE rows. For
// q8_0 and q4_0 weights a step is one block of each row and column: the columns in q8 as
// quantize.comp's pass wrote them, block products summed in block order as the CPU's matmul_blocks
// does. A sum runs over the steps in order, not in the matvec's lane order, so a column's results
// agree with the column alone (matvec) to rounding, not bit for bit.
#extension GL_EXT_control_flow_attributes : require
#include "common.glsl"
#include "projection.glsl"

const uint TILE = 32;            // weight rows and columns of a workgroup's tile
const uint STEP = 32;            // elements of a row staged at once: one q8 block
const uint BLOCK = 4;            // rows and columns of an invocation's outputs
const uint SPAN = TILE / BLOCK;  // invocation (i, j) takes rows i, i + SPAN, ... and columns j, j + SPAN, ...
// The workgroup is SPAN * SPAN = 64 invocations (the host sets it).

#if WEIGHT_DTYPE <= 2
shared float tile_w[2][STEP * TILE];  // [matrix][k * TILE + row]: the step's weights (matrix 1: swiglu's)
shared float tile_x[STEP * TILE];     // [k * TILE + column]: the step's activations
#else
shared uint tile_wq[2][8 * TILE];  // [matrix][word * TILE + row]: the step's weight blocks
shared float tile_wd[2][TILE];
shared uint tile_xq[8 * TILE];     // [word * TILE + column]: the step's activation blocks in q8
shared float tile_xd[TILE];
#endif

#if WEIGHT_DTYPE > 2
// Weight block `block` of matrix m into slot t of the tile.
void stage_block(uint m, uint block, uint t) {
  const WeightBlock w = weight_block(m, block);
  tile_wd[m][t] = w.scale;
  for (uint k = 0; k < 8; ++k) tile_wq[m][k * TILE + t] = w.words[k];
}

WeightBlock staged_block(uint m, uint t) {
  WeightBlock w;
  w.scale = tile_wd[m][t];
  for (uint k = 0; k < 8; ++k) w.words[k] = tile_wq[m][k * TILE + t];
  return w;
}
#endif

void main() {
  // Workgroup (row tile, column tile); column tiles past the batch's columns return at once (the
  // program is recorded for the most columns).
  const uint row_tiles = (p.rows + TILE - 1) / TILE;
  const uint r0 = (group_index() % row_tiles) * TILE, c0 = (group_index() / row_tiles) * TILE;
  const uint columns = column_count();
  if (c0 >= columns) return;
  const uint id = gl_LocalInvocationID.x, ti = id % SPAN, tj = id / SPAN;

  float acc[BLOCK][BLOCK], acc_up[BLOCK][BLOCK];
  [[unroll]] for (uint i = 0; i < BLOCK; ++i) {
    [[unroll]] for (uint j = 0; j < BLOCK; ++j) {
      acc[i][j] = 0.0;
      acc_up[i][j] = 0.0;
    }
  }
  for (uint k0 = 0; k0 < p.cols; k0 += STEP) {
#if WEIGHT_DTYPE <= 2
    // Consecutive invocations take consecutive elements of a row; elements past the rows' end,
    // rows past the matrix's and absent columns are zeros, which add nothing.
    for (uint t = id; t < STEP * TILE; t += gl_WorkGroupSize.x) {
      const uint k = t % STEP, r = t / STEP, col = k0 + k, row = r0 + r, c = c0 + r;
      const bool in_row = col < p.cols;
      tile_w[0][k * TILE + r] = in_row && row < p.rows ? weight_at(0, row, col, p.cols) : 0.0;
      if (EPILOGUE == EPILOGUE_SWIGLU) tile_w[1][k * TILE + r] = in_row && row < p.rows ? weight_at(1, row, col, p.cols) : 0.0;
      tile_x[k * TILE + r] = in_row && c < columns ? x[column_at(c) + col] : 0.0;
    }
    barrier();
    // The step's products are summed as the matvec sums a row: per 8 elements two dot products of
    // 4, added; the step's sum is then added to the total. Sums in small blocks round far less
    // than one running sum over a whole row.
    float step[BLOCK][BLOCK], step_up[BLOCK][BLOCK];
    [[unroll]] for (uint i = 0; i < BLOCK; ++i) {
      [[unroll]] for (uint j = 0; j < BLOCK; ++j) {
        step[i][j] = 0.0;
        step_up[i][j] = 0.0;
      }
    }
    [[unroll]] for (uint k = 0; k < STEP; k += 8) {
      vec4 w[BLOCK][2], w_up[BLOCK][2], xk[BLOCK][2];
      [[unroll]] for (uint i = 0; i < BLOCK; ++i) {
        [[unroll]] for (uint h = 0; h < 2; ++h) {
          const uint e = (k + 4 * h) * TILE;
          const uint r = ti + SPAN * i, c = tj + SPAN * i;
          w[i][h] = vec4(tile_w[0][e + r], tile_w[0][e + TILE + r], tile_w[0][e + 2 * TILE + r], tile_w[0][e + 3 * TILE + r]);
          w_up[i][h] = EPILOGUE == EPILOGUE_SWIGLU ? vec4(tile_w[1][e + r], tile_w[1][e + TILE + r], tile_w[1][e + 2 * TILE + r],
                                                          tile_w[1][e + 3 * TILE + r])
                                                   : vec4(0.0);
          xk[i][h] = vec4(tile_x[e + c], tile_x[e + TILE + c], tile_x[e + 2 * TILE + c], tile_x[e + 3 * TILE + c]);
        }
      }
      [[unroll]] for (uint i = 0; i < BLOCK; ++i) {
        [[unroll]] for (uint j = 0; j < BLOCK; ++j) {
          step[i][j] += dot(w[i][0], xk[j][0]) + dot(w[i][1], xk[j][1]);
          if (EPILOGUE == EPILOGUE_SWIGLU) step_up[i][j] += dot(w_up[i][0], xk[j][0]) + dot(w_up[i][1], xk[j][1]);
        }
      }
    }
    [[unroll]] for (uint i = 0; i < BLOCK; ++i) {
      [[unroll]] for (uint j = 0; j < BLOCK; ++j) {
        acc[i][j] += step[i][j];
        acc_up[i][j] += step_up[i][j];
      }
    }
#else
    // Invocations 0..TILE-1 stage a weight row's block each, the next TILE a column's block; rows
    // past the matrix's and absent columns repeat the last (their outputs are not stored).
    const uint blocks = p.cols / 32, b = k0 / 32;
    if (id < TILE) {
      const uint row = min(r0 + id, p.rows - 1);
      stage_block(0, row * blocks + b, id);
      if (EPILOGUE == EPILOGUE_SWIGLU) stage_block(1, row * blocks + b, id);
    } else if (id < 2 * TILE) {
      const uint t = id - TILE;
      uint q[8];
      tile_xd[t] = column_block(min(c0 + t, columns - 1), b, q);
      for (uint k = 0; k < 8; ++k) tile_xq[k * TILE + t] = q[k];
    }
    barrier();
    [[unroll]] for (uint i = 0; i < BLOCK; ++i) {
      const WeightBlock w = staged_block(0, ti + SPAN * i);
      const WeightBlock w_up = EPILOGUE == EPILOGUE_SWIGLU ? staged_block(1, ti + SPAN * i) : w;
      [[unroll]] for (uint j = 0; j < BLOCK; ++j) {
        const uint c = tj + SPAN * j;
        uint q[8];
        for (uint k = 0; k < 8; ++k) q[k] = tile_xq[k * TILE + c];
        acc[i][j] += block_dot(w, q, tile_xd[c]);
        if (EPILOGUE == EPILOGUE_SWIGLU) acc_up[i][j] += block_dot(w_up, q, tile_xd[c]);
      }
    }
#endif
    barrier();  // the next step overwrites the tiles
  }
  [[unroll]] for (uint i = 0; i < BLOCK; ++i) {
    [[unroll]] for (uint j = 0; j < BLOCK; ++j) {
      const uint row = r0 + ti + SPAN * i, c = c0 + tj + SPAN * j;
      if (row < p.rows && c < columns) store_output(c * p.rows + row, row, acc[i][j], acc_up[i][j]);
    }
  }
}
