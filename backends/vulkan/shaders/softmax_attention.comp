#version 450
// Causal softmax attention for query head h (one workgroup each), everything after the q, k, v
// projections in one dispatch: rotary positions on q_h and on k of kv head h / group (when
// rotary is set), the q scale, the store of k and v at the current position into this layer's
// KV cache (by the first query head of each kv head), then cpu::softmax_attention over positions
// 0..position. This layer's cache of the row's sequence starts at step.state + keys_offset (and
// values_offset) of the keys (and values) binding; it interleaves kv heads: row t is [kv_heads, d_h]. The current position's
// k and v are used from registers, not from the cache another workgroup is writing.
#include "common.glsl"
#include "reduce.glsl"
#include "step.glsl"
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
layout(binding = 3) buffer Keys { float keys[]; };
layout(binding = 4) buffer Values { float values[]; };
layout(binding = 5) coherent buffer Scores { float scores[]; };  // [heads, max_context]
layout(binding = 6) writeonly buffer Out { float out_[]; };
layout(binding = 8) readonly buffer Freq { float inv_freq[]; };

shared float q_h[DH], k_h[DH];
shared float partial[gl_WorkGroupSize.x];

void main() {
  const uint h = group_index();
  if (h >= p.heads) return;
  const uint id = gl_LocalInvocationID.x, wg = gl_WorkGroupSize.x;
  const uint kv = h / p.group, stride = (p.heads / p.group) * DH, position = step.position;
  const uint length = position + 1, sc = h * p.max_context;
  // Where this kv head's part of cache row 0 is.
  const uint kh = step.state + p.keys_offset + kv * DH, vh = step.state + p.values_offset + kv * DH, kvh = kv * DH;

  const uint halfway = DH / 2;
  for (uint j = id; j < (p.rotary != 0 ? halfway : DH); j += wg) {
    if (p.rotary != 0) {
      const vec2 rq = rotate_pair(q[h * DH + j], q[h * DH + j + halfway], inv_freq[j], position);
      const vec2 rk = rotate_pair(k[kvh + j], k[kvh + j + halfway], inv_freq[j], position);
      q_h[j] = rq.x * p.q_scale;
      q_h[j + halfway] = rq.y * p.q_scale;
      k_h[j] = rk.x;
      k_h[j + halfway] = rk.y;
    } else {
      q_h[j] = q[h * DH + j] * p.q_scale;
      k_h[j] = k[kvh + j];
    }
  }
  barrier();
  if (h % p.group == 0) {
    for (uint j = id; j < DH; j += wg) {
      keys[kh + position * stride + j] = k_h[j];
      values[vh + position * stride + j] = v[kvh + j];
    }
  }

  float local_max = uintBitsToFloat(0xff800000u);  // -inf
  for (uint t = id; t < length; t += wg) {
    float s = 0.0;
    if (t == position) {
      for (uint i = 0; i < DH; ++i) s += q_h[i] * k_h[i];
    } else {
      for (uint i = 0; i < DH; ++i) s += q_h[i] * keys[kh + t * stride + i];
    }
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
  for (uint j = id % DH; j < DH && c < chunks; j += wg) {
    float acc = 0.0;
    for (uint t = c; t < position; t += chunks) acc += scores[sc + t] * values[vh + t * stride + j];
    if (chunks == 1) {
      out_[h * DH + j] = acc + scores[sc + position] * v[kvh + j];
    } else {
      partial[id] = acc;
    }
  }
  if (chunks > 1) {
    barrier();
    if (id < DH) {
      float acc = 0.0;
      for (uint i = 0; i < chunks; ++i) acc += partial[i * DH + id];
      out_[h * DH + id] = acc + scores[sc + position] * v[kvh + id];
    }
  }
}
