// Weight matrices in their stored layout, read as 32-bit words whatever the dtype, so that no
// 8- or 16-bit storage feature is needed. WEIGHT_DTYPE is format/dtype.h's value: 0 f32, 1 f16,
// 2 bf16, 3 q8_0 (34-byte blocks: f16 scale, 32 int8), 4 q4_0 (18-byte blocks: f16 scale, 16
// bytes; byte j holds element j in its low nibble and j + 16 in its high one). Regions are padded
// to 16 bytes plus 16, so reading a word or quad past a row's end stays in bounds.
// Matrix 0 is at binding 0; with SECOND_MATRIX, matrix 1 at binding 4 (matvec's swiglu).
layout(binding = 0) readonly buffer Weights0 { uint words[]; } w0;
layout(binding = 0) readonly buffer Weights0Quads { uvec4 quads[]; } w0q;
#ifdef SECOND_MATRIX
layout(binding = 4) readonly buffer Weights1 { uint words[]; } w1;
layout(binding = 4) readonly buffer Weights1Quads { uvec4 quads[]; } w1q;
uint weight_word(uint m, uint i) { return m == 0 ? w0.words[i] : w1.words[i]; }
uvec4 weight_quad(uint m, uint i) { return m == 0 ? w0q.quads[i] : w1q.quads[i]; }
#else
uint weight_word(uint m, uint i) { return w0.words[i]; }
uvec4 weight_quad(uint m, uint i) { return w0q.quads[i]; }
#endif

// 32 bits starting at an even byte offset.
uint weight_bits_at(uint m, uint byte_offset) {
  const uint i = byte_offset >> 2;
  return (byte_offset & 2u) == 0 ? weight_word(m, i) : (weight_word(m, i) >> 16) | (weight_word(m, i + 1) << 16);
}

// The f16 scale of the block at an even byte offset.
float block_scale(uint m, uint byte_offset) {
  return unpackHalf2x16(weight_word(m, byte_offset >> 2) >> ((byte_offset & 2u) * 8u)).x;
}

// Element (row, col) of a matrix with `cols` columns.
float weight_at(uint m, uint row, uint col, uint cols) {
#if WEIGHT_DTYPE == 0
  return uintBitsToFloat(weight_word(m, row * cols + col));
#elif WEIGHT_DTYPE == 1 || WEIGHT_DTYPE == 2
  const uint e = row * cols + col;
  const uint bits = (weight_word(m, e >> 1) >> ((e & 1u) * 16u)) & 0xffffu;
#if WEIGHT_DTYPE == 1
  return unpackHalf2x16(bits).x;
#else
  return uintBitsToFloat(bits << 16);
#endif
#else
  const uint j = col % 32;
  const uint block = row * (cols / 32) + col / 32;
#if WEIGHT_DTYPE == 3
  const uint b = block * 34;
  const uint q = b + 2 + j;
  return block_scale(m, b) * float(bitfieldExtract(int(weight_word(m, q >> 2)), int((q & 3u) * 8u), 8));
#else
  const uint b = block * 18;
  const uint q = b + 2 + (j & 15u);
  const uint byte_value = (weight_word(m, q >> 2) >> ((q & 3u) * 8u)) & 0xffu;
  const uint nibble = j < 16 ? byte_value & 15u : byte_value >> 4;
  return block_scale(m, b) * float(int(nibble) - 8);
#endif
#endif
}

#if WEIGHT_DTYPE == 3 || WEIGHT_DTYPE == 4
// q8_0 and q4_0 weights multiply activations quantized to q8 blocks, with exact integer dot
// products, as the CPU does (cpu::reference::quantize_activations and matmul_blocks, ggml's
// convention): the backends then differ only in the order their f32 block products are summed.

#include "quantize.glsl"

// The four signed bytes of a word, byte 0 first.
ivec4 signed_bytes(uint w) { return ivec4(w << 24, w << 16, w << 8, w) >> 24; }

// A weight block: its f16 scale, and its 32 values (q8_0: 8 words of signed bytes; q4_0: 4 words
// of nibbles, byte j holding element j in its low nibble and j + 16 in its high one). Loaded once,
// it multiplies several columns of activations (matvec's batch).
struct WeightBlock {
  float scale;
  uint words[8];
};

WeightBlock weight_block(uint m, uint block) {
  WeightBlock w;
#if WEIGHT_DTYPE == 3
  const uint b = block * 34;
  for (uint k = 0; k < 8; ++k) w.words[k] = weight_bits_at(m, b + 2 + 4 * k);
#else
  const uint b = block * 18;
  for (uint k = 0; k < 4; ++k) w.words[k] = weight_bits_at(m, b + 2 + 4 * k);
  for (uint k = 4; k < 8; ++k) w.words[k] = 0;
#endif
  w.scale = block_scale(m, b);
  return w;
}

// A weight block times 32 activations in q8 (q, d from quantize_block): (d_w * d) * the integer
// dot product, as the CPU's matmul_blocks computes each block.
float block_dot(WeightBlock w, uint q[8], float d) {
  ivec4 sum = ivec4(0);
#if WEIGHT_DTYPE == 3
  for (uint k = 0; k < 8; ++k) sum += signed_bytes(w.words[k]) * signed_bytes(q[k]);
#else
  for (uint k = 0; k < 4; ++k) {
    const uint n = w.words[k];
    const ivec4 low = ivec4(uvec4(n, n >> 8, n >> 16, n >> 24) & 15u) - 8;
    const ivec4 high = ivec4(uvec4(n >> 4, n >> 12, n >> 20, n >> 28) & 15u) - 8;
    sum += low * signed_bytes(q[k]) + high * signed_bytes(q[k + 4]);
  }
#endif
  precise float product = w.scale * d * float(sum.x + sum.y + sum.z + sum.w);
  return product;
}

// Block `block` of matrix m times 32 activations in q8.
float block_product(uint m, uint block, uint q[8], float d) { return block_dot(weight_block(m, block), q, d); }
#endif
