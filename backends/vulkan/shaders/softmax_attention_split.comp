#version 450
// Causal softmax attention split over the positions (flash-decoding), for long contexts: the
// attention of every batch row for every query head, as softmax_attention.comp computes it, in
// three dispatches separated by barriers (PASS):
//   0. a workgroup per row stores its k (with rotary positions, when rotary is set) and v at its
//      position in this layer's KV cache of its run's sequence;
//   1. a workgroup per (SPLIT positions, head, row) takes the row's positions in its split: rotary
//      and the q scale on q_h, the scores, their maximum m, l = sum exp(score - m) and
//      o = sum exp(score - m) v, written to `partials`;
//   2. a workgroup per (head, row) combines the row's splits: out = sum exp(m_s - M) o_s /
//      sum exp(m_s - M) l_s, M the largest m_s.
// The cache layout, q, k, v and out are softmax_attention.comp's; partials holds max_rows x heads x
// splits records of DH + 2 floats (m, l, o).
#include "common.glsl"
#include "reduce.glsl"
#include "batch.glsl"
#include "trig.glsl"

layout(constant_id = 1) const uint DH = 1;       // head_dim (sizes the shared arrays)
layout(constant_id = 2) const uint PASS = 0;     // 0 store, 1 partials, 2 combine
layout(constant_id = 3) const uint SPLIT = 256;  // positions per partial workgroup

layout(push_constant) uniform Push {
  uint heads;
  uint group;  // query heads per kv head
  uint splits;  // partial records per row and head: max_context / SPLIT, rounded up
  float q_scale;
  uint rotary;
  uint keys_offset, values_offset;  // floats from the sequence's block to this layer's keys and values
} p;

layout(binding = 0) readonly buffer Q { float q[]; };
layout(binding = 1) readonly buffer K { float k[]; };
layout(binding = 2) readonly buffer V { float v[]; };
layout(binding = 3) buffer Keys { float keys[]; };
layout(binding = 4) buffer Values { float values[]; };
layout(binding = 5) buffer Partials { float partials[]; };
layout(binding = 6) writeonly buffer Out { float out_[]; };
layout(binding = 8) readonly buffer Freq { float inv_freq[]; };

shared float q_h[DH];
shared float weights[SPLIT];  // exp(score - m) of the split's positions

// The offset of row r's sequence's block in the state binding (its run's).
uint state_of(uint r) {
  for (uint i = 0; i < batch.runs; ++i) {
    const uvec4 run = batch_run(i);
    if (r >= run.x && r < run.x + run.y) return run.z;
  }
  return 0;
}

void main() {
  const uint id = gl_LocalInvocationID.x, wg = gl_WorkGroupSize.x, halfway = DH / 2;
  const uint stride = (p.heads / p.group) * DH;  // floats per cache row and per k, v row
  if (PASS == 0) {
    const uint row = group_index();
    if (row >= batch.rows) return;
    const uint position = row_position(row), state = state_of(row);
    const uint kr = state + p.keys_offset + position * stride, vr = state + p.values_offset + position * stride;
    for (uint e = id; e < stride; e += wg) {
      const uint j = e % DH;
      if (p.rotary == 0) {
        keys[kr + e] = k[row * stride + e];
      } else if (j < halfway) {
        keys[kr + e] = rotate_pair(k[row * stride + e], k[row * stride + e + halfway], inv_freq[j], position).x;
      } else {
        keys[kr + e] = rotate_pair(k[row * stride + e - halfway], k[row * stride + e], inv_freq[j - halfway], position).y;
      }
      values[vr + e] = v[row * stride + e];
    }
    return;
  }

  const uint split = PASS == 1 ? group_index() % p.splits : 0;
  const uint pair = PASS == 1 ? group_index() / p.splits : group_index();
  const uint h = pair % p.heads, row = pair / p.heads;
  if (row >= batch.rows) return;
  const uint position = row_position(row), state = state_of(row), kv = h / p.group;
  const uint record = (row * p.heads + h) * p.splits;  // the row and head's first partial record
  const uint qr = row * p.heads * DH + h * DH;
  if (PASS == 2) {
    const uint used = position / SPLIT + 1;
    float m = uintBitsToFloat(0xff800000u);  // -inf
    for (uint s = 0; s < used; ++s) m = max(m, partials[(record + s) * (DH + 2)]);
    float l = 0.0;
    for (uint s = 0; s < used; ++s) l += exp(partials[(record + s) * (DH + 2)] - m) * partials[(record + s) * (DH + 2) + 1];
    for (uint j = id; j < DH; j += wg) {
      float o = 0.0;
      for (uint s = 0; s < used; ++s) o += exp(partials[(record + s) * (DH + 2)] - m) * partials[(record + s) * (DH + 2) + 2 + j];
      out_[qr + j] = o / l;
    }
    return;
  }

  const uint begin = split * SPLIT;
  if (begin > position) return;  // the combine reads only the splits up to the row's position
  const uint end = min(begin + SPLIT, position + 1);
  const uint kh = state + p.keys_offset + kv * DH, vh = state + p.values_offset + kv * DH;
  for (uint j = id; j < (p.rotary != 0 ? halfway : DH); j += wg) {
    if (p.rotary != 0) {
      const vec2 rq = rotate_pair(q[qr + j], q[qr + j + halfway], inv_freq[j], position);
      q_h[j] = rq.x * p.q_scale;
      q_h[j + halfway] = rq.y * p.q_scale;
    } else {
      q_h[j] = q[qr + j] * p.q_scale;
    }
  }
  barrier();
  float local_max = uintBitsToFloat(0xff800000u);
  for (uint t = begin + id; t < end; t += wg) {
    float s = 0.0;
    for (uint i = 0; i < DH; ++i) s += q_h[i] * keys[kh + t * stride + i];
    weights[t - begin] = s;
    local_max = max(local_max, s);
  }
  const float m = workgroup_max(local_max);
  float local_sum = 0.0;
  for (uint t = begin + id; t < end; t += wg) {
    const float e = exp(weights[t - begin] - m);
    weights[t - begin] = e;
    local_sum += e;
  }
  const float l = workgroup_sum(local_sum);
  barrier();  // every invocation reads every weight below
  const uint at = (record + split) * (DH + 2);
  if (id == 0) {
    partials[at] = m;
    partials[at + 1] = l;
  }
  for (uint j = id; j < DH; j += wg) {
    float o = 0.0;
    for (uint t = begin; t < end; ++t) o += weights[t - begin] * values[vh + t * stride + j];
    partials[at + 2 + j] = o;
  }
}
