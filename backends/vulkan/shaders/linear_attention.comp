#version 450
// Causal linear attention for query head h of one run of the batch (consecutive rows of one
// sequence; a workgroup per head and run), everything after the q, k, v projections in one
// dispatch: the workgroup walks its run's rows in position order, each row as follows.
//   features: given (the folded T2R map: q and k hold phi(q) and phi(k), [heads, r]), the T2R
//   map phi(u) = relu(W_h u + b_h) (FEATURES_MAP, W [heads r, d_h] at binding 0; a q8_0 or q4_0 W
//   multiplies u quantized to q8 blocks, as on the CPU) or elu(u) + 1
//   (FEATURES_ELU, cpu::elu_plus_one's rounding), applied to q_h after rotary positions (when
//   rotary is set) and the q scale, and to k of kv head h / group after rotary;
//   then with this layer's state in place (cpu::linear_attention_step):
//   z += phi_k;  S += phi_k v^T;  out = phi_q^T S / max(phi_q . z, floor)
// This layer's state of the run's sequence is at its state offset + state_offset of the state
// binding: S [heads, r, d_h] and then z [heads, r]. Each invocation updates the same elements of the
// state for every row, so the rows need no memory barrier between them. q, k, v and out are
// [rows, q_stride], [rows, k_stride], [rows, v_stride] and [rows, heads d_h].
#include "common.glsl"
#include "reduce.glsl"
#include "batch.glsl"
#include "trig.glsl"

layout(constant_id = 1) const uint FEATURES = 0;
const uint FEATURES_GIVEN = 0;
const uint FEATURES_MAP = 1;
const uint FEATURES_ELU = 2;
layout(constant_id = 2) const uint DH = 1;  // head_dim (sizes the shared arrays)
layout(constant_id = 3) const uint R = 1;   // features per head

layout(push_constant) uniform Push {
  uint heads;
  uint group;  // query heads per kv head
  float floor_;
  float q_scale;
  uint rotary;
  uint state_offset;  // floats from the sequence's block to this layer's S
  uint q_stride, k_stride, v_stride;  // floats per batch row of q, k and v
} p;

layout(binding = 1) readonly buffer Q { float q[]; };
layout(binding = 2) readonly buffer K { float k[]; };
layout(binding = 3) readonly buffer V { float v[]; };
layout(binding = 4) buffer State { float state[]; };
layout(binding = 5) writeonly buffer Out { float out_[]; };
layout(binding = 6) readonly buffer MapBias { float map_bias[]; };
layout(binding = 8) readonly buffer Freq { float inv_freq[]; };
#include "weights.glsl"

shared float q_h[DH], k_h[DH], phi_q[R], phi_k[R];
// Partial sums of the split loops below.
shared float part_q[gl_WorkGroupSize.x], part_k[gl_WorkGroupSize.x];
#if WEIGHT_DTYPE == 3 || WEIGHT_DTYPE == 4
// q_h and then k_h in q8 for a q8_0 or q4_0 map (weights.glsl), 8 words per block.
const uint DH_BLOCKS = (DH + 31) / 32;  // DH is whole blocks (ops.cpp); rounded up for its default
shared uint x_q[2 * DH_BLOCKS * 8];
shared float x_d[2 * DH_BLOCKS];
#endif

const float FLUSH_BELOW = -16.9821053;  // -24.5f * 0.69314718f rounded to float, as the CPU has it

// For u <= 0 the sum lands on multiples of 2^-24 (e^u - 1 rounds there before the 1 is added
// back), and it is 0 once e^u < 2^-24.5, as the GPU expm1f the ELU references used.
float elu_plus_one(float u) {
  precise float shifted = (exp(u) - 1.0) + 1.0;
  return u > 0.0 ? u + 1.0 : u < FLUSH_BELOW ? 0.0 : shifted;
}

// Row `row` (at `position`) of a run whose layer state starts at `base`.
void attend(uint h, uint row, uint position, uint base) {
  const uint id = gl_LocalInvocationID.x, wg = gl_WorkGroupSize.x;
  const uint kv = h / p.group, f = h * R;
  const uint qr = row * p.q_stride, kr = row * p.k_stride, vr = row * p.v_stride, out_row = row * p.heads * DH;

  if (FEATURES == FEATURES_GIVEN) {
    for (uint i = id; i < R; i += wg) {
      phi_q[i] = q[qr + f + i];
      phi_k[i] = k[kr + f + i];
    }
  } else {
    const uint halfway = DH / 2;
    for (uint j = id; j < (p.rotary != 0 ? halfway : DH); j += wg) {
      if (p.rotary != 0) {
        const vec2 rq = rotate_pair(q[qr + h * DH + j], q[qr + h * DH + j + halfway], inv_freq[j], position);
        const vec2 rk = rotate_pair(k[kr + kv * DH + j], k[kr + kv * DH + j + halfway], inv_freq[j], position);
        q_h[j] = rq.x * p.q_scale;
        q_h[j + halfway] = rq.y * p.q_scale;
        k_h[j] = rk.x;
        k_h[j + halfway] = rk.y;
      } else {
        q_h[j] = q[qr + h * DH + j] * p.q_scale;
        k_h[j] = k[kr + kv * DH + j];
      }
    }
    barrier();
    if (FEATURES == FEATURES_MAP) {
#if WEIGHT_DTYPE == 3 || WEIGHT_DTYPE == 4
      for (uint b = id; b < 2 * DH_BLOCKS; b += wg) {
        float u[32];
        for (uint j = 0; j < 32; ++j) u[j] = b < DH_BLOCKS ? q_h[b * 32 + j] : k_h[(b - DH_BLOCKS) * 32 + j];
        uint quantized[8];
        x_d[b] = quantize_block(u, quantized);
        for (uint w = 0; w < 8; ++w) x_q[b * 8 + w] = quantized[w];
      }
      barrier();
#endif
      // Invocation (i, c) dots columns (blocks, for q8_0 and q4_0) c, c + chunks, ... of row i;
      // the chunks are then added.
      const uint chunks = max(wg / R, 1u), c = id / R;
      for (uint i = id % R; i < R && c < chunks; i += wg) {
        float dq = 0.0, dk = 0.0;
#if WEIGHT_DTYPE == 3 || WEIGHT_DTYPE == 4
        for (uint b = c; b < DH_BLOCKS; b += chunks) {
          uint qb[8], kb[8];
          for (uint w = 0; w < 8; ++w) {
            qb[w] = x_q[b * 8 + w];
            kb[w] = x_q[(DH_BLOCKS + b) * 8 + w];
          }
          dq += block_product(0, (f + i) * DH_BLOCKS + b, qb, x_d[b]);
          dk += block_product(0, (f + i) * DH_BLOCKS + b, kb, x_d[DH_BLOCKS + b]);
        }
#else
        for (uint j = c; j < DH; j += chunks) {
          const float w = weight_at(0, f + i, j, DH);
          dq += w * q_h[j];
          dk += w * k_h[j];
        }
#endif
        if (chunks == 1) {
          phi_q[i] = max(dq + map_bias[f + i], 0.0);
          phi_k[i] = max(dk + map_bias[f + i], 0.0);
        } else {
          part_q[id] = dq;
          part_k[id] = dk;
        }
      }
      if (chunks > 1) {
        barrier();
        if (id < R) {
          float dq = 0.0, dk = 0.0;
          for (uint i = 0; i < chunks; ++i) {
            dq += part_q[i * R + id];
            dk += part_k[i * R + id];
          }
          phi_q[id] = max(dq + map_bias[f + id], 0.0);
          phi_k[id] = max(dk + map_bias[f + id], 0.0);
        }
      }
    } else {
      for (uint i = id; i < R; i += wg) {
        phi_q[i] = elu_plus_one(q_h[i]);
        phi_k[i] = elu_plus_one(k_h[i]);
      }
    }
  }
  barrier();

  const uint s = base + h * R * DH, z = base + p.heads * R * DH + f;
  float partial = 0.0;
  for (uint i = id; i < R; i += wg) {
    const float zi = state[z + i] + phi_k[i];
    state[z + i] = zi;
    partial += phi_q[i] * zi;
  }
  const float inv = 1.0 / max(workgroup_sum(partial), p.floor_);

  // Invocation (j, c) updates rows c, c + chunks, ... of column j of S and sums their part of
  // out[j]; the chunks are then added.
  const uint chunks = max(wg / DH, 1u), c = id / DH;
  for (uint j = id % DH; j < DH && c < chunks; j += wg) {
    const float vj = v[vr + kv * DH + j];
    float acc = 0.0;
    for (uint i = c; i < R; i += chunks) {
      precise float updated = state[s + i * DH + j] + phi_k[i] * vj;
      state[s + i * DH + j] = updated;
      acc += phi_q[i] * updated;
    }
    if (chunks == 1) {
      out_[out_row + h * DH + j] = acc * inv;
    } else {
      part_q[id] = acc;
    }
  }
  if (chunks > 1) {
    barrier();
    if (id < DH) {
      float acc = 0.0;
      for (uint i = 0; i < chunks; ++i) acc += part_q[i * DH + id];
      out_[out_row + h * DH + id] = acc * inv;
    }
  }
}

void main() {
  const uint h = group_index() % p.heads, run = group_index() / p.heads;
  if (run >= batch.runs) return;
  const uvec4 r = batch_run(run);
  for (uint row = r.x; row < r.x + r.y; ++row) {
    barrier();  // the previous row may still be reading the shared arrays
    attend(h, row, row_position(row), r.z + p.state_offset);
  }
}
