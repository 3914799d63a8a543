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
#include "linear_attention_tiles.h"
#include "matmul_tiles.h"

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
// The first n (< 4) values at p, the rest zero.
template <typename W>
v128_t load_first(const W* p, size_t n) {
  W part[4] = {};
  std::memcpy(part, p, n * sizeof(W));
  return load4(part);
}

void store_first(float* p, v128_t v, size_t n) {
  float part[4];
  wasm_v128_store(part, v);
  std::memcpy(p, part, n * sizeof(float));
}

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

struct Simd128 {
  // Four sums in flight: enough to hide the add latency.
  template <typename W>
  static float dot_row(const W* w, const float* x, size_t len) {
    v128_t acc[4] = {wasm_f32x4_splat(0), wasm_f32x4_splat(0), wasm_f32x4_splat(0), wasm_f32x4_splat(0)};
    size_t i = 0;
    for (; i + 16 <= len; i += 16) {
      for (size_t u = 0; u < 4; ++u) acc[u] = fma4(acc[u], load4(w + i + 4 * u), wasm_v128_load(x + i + 4 * u));
    }
    for (; i + 4 <= len; i += 4) acc[0] = fma4(acc[0], load4(w + i), wasm_v128_load(x + i));
    if (i < len) acc[1] = fma4(acc[1], load_first(w + i, len - i), load_first(x + i, len - i));
    return hsum(wasm_f32x4_add(wasm_f32x4_add(acc[0], acc[1]), wasm_f32x4_add(acc[2], acc[3])));
  }

  // 16 sums, 4 token vectors and a weight vector in WebAssembly's locals, which the engine maps to
  // the 16 (x86-64) or 32 (aarch64) vector registers.
  static constexpr size_t kTileRows = 4, kTileTokens = 4;
  static constexpr size_t kStreamedTokens = 4;
  template <typename W>
  static constexpr bool kRearrangesInput = false;  // decoding reads x as it is

  // One sum per (row, token), one vector step at a time, the tail zero-padded.
  template <size_t R, size_t T, typename W>
  static void dot_tile(const W* w, size_t stride, const float* x, size_t x_stride, size_t len, float* out) {
    v128_t acc[T][R];
    for (size_t t = 0; t < T; ++t) {
      for (size_t r = 0; r < R; ++r) acc[t][r] = wasm_f32x4_splat(0);
    }
    const auto step = [&](size_t i, auto load_x, auto load_w) {
      v128_t xv[T];
      for (size_t t = 0; t < T; ++t) xv[t] = load_x(x + t * x_stride + i);
      for (size_t r = 0; r < R; ++r) {
        const v128_t wv = load_w(w + r * stride + i);
        for (size_t t = 0; t < T; ++t) acc[t][r] = fma4(acc[t][r], wv, xv[t]);
      }
    };
    size_t i = 0;
    for (; i + 4 <= len; i += 4) {
      step(i, [](const float* p) { return wasm_v128_load(p); }, [](const W* p) { return load4(p); });
    }
    if (i < len) {
      const size_t n = len - i;
      step(i, [n](const float* p) { return load_first(p, n); }, [n](const W* p) { return load_first(p, n); });
    }
    for (size_t t = 0; t < T; ++t) {
      for (size_t r = 0; r < R; ++r) out[t * R + r] = hsum(acc[t][r]);
    }
  }

  static constexpr size_t kAxpyTokens = 2;  // 8 sums, 4 row vectors: within x86-64's 16 registers

  // y[t][0..d) += sum_i coef[t, i] b[i][0..d) (linear_attention_tiles.h), 16 columns at a time,
  // held across the rows of b; a narrower last block zero-padded.
  template <size_t T>
  static void axpy_tile(const float* coef, size_t coef_row, size_t coef_col, const float* b, size_t b_stride,
                        size_t count, size_t d, float* y, size_t y_stride) {
    for (size_t j = 0; j < d; j += 16) {
      const size_t width = d - j < 16 ? d - j : 16;
      const auto load = [width](const float* p, size_t m) {
        return 4 * m + 4 <= width ? wasm_v128_load(p) : load_first(p, 4 * m < width ? width - 4 * m : 0);
      };
      v128_t acc[T][4];
      for (size_t t = 0; t < T; ++t) {
        for (size_t m = 0; m < 4; ++m) acc[t][m] = load(y + t * y_stride + j + 4 * m, m);
      }
      for (size_t i = 0; i < count; ++i) {
        v128_t row[4];
        for (size_t m = 0; m < 4; ++m) row[m] = load(b + i * b_stride + j + 4 * m, m);
        for (size_t t = 0; t < T; ++t) {
          const float k = coef[t * coef_row + i * coef_col];
          for (size_t m = 0; m < 4; ++m) acc[t][m] = fma4(acc[t][m], row[m], k);
        }
      }
      for (size_t t = 0; t < T; ++t) {
        for (size_t m = 0; m < 4; ++m) {
          float* p = y + t * y_stride + j + 4 * m;
          if (4 * m + 4 <= width) {
            wasm_v128_store(p, acc[t][m]);
          } else if (4 * m < width) {
            store_first(p, acc[t][m], width - 4 * m);
          }
        }
      }
    }
  }

  template <typename W>
  static void convert(const W* src, size_t len, float* dst) {
    size_t i = 0;
    for (; i + 4 <= len; i += 4) wasm_v128_store(dst + i, load4(src + i));
    if (i < len) store_first(dst + i, load_first(src + i, len - i), len - i);
  }

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

  static constexpr size_t block_tile_tokens(DType) { return 1; }

  template <DType Q, size_t R, size_t T, size_t U>
  static void dot_blocks(const unsigned char* w, size_t stride, const tiles::QuantizedTile& x, size_t t0,
                         size_t blocks, float* out) {
    for (size_t t = 0; t < T; ++t) {
      dot_blocks_one<Q, R, U == 1 ? 1 : 4>(w, stride, x.q_of(t0 + t), x.d_of(t0 + t), blocks, out + t * R);
    }
  }

  // U blocks in flight per row.
  template <DType T, size_t R, size_t U>
  static void dot_blocks_one(const unsigned char* w, size_t stride, const int8_t* q, const float* d, size_t blocks,
                             float* out) {
    v128_t acc[R][U];
    for (size_t r = 0; r < R; ++r) {
      for (size_t u = 0; u < U; ++u) acc[r][u] = wasm_f32x4_splat(0);
    }
    size_t b = 0;
    for (; b + U <= blocks; b += U) {
      for (size_t u = 0; u < U; ++u) {
        for (size_t r = 0; r < R; ++r) acc[r][u] = add_block<T>(w + r * stride, b + u, q, d, acc[r][u]);
      }
    }
    for (; b < blocks; ++b) {
      for (size_t r = 0; r < R; ++r) acc[r][0] = add_block<T>(w + r * stride, b, q, d, acc[r][0]);
    }
    for (size_t r = 0; r < R; ++r) {
      for (size_t u = 1; u < U; ++u) acc[r][0] = wasm_f32x4_add(acc[r][0], acc[r][u]);
      out[r] = hsum(acc[r][0]);
    }
  }
};

void matmul(const Matrix& w, const float* x, size_t n, const float* bias, float* y, size_t row_begin,
            size_t row_end) {
  tiles::matmul<Simd128>(w, x, n, bias, y, row_begin, row_end);
}

void linear_attention_step(float* state, float* normalizer, const float* phi_q, const float* phi_k, const float* v,
                           size_t r, size_t d_v, float floor, float* out) {
  float denominator = 0;
  for (size_t i = 0; i < r; ++i) {
    normalizer[i] += phi_k[i];
    denominator += phi_q[i] * normalizer[i];
  }
  const float inverse = 1.0f / (denominator > floor ? denominator : floor);
  // 16 columns at a time, v and out held across the r rows.
  size_t j = 0;
  for (; j + 16 <= d_v; j += 16) {
    v128_t vv[4], acc[4];
    for (size_t m = 0; m < 4; ++m) {
      vv[m] = wasm_v128_load(v + j + 4 * m);
      acc[m] = wasm_f32x4_splat(0);
    }
    for (size_t i = 0; i < r; ++i) {
      float* row = state + i * d_v + j;
      for (size_t m = 0; m < 4; ++m) {
        const v128_t s = fma4(wasm_v128_load(row + 4 * m), vv[m], phi_k[i]);
        wasm_v128_store(row + 4 * m, s);
        acc[m] = fma4(acc[m], s, phi_q[i]);
      }
    }
    for (size_t m = 0; m < 4; ++m) wasm_v128_store(out + j + 4 * m, wasm_f32x4_mul(acc[m], wasm_f32x4_splat(inverse)));
  }
  for (; j < d_v; ++j) {
    float acc = 0;
    for (size_t i = 0; i < r; ++i) {
      float& s = state[i * d_v + j];
      s += phi_k[i] * v[j];
      acc += phi_q[i] * s;
    }
    out[j] = acc * inverse;
  }
}

void softmax_attention(const float* q, const float* keys, const float* values, size_t length, size_t stride,
                       size_t head_dim, float* scores, float* out) {
  for (size_t t = 0; t < length; ++t) scores[t] = Simd128::dot_row(keys + t * stride, q, head_dim);
  softmax(scores, length);
  size_t j = 0;
  for (; j + 16 <= head_dim; j += 16) {
    v128_t acc[4] = {wasm_f32x4_splat(0), wasm_f32x4_splat(0), wasm_f32x4_splat(0), wasm_f32x4_splat(0)};
    for (size_t t = 0; t < length; ++t) {
      const float* row = values + t * stride + j;
      for (size_t m = 0; m < 4; ++m) acc[m] = fma4(acc[m], wasm_v128_load(row + 4 * m), scores[t]);
    }
    for (size_t m = 0; m < 4; ++m) wasm_v128_store(out + j + 4 * m, acc[m]);
  }
  for (; j < head_dim; ++j) {
    float acc = 0;
    for (size_t t = 0; t < length; ++t) acc += scores[t] * values[t * stride + j];
    out[j] = acc;
  }
}

}  // namespace
}  // namespace t2r::cpu::wasm

namespace t2r::cpu {

extern const KernelTable kWasmSimd128Kernels = {"wasm-simd128", Packing::None, wasm::matmul, wasm::linear_attention_step,
                                                tiles::linear_attention_chunk<wasm::Simd128>,
                                                wasm::softmax_attention, reference::silu_mul};

}  // namespace t2r::cpu
