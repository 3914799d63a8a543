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
