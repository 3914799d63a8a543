#version 450
// Causal linear attention for query head h of one run of the batch (consecutive rows of one
// sequence; a workgroup per head and run), everything after the q, k, v projections in one
// dispatch.
//   features: given (the folded T2R map: q and k hold phi(q) and phi(k), [heads, r]), the T2R
//   map phi(u) = relu(W_h u + b_h) (FEATURES_MAP, W [heads r, d_h] at binding 0; a q8_0 or q4_0 W
//   multiplies u quantized to q8 blocks, as on the CPU) or elu(u) + 1
//   (FEATURES_ELU, cpu::elu_plus_one's rounding), applied to q_h after rotary positions (when
//   rotary is set) and the q scale, and to k of kv head h / group after rotary.
// A run of fewer than CHUNK_MIN_ROWS rows is stepped, row after row in position order, with this
// layer's state in place (cpu::linear_attention_step):
//   z += phi_k;  S += phi_k v^T;  out = phi_q^T S / max(phi_q . z, floor)
// A longer run (a prompt chunk) takes CHUNK rows at a time in the chunked form
// (cpu::linear_attention_chunk): the features of all of them first, then
//   A[t][s] = phi_q_t . phi_k_s (s <= t)
//   out_t = (phi_q_t^T S + sum_s A[t][s] v_s) / max(phi_q_t . z + sum_s A[t][s], floor)
//   S += sum_s phi_k_s v_s^T;  z += sum_s phi_k_s   (added in row order, as stepping adds them)
// This layer's state of the run's sequence is at its state offset + state_offset of the state
// binding: S [heads, r, d_h] and then z [heads, r]. q, k, v and out are [rows, q_stride],
// [rows, k_stride], [rows, v_stride] and [rows, heads d_h].
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
layout(constant_id = 4) const uint CHUNK = 1;  // rows of a run in shared memory at once (ops.cpp)
layout(constant_id = 5) const uint CHUNK_MIN_ROWS = 0xffffffffu;  // a shorter run is stepped

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

// Per row t of the rows at hand (one when stepping, up to CHUNK in the chunked form): q_h and k_h
// at t DH, phi_q and phi_k at t R; the chunked form's v rows, A [CHUNK, CHUNK] and 1 / denominator.
shared float q_h[CHUNK * DH], k_h[CHUNK * DH], phi_q[CHUNK * R], phi_k[CHUNK * R];
shared float v_c[CHUNK * DH], scores[CHUNK * CHUNK], inv_denominator[CHUNK];
// Partial sums of the split loops below.
shared float part_q[gl_WorkGroupSize.x], part_k[gl_WorkGroupSize.x];
#if WEIGHT_DTYPE == 3 || WEIGHT_DTYPE == 4
// Per row, q_h and then k_h in q8 for a q8_0 or q4_0 map (weights.glsl), 8 words per block.
const uint DH_BLOCKS = (DH + 31) / 32;  // DH is whole blocks (ops.cpp); rounded up for its default
shared uint x_q[CHUNK * 2 * DH_BLOCKS * 8];
shared float x_d[CHUNK * 2 * DH_BLOCKS];
#endif

const float FLUSH_BELOW = -16.9821053;  // -24.5f * 0.69314718f rounded to float, as the CPU has it

// For u <= 0 the sum lands on multiples of 2^-24 (e^u - 1 rounds there before the 1 is added
// back), and it is 0 once e^u < 2^-24.5, as the GPU expm1f the ELU references used.
float elu_plus_one(float u) {
  precise float shifted = (exp(u) - 1.0) + 1.0;
  return u > 0.0 ? u + 1.0 : u < FLUSH_BELOW ? 0.0 : shifted;
}

// phi_q and phi_k of rows first..first+n-1 into rows 0..n-1 of the shared arrays, the rows'
// elements spread over the workgroup together. Each element is computed as for one row alone.
void features(uint h, uint first, uint n) {
  const uint id = gl_LocalInvocationID.x, wg = gl_WorkGroupSize.x;
  const uint kv = h / p.group, f = h * R;

  if (FEATURES == FEATURES_GIVEN) {
    for (uint e = id; e < n * R; e += wg) {
      const uint t = e / R, i = e % R;
      phi_q[e] = q[(first + t) * p.q_stride + f + i];
      phi_k[e] = k[(first + t) * p.k_stride + f + i];
    }
    barrier();
    return;
  }
  const uint halfway = DH / 2, width = p.rotary != 0 ? halfway : DH;
  for (uint e = id; e < n * width; e += wg) {
    const uint t = e / width, j = e % width, row = first + t;
    const uint qr = row * p.q_stride + h * DH, kr = row * p.k_stride + kv * DH;
    if (p.rotary != 0) {
      const uint position = row_position(row);
      const vec2 rq = rotate_pair(q[qr + j], q[qr + j + halfway], inv_freq[j], position);
      const vec2 rk = rotate_pair(k[kr + j], k[kr + j + halfway], inv_freq[j], position);
      q_h[t * DH + j] = rq.x * p.q_scale;
      q_h[t * DH + j + halfway] = rq.y * p.q_scale;
      k_h[t * DH + j] = rk.x;
      k_h[t * DH + j + halfway] = rk.y;
    } else {
      q_h[t * DH + j] = q[qr + j] * p.q_scale;
      k_h[t * DH + j] = k[kr + j];
    }
  }
  barrier();
  if (FEATURES == FEATURES_MAP) {
#if WEIGHT_DTYPE == 3 || WEIGHT_DTYPE == 4
    for (uint e = id; e < n * 2 * DH_BLOCKS; e += wg) {
      const uint t = e / (2 * DH_BLOCKS), b = e % (2 * DH_BLOCKS);
      float u[32];
      for (uint j = 0; j < 32; ++j) u[j] = b < DH_BLOCKS ? q_h[t * DH + b * 32 + j] : k_h[t * DH + (b - DH_BLOCKS) * 32 + j];
      uint quantized[8];
      x_d[e] = quantize_block(u, quantized);
      for (uint w = 0; w < 8; ++w) x_q[e * 8 + w] = quantized[w];
    }
    barrier();
#endif
    // Invocation (o, c) dots columns (blocks, for q8_0 and q4_0) c, c + chunks, ... of output o
    // (feature i of row t); the chunks are then added.
    const uint outputs = n * R, chunks = max(wg / outputs, 1u), c = id / outputs;
    for (uint o = id % outputs; o < outputs && c < chunks; o += wg) {
      const uint t = o / R, i = o % R;
      float dq = 0.0, dk = 0.0;
#if WEIGHT_DTYPE == 3 || WEIGHT_DTYPE == 4
      const uint blocks = t * 2 * DH_BLOCKS;
      for (uint b = c; b < DH_BLOCKS; b += chunks) {
        uint qb[8], kb[8];
        for (uint w = 0; w < 8; ++w) {
          qb[w] = x_q[(blocks + b) * 8 + w];
          kb[w] = x_q[(blocks + DH_BLOCKS + b) * 8 + w];
        }
        dq += block_product(0, (f + i) * DH_BLOCKS + b, qb, x_d[blocks + b]);
        dk += block_product(0, (f + i) * DH_BLOCKS + b, kb, x_d[blocks + DH_BLOCKS + b]);
      }
#else
      for (uint j = c; j < DH; j += chunks) {
        const float w = weight_at(0, f + i, j, DH);
        dq += w * q_h[t * DH + j];
        dk += w * k_h[t * DH + j];
      }
#endif
      if (chunks == 1) {
        phi_q[o] = max(dq + map_bias[f + i], 0.0);
        phi_k[o] = max(dk + map_bias[f + i], 0.0);
      } else {
        part_q[id] = dq;
        part_k[id] = dk;
      }
    }
    if (chunks > 1) {
      barrier();
      if (id < outputs) {
        float dq = 0.0, dk = 0.0;
        for (uint i = 0; i < chunks; ++i) {
          dq += part_q[i * outputs + id];
          dk += part_k[i * outputs + id];
        }
        phi_q[id] = max(dq + map_bias[f + id % R], 0.0);
        phi_k[id] = max(dk + map_bias[f + id % R], 0.0);
      }
    }
  } else {
    for (uint e = id; e < n * R; e += wg) {
      phi_q[e] = elu_plus_one(q_h[(e / R) * DH + e % R]);
      phi_k[e] = elu_plus_one(k_h[(e / R) * DH + e % R]);
    }
  }
  barrier();
}

// Row `row` (its features at row 0 of the shared arrays) of a run whose layer state starts at
// `base`, one recurrent step. Each invocation updates the same elements of the state for every
// row, so the rows need no memory barrier between them.
void step(uint h, uint row, uint base) {
  const uint id = gl_LocalInvocationID.x, wg = gl_WorkGroupSize.x;
  const uint kv = h / p.group, f = h * R;
  const uint vr = row * p.v_stride, out_row = row * p.heads * DH;
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

// Rows first..first+n-1 (n <= CHUNK) of a run whose layer state starts at `base`, in the
// chunked form; their features are already in the shared arrays.
void chunk(uint h, uint first, uint n, uint base) {
  const uint id = gl_LocalInvocationID.x, wg = gl_WorkGroupSize.x;
  const uint kv = h / p.group;
  const uint s = base + h * R * DH, z = base + p.heads * R * DH + h * R;
  for (uint e = id; e < n * DH; e += wg) v_c[e] = v[(first + e / DH) * p.v_stride + kv * DH + e % DH];
  for (uint e = id; e < n * n; e += wg) {
    const uint t = e / n, u = e % n;
    float a = 0.0;
    if (u <= t) {
      for (uint i = 0; i < R; ++i) a += phi_q[t * R + i] * phi_k[u * R + i];
    }
    scores[t * CHUNK + u] = a;
  }
  barrier();
  for (uint t = id; t < n; t += wg) {
    float denominator = 0.0;
    for (uint i = 0; i < R; ++i) denominator += phi_q[t * R + i] * state[z + i];
    for (uint u = 0; u <= t; ++u) denominator += scores[t * CHUNK + u];
    inv_denominator[t] = 1.0 / max(denominator, p.floor_);
  }
  barrier();
  for (uint e = id; e < n * DH; e += wg) {
    const uint t = e / DH, j = e % DH;
    float acc = 0.0;
    for (uint i = 0; i < R; ++i) acc += phi_q[t * R + i] * state[s + i * DH + j];
    for (uint u = 0; u <= t; ++u) acc += scores[t * CHUNK + u] * v_c[u * DH + j];
    out_[(first + t) * p.heads * DH + h * DH + j] = acc * inv_denominator[t];
  }
  memoryBarrierBuffer();
  barrier();  // every readout has read S and z before they take in the chunk
  for (uint e = id; e < R * DH; e += wg) {
    const uint i = e / DH, j = e % DH;
    precise float updated = state[s + e];
    for (uint u = 0; u < n; ++u) updated = updated + phi_k[u * R + i] * v_c[u * DH + j];
    state[s + e] = updated;
  }
  for (uint i = id; i < R; i += wg) {
    float zi = state[z + i];
    for (uint u = 0; u < n; ++u) zi += phi_k[u * R + i];
    state[z + i] = zi;
  }
  memoryBarrierBuffer();
  barrier();  // the next chunk reads the updated S and z
}

void main() {
  const uint h = group_index() % p.heads, run = group_index() / p.heads;
  if (run >= batch.runs) return;
  const uvec4 r = batch_run(run);
  const uint base = r.z + p.state_offset;
  if (r.y >= CHUNK_MIN_ROWS) {
    for (uint first = r.x; first < r.x + r.y; first += CHUNK) {
      const uint n = min(CHUNK, r.x + r.y - first);
      barrier();  // the previous chunk may still be reading the shared arrays
      features(h, first, n);
      chunk(h, first, n, base);
    }
    return;
  }
  for (uint row = r.x; row < r.x + r.y; ++row) {
    barrier();  // the previous row may still be reading the shared arrays
    features(h, row, 1);
    step(h, row, base);
  }
}
