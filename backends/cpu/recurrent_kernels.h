// The per-head steps of the recurrent linear-attention forms that the fused kernels do not compute
// (decayed states, windows blended with the state, unnormalized readouts: LoLCATs, SUPRA, Liger).
// Plain loops the compiler vectorizes: they touch r x d_h floats per head and token, far less than
// the projections around them, so they are not dispatched per ISA. None allocates.
#pragma once

#include <cstddef>

namespace t2r::cpu {

// S = diag(row_decay) S + phi_k v^T for S [r, d_v]; row_decay null: every row decays by head_decay.
void decayed_state_update(float* state, const float* row_decay, float head_decay, const float* phi_k, const float* v,
                          size_t r, size_t d_v);
// out = phi_q^T S for S [r, d_v].
void state_readout(const float* state, const float* phi_q, size_t r, size_t d_v, float* out);
// The unnormalized softmax over `count` keys and values (row j at j * stride):
// s_j = scale q . k_j, m = max s_j, out = sum_j e^(s_j - m) v_j; returns sum_j e^(s_j - m).
// scores needs `count` floats.
float window_attention(const float* q, const float* keys, const float* values, size_t count, size_t stride,
                       size_t head_dim, float scale, float* scores, float* out);
// x = (x - mean) / sqrt(biased variance + eps) over its n entries (GroupNorm of one head, no affine).
void group_norm(float* x, size_t n, float eps);
// gate_i = exp(logsigmoid(k_i) / temperature): the per-dimension decay of gated linear attention.
void key_gate(const float* k, size_t n, float temperature, float* gate);

}  // namespace t2r::cpu
