// The packed layouts of kernels.h's Packing, written by scalar code any path can run.
#pragma once

#include <cstddef>

#include "kernels.h"

namespace t2r::cpu {

// Bytes of w in the Interleaved16 layout: its rows rounded up to 16 (w is q8_0 or q4_0).
size_t interleaved16_bytes(const Matrix& w);
void write_interleaved16(const Matrix& w, unsigned char* out);

}  // namespace t2r::cpu
