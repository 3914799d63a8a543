#include "quantize.h"

#include <algorithm>
#include <cmath>

#include "dtype.h"

namespace t2r {

// Both quantizers follow ggml's quantize_row_*_ref step by step (including that the values are
// divided by the unrounded scale while the f16-rounded one is stored), so a packed tensor is
// byte-identical to what ggml writes for the same f32 input.
void quantize_q8_0(const float* x, size_t n, BlockQ8_0* out) {
  for (size_t b = 0; b < n / 32; ++b, x += 32) {
    float amax = 0;
    for (size_t j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    const float d = amax / 127;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    out[b].d = f32_to_f16(d);
    for (size_t j = 0; j < 32; ++j) out[b].qs[j] = int8_t(std::round(x[j] * id));
  }
}

void quantize_q4_0(const float* x, size_t n, BlockQ4_0* out) {
  for (size_t b = 0; b < n / 32; ++b, x += 32) {
    float amax = 0, max = 0;
    for (size_t j = 0; j < 32; ++j) {
      if (amax < std::fabs(x[j])) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    const float d = max / -8;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    out[b].d = f32_to_f16(d);
    for (size_t j = 0; j < 16; ++j) {
      const float lo_scaled = x[j] * id, hi_scaled = x[j + 16] * id;  // two statements: never fused
      const int lo = std::min(15, int(int8_t(lo_scaled + 8.5f)));
      const int hi = std::min(15, int(int8_t(hi_scaled + 8.5f)));
      out[b].qs[j] = uint8_t(lo | (hi << 4));
    }
  }
}

void dequantize_q8_0(const BlockQ8_0* blocks, size_t n, float* out) {
  for (size_t b = 0; b < n / 32; ++b) {
    const float d = f16_to_f32(blocks[b].d);
    for (size_t j = 0; j < 32; ++j) out[32 * b + j] = d * float(blocks[b].qs[j]);
  }
}

void dequantize_q4_0(const BlockQ4_0* blocks, size_t n, float* out) {
  for (size_t b = 0; b < n / 32; ++b) {
    const float d = f16_to_f32(blocks[b].d);
    for (size_t j = 0; j < 16; ++j) {
      out[32 * b + j] = d * float((blocks[b].qs[j] & 0x0f) - 8);
      out[32 * b + j + 16] = d * float((blocks[b].qs[j] >> 4) - 8);
    }
  }
}

}  // namespace t2r
