// Rotary inverse frequencies of a head, with the scalings transformers' modeling_rope_utils
// defines (default, linear, llama3, yarn), computed in double and rounded to float once.
#pragma once

#include <cstdint>
#include <vector>

#include "architecture.h"

namespace t2r {

// head_dim / 2 frequencies: position p rotates pair i by p * freq[i].
std::vector<float> rotary_inverse_frequencies(const RotarySpec& spec, int64_t head_dim);

}  // namespace t2r
