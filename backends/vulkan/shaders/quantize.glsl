// Activations to q8 blocks, as the CPU quantizes them for q8_0 and q4_0 weights
// (cpu::reference::quantize_activations): quantize.comp's pass, and the T2R feature map's q and k.

// a / b rounded to nearest even, for positive normal a and b with a normal quotient, by long
// division of the significands: Vulkan lets OpFDiv be 2.5 ulp off, and a scale an ulp off
// changes the rounding of the quantized values.
float divide_rn(float a, float b) {
  const uint ua = floatBitsToUint(a), ub = floatBitsToUint(b), mb = (ub & 0x7fffffu) | 0x800000u;
  uint r = (ua & 0x7fffffu) | 0x800000u;
  int e = int(ua >> 23) - int(ub >> 23) + 126;
  if (r < mb) {
    r <<= 1;
    --e;
  }
  uint q = 0;  // the 24 significand bits, then r is twice the remainder
  for (uint i = 0; i < 24; ++i) {
    q <<= 1;
    if (r >= mb) {
      r -= mb;
      q |= 1u;
    }
    r <<= 1;
  }
  if (r > mb || (r == mb && (q & 1u) != 0)) ++q;  // a carry into the exponent is still right
  return uintBitsToFloat((uint(e) << 23) + q);
}

// 32 activations to q8 as cpu::reference::quantize_activations: d = max|x| / 127 and
// q = x * (1 / d) rounded half to even, element 4k + j in byte j of word k of q; returns d.
// Below 127 times the smallest normal float d is 0 (devices may flush subnormals).
float quantize_block(float v[32], out uint q[8]) {
  float amax = 0.0;
  for (uint j = 0; j < 32; ++j) amax = max(amax, abs(v[j]));
  const float d = amax >= 127.0 * 1.17549435e-38 ? divide_rn(amax, 127.0) : 0.0;
  const float inverse = d != 0.0 ? divide_rn(1.0, d) : 0.0;
  for (uint k = 0; k < 8; ++k) {
    uint word = 0;
    for (uint j = 0; j < 4; ++j) word |= (uint(int(roundEven(v[4 * k + j] * inverse))) & 0xffu) << (8 * j);
    q[k] = word;
  }
  return d;
}
