// Causal linear attention over a chunk of n tokens for one head, in the chunked (parallel)
// form, carrying the recurrent state across chunks:
//   A[t][s] = phi_q_t . phi_k_s for s <= t
//   out_t   = (phi_q_t^T S + sum_s A[t][s] v_s) / max(phi_q_t . z + sum_s A[t][s], floor)
//   then S += sum_s phi_k_s v_s^T and z += sum_s phi_k_s.
// Within a chunk the work is matrix-shaped; with n = 1 it is exactly one recurrent step.
#pragma once

#include <cstddef>

namespace t2r::cpu {

struct LinearAttentionChunk {
  const float* phi_q;  // row t at phi_q + t * phi_stride, r floats
  const float* phi_k;
  size_t phi_stride;
  const float* v;  // row t at v + t * v_stride, d_v floats
  size_t v_stride;
  float* out;  // row t at out + t * out_stride, d_v floats
  size_t out_stride;
  size_t n, r, d_v;
  float floor;
};

// state [r, d_v] and normalizer [r] are updated in place.
void linear_attention_chunk(const LinearAttentionChunk& c, float* state, float* normalizer);

}  // namespace t2r::cpu
