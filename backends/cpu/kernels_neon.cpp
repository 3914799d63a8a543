// aarch64 NEON kernels. This file is compiled twice: as is (baseline armv8-a, the "neon" path)
// and, through kernels_neon_dotprod.cpp, with +dotprod, where the q8_0 / q4_0 block products use
// sdot (vdotq_s32) instead of widening multiplies. Everything has internal linkage (see
// matmul_tiles.h), so the two copies never mix.
#include <arm_neon.h>

#include <cstring>

#include "kernel_table.h"
#include "linear_attention_tiles.h"
#include "matmul_tiles.h"

namespace t2r::cpu::neon {
namespace {

// Weights as f32 vectors of 4.
float32x4_t load4(const float* p) { return vld1q_f32(p); }
float32x4_t load4(const tiles::F16* p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(&p->bits))); }
float32x4_t load4(const tiles::BF16* p) { return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(&p->bits), 16)); }
// The first n (< 4) values at p, the rest zero.
template <typename W>
float32x4_t load_first(const W* p, size_t n) {
  W part[4] = {};
  std::memcpy(part, p, n * sizeof(W));
  return load4(part);
}

float f16_at(const unsigned char* p) {
  __fp16 h;
  std::memcpy(&h, p, 2);
  return float(h);
}

// sum_j w[j] x[j] over 32 signed bytes, in 4 int32 lanes.
int32x4_t dot_bytes(int8x16_t w0, int8x16_t w1, int8x16_t x0, int8x16_t x1) {
#if defined(__ARM_FEATURE_DOTPROD)
  return vdotq_s32(vdotq_s32(vdupq_n_s32(0), w0, x0), w1, x1);
#else
  // Pairs of products fit int16 (|w| <= 128, |x| <= 127).
  const int16x8_t a = vmlal_high_s8(vmull_s8(vget_low_s8(w0), vget_low_s8(x0)), w0, x0);
  const int16x8_t b = vmlal_high_s8(vmull_s8(vget_low_s8(w1), vget_low_s8(x1)), w1, x1);
  return vpadalq_s16(vpaddlq_s16(a), b);
#endif
}

struct Neon {
  // Four sums in flight: enough to hide the FMA latency.
  template <typename W>
  static float dot_row(const W* w, const float* x, size_t len) {
    float32x4_t acc[4] = {vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0)};
    size_t i = 0;
    for (; i + 16 <= len; i += 16) {
      for (size_t u = 0; u < 4; ++u) acc[u] = vfmaq_f32(acc[u], load4(w + i + 4 * u), vld1q_f32(x + i + 4 * u));
    }
    for (; i + 4 <= len; i += 4) acc[0] = vfmaq_f32(acc[0], load4(w + i), vld1q_f32(x + i));
    if (i < len) acc[1] = vfmaq_f32(acc[1], load_first(w + i, len - i), load_first(x + i, len - i));
    return vaddvq_f32(vaddq_f32(vaddq_f32(acc[0], acc[1]), vaddq_f32(acc[2], acc[3])));
  }

  // 16 sums, 4 token vectors and a weight vector: 21 of 32 registers.
  static constexpr size_t kTileRows = 4, kTileTokens = 4;
  // Streaming rows for a few tokens (matmul_tiles.h), one row at a time: as many as a register tile.
  static constexpr size_t kStreamedTokens = 4;
  template <typename W>
  static constexpr bool kRearrangesInput = false;  // decoding reads x as it is

  // One sum per (row, token), one vector step at a time, the tail zero-padded. W: float, or F16 and
  // BF16 converted as they are loaded (exactly, so the sums are those of converted weights).
  template <size_t R, size_t T, typename W>
  static void dot_tile(const W* w, size_t stride, const float* x, size_t x_stride, size_t len, float* out) {
    float32x4_t acc[T][R];
    for (size_t t = 0; t < T; ++t) {
      for (size_t r = 0; r < R; ++r) acc[t][r] = vdupq_n_f32(0);
    }
    const auto step = [&](size_t i, auto load_x, auto load_w) {
      float32x4_t xv[T];
      for (size_t t = 0; t < T; ++t) xv[t] = load_x(x + t * x_stride + i);
      for (size_t r = 0; r < R; ++r) {
        const float32x4_t wv = load_w(w + r * stride + i);
        for (size_t t = 0; t < T; ++t) acc[t][r] = vfmaq_f32(acc[t][r], wv, xv[t]);
      }
    };
    size_t i = 0;
    for (; i + 4 <= len; i += 4) step(i, [](const float* p) { return vld1q_f32(p); }, [](const W* p) { return load4(p); });
    if (i < len) {
      const size_t n = len - i;
      step(i, [n](const float* p) { return load_first(p, n); }, [n](const W* p) { return load_first(p, n); });
    }
    for (size_t t = 0; t < T; ++t) {
      for (size_t r = 0; r < R; ++r) out[t * R + r] = vaddvq_f32(acc[t][r]);
    }
  }

  static constexpr size_t kAxpyTokens = 4;  // 16 sums, 4 row vectors: 20 of 32 registers

  // y[t][0..d) += sum_i coef[t, i] b[i][0..d) (linear_attention_tiles.h), 16 columns at a time,
  // held in registers across the rows of b; a narrower last block zero-padded.
  template <size_t T>
  static void axpy_tile(const float* coef, size_t coef_row, size_t coef_col, const float* b, size_t b_stride,
                        size_t count, size_t d, float* y, size_t y_stride) {
    for (size_t j = 0; j < d; j += 16) {
      const size_t width = d - j < 16 ? d - j : 16;
      const auto load = [width](const float* p, size_t m) {
        return 4 * m + 4 <= width ? vld1q_f32(p) : load_first(p, 4 * m < width ? width - 4 * m : 0);
      };
      float32x4_t acc[T][4];
      for (size_t t = 0; t < T; ++t) {
        for (size_t m = 0; m < 4; ++m) acc[t][m] = load(y + t * y_stride + j + 4 * m, m);
      }
      for (size_t i = 0; i < count; ++i) {
        float32x4_t row[4];
        for (size_t m = 0; m < 4; ++m) row[m] = load(b + i * b_stride + j + 4 * m, m);
        for (size_t t = 0; t < T; ++t) {
          const float k = coef[t * coef_row + i * coef_col];
          for (size_t m = 0; m < 4; ++m) acc[t][m] = vfmaq_n_f32(acc[t][m], row[m], k);
        }
      }
      for (size_t t = 0; t < T; ++t) {
        for (size_t m = 0; m < 4; ++m) {
          float* p = y + t * y_stride + j + 4 * m;
          if (4 * m + 4 <= width) {
            vst1q_f32(p, acc[t][m]);
          } else if (4 * m < width) {
            float part[4];
            vst1q_f32(part, acc[t][m]);
            std::memcpy(p, part, (width - 4 * m) * sizeof(float));
          }
        }
      }
    }
  }

  template <typename W>
  static void convert(const W* src, size_t len, float* dst) {
    size_t i = 0;
    for (; i + 4 <= len; i += 4) vst1q_f32(dst + i, load4(src + i));
    if (i < len) {
      float part[4];
      vst1q_f32(part, load_first(src + i, len - i));
      std::memcpy(dst + i, part, (len - i) * sizeof(float));
    }
  }

  // sdot and the widening multiplies take signed bytes on both sides: no corrections needed.
  template <DType>
  static void quantize(const float* x, size_t blocks, int8_t* q, float* d, int32_t*) {
    for (size_t b = 0; b < blocks; ++b, x += 32, q += 32) {
      float32x4_t v[8];
      float32x4_t amax = vdupq_n_f32(0);
      for (size_t m = 0; m < 8; ++m) {
        v[m] = vld1q_f32(x + 4 * m);
        amax = vmaxq_f32(amax, vabsq_f32(v[m]));
      }
      d[b] = vmaxvq_f32(amax) / 127;
      const float inverse = d[b] != 0 ? 1.0f / d[b] : 0.0f;
      int16x8_t halves[4];
      for (size_t m = 0; m < 4; ++m) {
        // vcvtnq rounds to nearest, ties to even, as the reference's nearbyint.
        const int32x4_t lo = vcvtnq_s32_f32(vmulq_n_f32(v[2 * m], inverse));
        const int32x4_t hi = vcvtnq_s32_f32(vmulq_n_f32(v[2 * m + 1], inverse));
        halves[m] = vcombine_s16(vqmovn_s32(lo), vqmovn_s32(hi));
      }
      vst1q_s8(q, vcombine_s8(vqmovn_s16(halves[0]), vqmovn_s16(halves[1])));
      vst1q_s8(q + 16, vcombine_s8(vqmovn_s16(halves[2]), vqmovn_s16(halves[3])));
    }
  }

  // acc + (sum_j w[j] x[j]) d_w d_x for block b of the row at w.
  template <DType T>
  static float32x4_t add_block(const unsigned char* w, size_t b, const int8_t* q, const float* d, float32x4_t acc) {
    const unsigned char* block = w + b * (T == DType::Q8_0 ? 34 : 18);
    int8x16_t w0, w1;
    if constexpr (T == DType::Q8_0) {
      w0 = vld1q_s8(reinterpret_cast<const int8_t*>(block + 2));
      w1 = vld1q_s8(reinterpret_cast<const int8_t*>(block + 18));
    } else {
      const uint8x16_t raw = vld1q_u8(block + 2);
      w0 = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(raw, vdupq_n_u8(0x0f))), vdupq_n_s8(8));
      w1 = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(raw, 4)), vdupq_n_s8(8));
    }
    const int32x4_t sums = dot_bytes(w0, w1, vld1q_s8(q + 32 * b), vld1q_s8(q + 32 * b + 16));
    return vfmaq_n_f32(acc, vcvtq_f32_s32(sums), f16_at(block) * d[b]);
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
    float32x4_t acc[R][U];
    for (size_t r = 0; r < R; ++r) {
      for (size_t u = 0; u < U; ++u) acc[r][u] = vdupq_n_f32(0);
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
      for (size_t u = 1; u < U; ++u) acc[r][0] = vaddq_f32(acc[r][0], acc[r][u]);
      out[r] = vaddvq_f32(acc[r][0]);
    }
  }
};

void matmul(const Matrix& w, const float* x, size_t n, const float* bias, float* y, size_t row_begin,
            size_t row_end) {
  tiles::matmul<Neon>(w, x, n, bias, y, row_begin, row_end);
}

void linear_attention_step(float* state, float* normalizer, const float* phi_q, const float* phi_k, const float* v,
                           size_t r, size_t d_v, float floor, float* out) {
  float denominator = 0;
  for (size_t i = 0; i < r; ++i) {
    normalizer[i] += phi_k[i];
    denominator += phi_q[i] * normalizer[i];
  }
  const float inverse = 1.0f / (denominator > floor ? denominator : floor);
  // 16 columns at a time, v and out held in registers across the r rows.
  size_t j = 0;
  for (; j + 16 <= d_v; j += 16) {
    float32x4_t vv[4], acc[4];
    for (size_t m = 0; m < 4; ++m) {
      vv[m] = vld1q_f32(v + j + 4 * m);
      acc[m] = vdupq_n_f32(0);
    }
    for (size_t i = 0; i < r; ++i) {
      float* row = state + i * d_v + j;
      for (size_t m = 0; m < 4; ++m) {
        const float32x4_t s = vfmaq_n_f32(vld1q_f32(row + 4 * m), vv[m], phi_k[i]);
        vst1q_f32(row + 4 * m, s);
        acc[m] = vfmaq_n_f32(acc[m], s, phi_q[i]);
      }
    }
    for (size_t m = 0; m < 4; ++m) vst1q_f32(out + j + 4 * m, vmulq_n_f32(acc[m], inverse));
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

// e^x as kernels_avx512.cpp's exp16 computes it, bit for bit: the same reduction and series, and
// 2^n applied as 2^(n/2) then 2^(n - n/2), exact until the last product (which rounds into the
// subnormals or overflows as vscalefps does).
float32x4_t exp4(float32x4_t x) {
  x = vminq_f32(vdupq_n_f32(89.0f), vmaxq_f32(vdupq_n_f32(-104.0f), x));
  const float32x4_t n = vrndnq_f32(vmulq_n_f32(x, 1.44269504088896341f));
  float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(0.693145751953125f));
  r = vfmsq_f32(r, n, vdupq_n_f32(1.42860682030941723e-6f));
  static constexpr float kTaylor[] = {1.0f / 720, 1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f, 1.0f};
  float32x4_t p = vdupq_n_f32(1.0f / 5040);
  for (const float c : kTaylor) p = vfmaq_f32(vdupq_n_f32(c), p, r);
  const int32x4_t e = vcvtq_s32_f32(n), half = vshrq_n_s32(e, 1);
  const auto power = [](int32x4_t k) { return vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(k, vdupq_n_s32(127)), 23)); };
  return vmulq_f32(vmulq_f32(p, power(half)), power(vsubq_s32(e, half)));
}

void silu_mul(float* gate, const float* up, size_t n) {
  size_t i = 0;
  const auto silu_mul4 = [](float32x4_t g, float32x4_t u) {
    return vmulq_f32(vdivq_f32(g, vaddq_f32(vdupq_n_f32(1.0f), exp4(vnegq_f32(g)))), u);
  };
  for (; i + 4 <= n; i += 4) vst1q_f32(gate + i, silu_mul4(vld1q_f32(gate + i), vld1q_f32(up + i)));
  if (i < n) {
    float part[4];
    vst1q_f32(part, silu_mul4(load_first(gate + i, n - i), load_first(up + i, n - i)));
    std::memcpy(gate + i, part, (n - i) * sizeof(float));
  }
}

void softmax_attention(const float* q, const float* keys, const float* values, size_t length, size_t stride,
                       size_t head_dim, float* scores, float* out) {
  for (size_t t = 0; t < length; ++t) scores[t] = Neon::dot_row(keys + t * stride, q, head_dim);
  softmax(scores, length);
  size_t j = 0;
  for (; j + 16 <= head_dim; j += 16) {
    float32x4_t acc[4] = {vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0)};
    for (size_t t = 0; t < length; ++t) {
      const float* row = values + t * stride + j;
      for (size_t m = 0; m < 4; ++m) acc[m] = vfmaq_n_f32(acc[m], vld1q_f32(row + 4 * m), scores[t]);
    }
    for (size_t m = 0; m < 4; ++m) vst1q_f32(out + j + 4 * m, acc[m]);
  }
  for (; j < head_dim; ++j) {
    float acc = 0;
    for (size_t t = 0; t < length; ++t) acc += scores[t] * values[t * stride + j];
    out[j] = acc;
  }
}

}  // namespace
}  // namespace t2r::cpu::neon

namespace t2r::cpu {

#if defined(__ARM_FEATURE_DOTPROD)
extern const KernelTable kNeonDotprodKernels = {"neon-dotprod", Packing::None, neon::matmul, neon::linear_attention_step,
                                                tiles::linear_attention_chunk<neon::Neon>, neon::softmax_attention,
                                                neon::silu_mul};
#else
extern const KernelTable kNeonKernels = {"neon", Packing::None, neon::matmul, neon::linear_attention_step,
                                         tiles::linear_attention_chunk<neon::Neon>, neon::softmax_attention,
                                         neon::silu_mul};
#endif

}  // namespace t2r::cpu
