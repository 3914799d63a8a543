#version 450
// Causal softmax attention for query head h of one run of the batch (consecutive rows of one
// sequence; a workgroup per head and run), everything after the q, k, v projections in one
// dispatch: first the store of every run row's k (with rotary positions, when rotary is set) and v
// at its position in this layer's KV cache, then for each row in position order rotary and the q
// scale on q_h and cpu::softmax_attention over positions 0..position. This layer's cache of the
// run's sequence starts at its state offset + keys_offset (and values_offset) of the keys (and
// values) binding; it interleaves kv heads: row t is [kv_heads, d_h]. Every query head of a kv head
// stores that kv head's rows: the run's later rows read them at once, and no workgroup can wait
// for another, so each reads what it wrote itself (the others write the same bits). q is [rows,
// heads d_h], k and v [rows, kv_heads d_h], out [rows, heads d_h]; scores holds heads x max_context
// floats per run of the batch.
#include "common.glsl"
#include "reduce.glsl"
#include "batch.glsl"
#include "trig.glsl"

layout(constant_id = 1) const uint DH = 1;  // head_dim (sizes the shared arrays)

layout(push_constant) uniform Push {
  uint heads;
  uint group;  // query heads per kv head
  uint max_context;
  float q_scale;
  uint rotary;
  uint keys_offset, values_offset;  // floats from the sequence's block to this layer's keys and values
} p;

layout(binding = 0) readonly buffer Q { float q[]; };
layout(binding = 1) readonly buffer K { float k[]; };
layout(binding = 2) readonly buffer V { float v[]; };
layout(binding = 3) coherent buffer Keys { float keys[]; };
layout(binding = 4) coherent buffer Values { float values[]; };
layout(binding = 5) coherent buffer Scores { float scores[]; };  // [runs, heads, max_context]
layout(binding = 6) writeonly buffer Out { float out_[]; };
layout(binding = 8) readonly buffer Freq { float inv_freq[]; };

shared float q_h[DH];
shared float partial[gl_WorkGroupSize.x];

void main() {
  const uint h = group_index() % p.heads, run = group_index() / p.heads;
  if (run >= batch.runs) return;
  const uvec4 r = batch_run(run);
  const uint id = gl_LocalInvocationID.x, wg = gl_WorkGroupSize.x;
  const uint kv = h / p.group, stride = (p.heads / p.group) * DH, sc = (run * p.heads + h) * p.max_context;
  // Where this kv head's part of cache row 0 is.
  const uint kh = r.z + p.keys_offset + kv * DH, vh = r.z + p.values_offset + kv * DH;
  const uint halfway = DH / 2;

  for (uint row = r.x; row < r.x + r.y; ++row) {
    const uint position = row_position(row), kvr = row * stride + kv * DH;
    for (uint j = id; j < (p.rotary != 0 ? halfway : DH); j += wg) {
      if (p.rotary != 0) {
        const vec2 rk = rotate_pair(k[kvr + j], k[kvr + j + halfway], inv_freq[j], position);
        keys[kh + position * stride + j] = rk.x;
        keys[kh + position * stride + j + halfway] = rk.y;
      } else {
        keys[kh + position * stride + j] = k[kvr + j];
      }
    }
    for (uint j = id; j < DH; j += wg) values[vh + position * stride + j] = v[kvr + j];
  }
  memoryBarrierBuffer();
  barrier();

  for (uint row = r.x; row < r.x + r.y; ++row) {
    const uint position = row_position(row), length = position + 1, qr = row * p.heads * DH + h * DH;
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

    float local_max = uintBitsToFloat(0xff800000u);  // -inf
    for (uint t = id; t < length; t += wg) {
      float s = 0.0;
      for (uint i = 0; i < DH; ++i) s += q_h[i] * keys[kh + t * stride + i];
      scores[sc + t] = s;
      local_max = max(local_max, s);
    }
    const float m = workgroup_max(local_max);
    float local_sum = 0.0;
    for (uint t = id; t < length; t += wg) {
      const float e = exp(scores[sc + t] - m);
      scores[sc + t] = e;
      local_sum += e;
    }
    const float sum = workgroup_sum(local_sum);
    for (uint t = id; t < length; t += wg) scores[sc + t] = scores[sc + t] / sum;
    // Every invocation reads every score below.
    memoryBarrierBuffer();
    barrier();
    // Invocation (j, c) sums the positions t = c mod chunks for element j; the chunks are then
    // added, so that long contexts are read by all invocations at once.
    const uint chunks = max(wg / DH, 1u), c = id / DH;
    const float last = scores[sc + position];
    for (uint j = id % DH; j < DH && c < chunks; j += wg) {
      float acc = 0.0;
      for (uint t = c; t < position; t += chunks) acc += scores[sc + t] * values[vh + t * stride + j];
      if (chunks == 1) {
        out_[qr + j] = acc + last * values[vh + position * stride + j];
      } else {
        partial[id] = acc;
      }
    }
    if (chunks > 1) {
      barrier();
      if (id < DH) {
        float acc = 0.0;
        for (uint i = 0; i < chunks; ++i) acc += partial[i * DH + id];
        out_[qr + id] = acc + last * values[vh + position * stride + id];
      }
    }
    // The next row overwrites q_h, the scores and the partial sums.
    memoryBarrierBuffer();
    barrier();
  }
}
