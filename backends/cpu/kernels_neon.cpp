// aarch64 NEON kernels. This file is compiled twice: as is (baseline armv8-a, the "neon" path)
// and, through kernels_neon_dotprod.cpp, with +dotprod, where the q8_0 / q4_0 block products use
// sdot (vdotq_s32) instead of widening multiplies. Everything has internal linkage (see
// matmul_tiles.h), so the two copies never mix.
#include <arm_neon.h>

#include <cstring>

#include "kernel_table.h"
#include "four_lane_tiles.h"
#include "linear_attention_tiles.h"
#include "matmul_tiles.h"
#include "softmax_attention_tiles.h"

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

struct Neon : tiles::FourLanes<Neon, float32x4_t> {
  using Vec = float32x4_t;
  static Vec zero() { return vdupq_n_f32(0); }
  template <typename W>
  static Vec load(const W* p) { return load4(p); }
  static void store(float* p, Vec v) { vst1q_f32(p, v); }
  static Vec add(Vec a, Vec b) { return vaddq_f32(a, b); }
  static Vec fma(Vec acc, Vec a, Vec b) { return vfmaq_f32(acc, a, b); }
  static Vec madd(Vec acc, Vec a, float s) { return vfmaq_n_f32(acc, a, s); }
  static Vec scale(Vec a, float s) { return vmulq_n_f32(a, s); }
  static float hsum(Vec v) { return vaddvq_f32(v); }

  static constexpr size_t kAxpyTokens = 4;  // 16 sums, 4 row vectors: 20 of 32 registers

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
};

void matmul(const Matrix& w, const float* x, size_t n, const float* bias, float* y, size_t row_begin,
            size_t row_end) {
  tiles::matmul<Neon>(w, x, n, bias, y, row_begin, row_end);
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

// This file's table, under the name of the instruction set it was compiled for (twice: plain, and
// with sdot as kernels_neon_dotprod.cpp).
constexpr KernelTable kernels(const char* name) {
  return {name,
          Packing::None,
          matmul,
          tiles::linear_attention_step<Neon>,
          tiles::linear_attention_chunk<Neon>,
          tiles::softmax_attention<Neon>,
          silu_mul};
}

}  // namespace
}  // namespace t2r::cpu::neon

namespace t2r::cpu {

#if defined(__ARM_FEATURE_DOTPROD)
extern const KernelTable kNeonDotprodKernels = neon::kernels("neon-dotprod");
#else
extern const KernelTable kNeonKernels = neon::kernels("neon");
#endif

}  // namespace t2r::cpu
