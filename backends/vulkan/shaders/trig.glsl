// sin and cos of an angle to about an ulp for |x| < 4e5, the same on every device: the built-in
// sin and cos are accurate only near zero on many GPUs, and positions make angles of thousands
// of radians. Cody-Waite reduction by pi/2 in five parts (the first four of 6 bits, so that
// k * part is exact for k < 2^18), then Cephes' sinf/cosf polynomials on [-pi/4, pi/4].
vec2 sin_cos(float x) {
  const float k = round(x * 0.636619772);
  precise float r = x - k * 1.5625;
  r -= k * 0.00805664062;
  r -= k * 0.00023651123;
  r -= k * 3.15904617e-06;
  r -= k * 1.58932547e-08;
  const float z = r * r;
  precise float s = ((-1.9515295891e-4 * z + 8.3321608736e-3) * z - 1.6666654611e-1) * z * r + r;
  precise float c = ((2.443315711809948e-5 * z - 1.388731625493765e-3) * z + 4.166664568298827e-2) * z * z - 0.5 * z + 1.0;
  // x = r + q pi/2: rotate (sin r, cos r) by the quadrant.
  const int q = int(k) & 3;
  const vec2 sc = (q & 1) == 0 ? vec2(s, c) : vec2(c, -s);
  return (q & 2) == 0 ? sc : -sc;
}

// Rotate-half rotary position of the pair (u[j], u[j + d_h / 2]) with inverse frequency f_j
// (cpu::rotary): (a cos - b sin, b cos + a sin) at angle position * f_j.
vec2 rotate_pair(float a, float b, float inv_freq, uint position) {
  const vec2 sc = sin_cos(float(position) * inv_freq);
  precise float first = a * sc.y - b * sc.x;
  precise float second = b * sc.y + a * sc.x;
  return vec2(first, second);
}
