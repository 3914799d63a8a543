// WebAssembly SIMD128 kernels (the "wasm-simd128" path): the NEON path's structure in 4-lane
// vectors. SIMD128 has no fused multiply-add (that is in relaxed SIMD, not in every engine), no
// f16 conversion and no horizontal sum, so products are multiply then add, f16 weights are
// converted with integer operations (exactly), and sums are reduced lane by lane. CMake compiles
// this file, and only this file, with -msimd128; everything in it has internal linkage (see
// matmul_tiles.h).
#include <wasm_simd128.h>

#include <cstring>

#include "kernel_table.h"
#include "kernels_reference.h"
#include "four_lane_tiles.h"
#include "linear_attention_tiles.h"
#include "matmul_tiles.h"
#include "softmax_attention_tiles.h"

namespace t2r::cpu::wasm {
namespace {

v128_t fma4(v128_t acc, v128_t a, v128_t b) { return wasm_f32x4_add(acc, wasm_f32x4_mul(a, b)); }
v128_t fma4(v128_t acc, v128_t a, float b) { return fma4(acc, a, wasm_f32x4_splat(b)); }

float hsum(v128_t v) {
  return (wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1)) +
         (wasm_f32x4_extract_lane(v, 2) + wasm_f32x4_extract_lane(v, 3));
}

float hmax(v128_t v) {
  const float a = wasm_f32x4_extract_lane(v, 0), b = wasm_f32x4_extract_lane(v, 1);
  const float c = wasm_f32x4_extract_lane(v, 2), d = wasm_f32x4_extract_lane(v, 3);
  const float ab = a > b ? a : b, cd = c > d ? c : d;
  return ab > cd ? ab : cd;
}

// Four f16 values (zero-extended into 32-bit lanes) to f32, exactly: the exponent rebased from 15
// to 127, infinities and NaNs kept at the top exponent, subnormals renormalized by a subtraction.
v128_t f16_to_f32(v128_t h) {
  const v128_t exponent_mask = wasm_i32x4_splat(0x7c00 << 13);
  v128_t bits = wasm_i32x4_shl(wasm_v128_and(h, wasm_i32x4_splat(0x7fff)), 13);
  const v128_t exponent = wasm_v128_and(bits, exponent_mask);
  bits = wasm_i32x4_add(bits, wasm_i32x4_splat((127 - 15) << 23));
  const v128_t special = wasm_i32x4_eq(exponent, exponent_mask);
  bits = wasm_i32x4_add(bits, wasm_v128_and(special, wasm_i32x4_splat((128 - 16) << 23)));
  const v128_t subnormal = wasm_i32x4_eq(exponent, wasm_i32x4_splat(0));
  const v128_t renormalized =
      wasm_f32x4_sub(wasm_i32x4_add(bits, wasm_i32x4_splat(1 << 23)), wasm_i32x4_splat(113 << 23));
  bits = wasm_v128_bitselect(renormalized, bits, subnormal);
  return wasm_v128_or(bits, wasm_i32x4_shl(wasm_v128_and(h, wasm_i32x4_splat(0x8000)), 16));
}

// Weights as f32 vectors of 4.
v128_t load4(const float* p) { return wasm_v128_load(p); }
v128_t load4(const tiles::F16* p) { return f16_to_f32(wasm_u32x4_load16x4(&p->bits)); }
v128_t load4(const tiles::BF16* p) { return wasm_i32x4_shl(wasm_u32x4_load16x4(&p->bits), 16); }
float f16_at(const unsigned char* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return wasm_f32x4_extract_lane(f16_to_f32(wasm_i32x4_splat(h)), 0);
}

// sum_j w[j] x[j] over 32 signed bytes, in 4 int32 lanes: the bytes widened to int16 and
// multiplied pairwise into int32 (no intermediate can overflow).
v128_t dot_bytes(v128_t w0, v128_t w1, v128_t x0, v128_t x1) {
  const v128_t a = wasm_i32x4_add(wasm_i32x4_dot_i16x8(wasm_i16x8_extend_low_i8x16(w0), wasm_i16x8_extend_low_i8x16(x0)),
                                  wasm_i32x4_dot_i16x8(wasm_i16x8_extend_high_i8x16(w0), wasm_i16x8_extend_high_i8x16(x0)));
  const v128_t b = wasm_i32x4_add(wasm_i32x4_dot_i16x8(wasm_i16x8_extend_low_i8x16(w1), wasm_i16x8_extend_low_i8x16(x1)),
                                  wasm_i32x4_dot_i16x8(wasm_i16x8_extend_high_i8x16(w1), wasm_i16x8_extend_high_i8x16(x1)));
  return wasm_i32x4_add(a, b);
}

struct Simd128 : tiles::FourLanes<Simd128, v128_t> {
  using Vec = v128_t;
  static Vec zero() { return wasm_f32x4_splat(0); }
  template <typename W>
  static Vec load(const W* p) { return load4(p); }
  static void store(float* p, Vec v) { wasm_v128_store(p, v); }
  static Vec add(Vec a, Vec b) { return wasm_f32x4_add(a, b); }
  static Vec fma(Vec acc, Vec a, Vec b) { return fma4(acc, a, b); }
  static Vec madd(Vec acc, Vec a, float s) { return fma4(acc, a, s); }
  static Vec scale(Vec a, float s) { return wasm_f32x4_mul(a, wasm_f32x4_splat(s)); }
  static float hsum(Vec v) { return wasm::hsum(v); }

  static constexpr size_t kAxpyTokens = 2;  // 8 sums, 4 row vectors: within x86-64's 16 registers

  // The widened products take signed bytes on both sides: no corrections needed.
  template <DType>
  static void quantize(const float* x, size_t blocks, int8_t* q, float* d, int32_t*) {
    for (size_t b = 0; b < blocks; ++b, x += 32, q += 32) {
      v128_t v[8];
      v128_t amax = wasm_f32x4_splat(0);
      for (size_t m = 0; m < 8; ++m) {
        v[m] = wasm_v128_load(x + 4 * m);
        amax = wasm_f32x4_max(amax, wasm_f32x4_abs(v[m]));
      }
      d[b] = hmax(amax) / 127;
      const v128_t inverse = wasm_f32x4_splat(d[b] != 0 ? 1.0f / d[b] : 0.0f);
      v128_t halves[4];
      for (size_t m = 0; m < 4; ++m) {
        // nearest rounds ties to even, as the reference's nearbyint; the narrowing saturates.
        const v128_t lo = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_nearest(wasm_f32x4_mul(v[2 * m], inverse)));
        const v128_t hi = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_nearest(wasm_f32x4_mul(v[2 * m + 1], inverse)));
        halves[m] = wasm_i16x8_narrow_i32x4(lo, hi);
      }
      wasm_v128_store(q, wasm_i8x16_narrow_i16x8(halves[0], halves[1]));
      wasm_v128_store(q + 16, wasm_i8x16_narrow_i16x8(halves[2], halves[3]));
    }
  }

  // acc + (sum_j w[j] x[j]) d_w d_x for block b of the row at w.
  template <DType T>
  static v128_t add_block(const unsigned char* w, size_t b, const int8_t* q, const float* d, v128_t acc) {
    const unsigned char* block = w + b * (T == DType::Q8_0 ? 34 : 18);
    v128_t w0, w1;
    if constexpr (T == DType::Q8_0) {
      w0 = wasm_v128_load(block + 2);
      w1 = wasm_v128_load(block + 18);
    } else {
      const v128_t raw = wasm_v128_load(block + 2);
      w0 = wasm_i8x16_sub(wasm_v128_and(raw, wasm_i8x16_splat(0x0f)), wasm_i8x16_splat(8));
      w1 = wasm_i8x16_sub(wasm_u8x16_shr(raw, 4), wasm_i8x16_splat(8));
    }
    const v128_t sums = dot_bytes(w0, w1, wasm_v128_load(q + 32 * b), wasm_v128_load(q + 32 * b + 16));
    return fma4(acc, wasm_f32x4_convert_i32x4(sums), f16_at(block) * d[b]);
  }

};

void matmul(const Matrix& w, const float* x, size_t n, const float* bias, float* y, size_t row_begin,
            size_t row_end) {
  tiles::matmul<Simd128>(w, x, n, bias, y, row_begin, row_end);
}

}  // namespace
}  // namespace t2r::cpu::wasm

namespace t2r::cpu {

extern const KernelTable kWasmSimd128Kernels = {"wasm-simd128",
                                                Packing::None,
                                                wasm::matmul,
                                                tiles::linear_attention_step<wasm::Simd128>,
                                                tiles::linear_attention_chunk<wasm::Simd128>,
                                                tiles::softmax_attention<wasm::Simd128>,
                                                reference::silu_mul};

}  // namespace t2r::cpu
