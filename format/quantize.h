// ggml-compatible block quantization (q8_0, q4_0): the block layouts, the quantizers the packer
// uses (ggml's reference ones, so files cross-check with ggml) and dequantization.
#pragma once

#include <cstddef>
#include <cstdint>

namespace t2r {

// 32 weights w[j] = d * qs[j]. 34 bytes; blocks follow each other without padding.
struct BlockQ8_0 {
  uint16_t d;  // f16
  int8_t qs[32];
};
// 32 weights: byte j holds w[j] in its low nibble and w[j + 16] in its high nibble;
// w = d * (nibble - 8). 18 bytes.
struct BlockQ4_0 {
  uint16_t d;  // f16
  uint8_t qs[16];
};
static_assert(sizeof(BlockQ8_0) == 34 && sizeof(BlockQ4_0) == 18, "block layouts are part of the file format");

// n is a multiple of 32. q8_0: d = max|x| / 127, q = round(x / d).
void quantize_q8_0(const float* x, size_t n, BlockQ8_0* out);
// q4_0: d = (the value of largest magnitude) / -8, nibble = min(15, int(x / d + 8.5)).
void quantize_q4_0(const float* x, size_t n, BlockQ4_0* out);

void dequantize_q8_0(const BlockQ8_0* blocks, size_t n, float* out);
void dequantize_q4_0(const BlockQ4_0* blocks, size_t n, float* out);

}  // namespace t2r
