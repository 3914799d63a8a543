// AVX-512 kernels (F, BW, DQ, VL and VNNI: Ice Lake, Zen 4 and later). CMake compiles this file,
// and only this file, with those flags; everything in it has internal linkage (see matmul_tiles.h).
// Float work uses 512-bit vectors with masked tails; the q8_0 / q4_0 dot products use VNNI's
// vpdpbusd on two q8_0 blocks, or on the low or high halves of four q4_0 blocks, per instruction.
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12's AVX-512 headers trip its own uninitialized-variable warnings (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <cstring>
#include <type_traits>

#include "kernel_table.h"
#include "linear_attention_tiles.h"
#include "matmul_tiles.h"
#include "softmax_attention_tiles.h"

namespace t2r::cpu::avx512 {
namespace {

// The first n (0..16) lanes.
__mmask16 first_lanes(size_t n) { return __mmask16((1u << n) - 1); }

// f16 bits widened to 32-bit lanes, as f32: the sign moved to bit 31 and exponent and mantissa
// to bits 13..27, then scaled by 2^112, which rebiases the exponent (and makes subnormals normal)
// exactly. Infinity and NaN would come out finite, but model files hold neither (finite_check.h).
// Measured on Zen 4 decoding from DRAM: 24 GB/s, where vcvtph2ps from memory streams 17.
__m512 f16_lanes_to_f32(__m512i h) {
  const __m512i moved = _mm512_srai_epi32(_mm512_slli_epi32(h, 16), 3);
  const __m512i bits = _mm512_and_si512(moved, _mm512_set1_epi32(int(0x8fffe000u)));
  return _mm512_mul_ps(_mm512_castsi512_ps(bits), _mm512_set1_ps(0x1p112f));
}

// 2^e for e in [-126, 127].
float power_of_two(int e) {
  const uint32_t bits = uint32_t(e + 127) << 23;
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

// Weights as f32 vectors: the first n (<= 16) at p, the rest zero.
__m512 load16(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
__m512 load16(const tiles::F16* p, __mmask16 m) {
  return f16_lanes_to_f32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)));
}
__m512 load16(const tiles::BF16* p, __mmask16 m) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)), 16));
}
__m512 load16(const float* p) { return _mm512_loadu_ps(p); }
__m512 load16(const tiles::F16* p) {
  return f16_lanes_to_f32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))));
}
__m512 load16(const tiles::BF16* p) {
  const __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
}

// One block of 32 activations as q8: q = x / d rounded half to even, d = max|x| / 127 (values
// 0..15 in low, 16..31 in high, as 32-bit integers). Finite x gives |q| <= 127; an infinite or NaN
// x (activations that overflowed: the logits are NaN either way) converts to INT_MIN, so q is
// clamped to [-127, 127] to keep the integer sums of q from overflowing.
struct QuantizedBlock {
  __m512i low, high;
  float scale;
};
QuantizedBlock quantize_block(const float* x) {
  const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
  const float scale = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1))) / 127;
  const __m512 inverse = _mm512_set1_ps(scale != 0 ? 1.0f / scale : 0.0f);
  constexpr int kNearest = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
  const auto q = [&](__m512 v) {
    const __m512i rounded = _mm512_cvtps_epi32(_mm512_roundscale_ps(_mm512_mul_ps(v, inverse), kNearest));
    return _mm512_min_epi32(_mm512_max_epi32(rounded, _mm512_set1_epi32(-127)), _mm512_set1_epi32(127));
  };
  return {q(v0), q(v1), scale};
}

struct Avx512 {
  // matmul_tiles.h's vector primitives: 16 lanes, tails masked.
  using Vec = __m512;
  static constexpr size_t kLanes = 16;
  static Vec zero() { return _mm512_setzero_ps(); }
  template <typename W>
  static Vec load(const W* p) { return load16(p); }
  template <typename W>
  static Vec load_first(const W* p, size_t n) { return load16(p, first_lanes(n)); }
  static void store(float* p, Vec v) { _mm512_storeu_ps(p, v); }
  static void store_first(float* p, Vec v, size_t n) { _mm512_mask_storeu_ps(p, first_lanes(n), v); }
  static Vec add(Vec a, Vec b) { return _mm512_add_ps(a, b); }
  static Vec fma(Vec acc, Vec a, Vec b) { return _mm512_fmadd_ps(a, b, acc); }
  static Vec madd(Vec acc, Vec a, float s) { return _mm512_fmadd_ps(_mm512_set1_ps(s), a, acc); }
  static Vec scale(Vec a, float s) { return _mm512_mul_ps(a, _mm512_set1_ps(s)); }
  static float hsum(Vec v) { return _mm512_reduce_add_ps(v); }

  // Decoding f16 and bf16 rows (matmul_tiles.h's matvec_rows). Widening 16 weights to 32-bit
  // lanes takes a shuffle, and f16 two shifts, a mask and a multiply more: 4.5 cycles per 16 f16
  // weights, 24 GB/s, where memory gives 30. With x rearranged once per call instead, one 64-byte
  // load of 32 weights gives two vectors with no shuffle: the low halves of its 32-bit lanes (the
  // even weights) shifted up and the high halves (the odd ones) in place, each multiplied by x's
  // even or odd values; 2.9 cycles per 16 f16 weights. f16 bits moved into f32's sign, exponent
  // and mantissa read as w * 2^-112 (subnormal weights as f32 subnormals, exactly), and x carries
  // the 2^112: each fused multiply-add sees the exact product w * x, so the sums are bit for bit
  // those of converted weights. Where max|x| >= 2^16, x * 2^112 would overflow, so x carries
  // 2^(112 - k) and the factor 2^k returns the sums (exact unless a product falls below 2^(k - 126)).
  template <typename W>
  static constexpr bool kRearrangesInput = !std::is_same_v<W, float>;

  template <typename W>
  static float rearrange(const float* x, size_t len, float* out) {
    float scale = 1, factor = 1;
    if constexpr (std::is_same_v<W, tiles::F16>) {
      __m512 high = _mm512_setzero_ps();
      for (size_t i = 0; i < len; i += 16) {
        high = _mm512_max_ps(high, _mm512_abs_ps(_mm512_maskz_loadu_ps(first_lanes(len - i < 16 ? len - i : 16), x + i)));
      }
      const float largest = _mm512_reduce_max_ps(high);
      uint32_t bits;
      std::memcpy(&bits, &largest, sizeof bits);
      const int exponent = int(bits >> 23) - 127;  // NaN and infinity: 128, and they stay what they are
      const int k = exponent >= 16 ? exponent - 15 : 0;
      scale = power_of_two(112 - k);
      factor = power_of_two(k);
    }
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    const __m512 s = _mm512_set1_ps(scale);
    for (size_t i = 0; i < len; i += 32) {
      const __m512 a = _mm512_maskz_loadu_ps(first_lanes(len - i < 16 ? len - i : 16), x + i);
      const __m512 b = _mm512_maskz_loadu_ps(first_lanes(len - i <= 16 ? 0 : len - i < 32 ? len - i - 16 : 16), x + i + 16);
      _mm512_storeu_ps(out + i, _mm512_mul_ps(_mm512_permutex2var_ps(a, even, b), s));
      _mm512_storeu_ps(out + i + 16, _mm512_mul_ps(_mm512_permutex2var_ps(a, odd, b), s));
    }
    return factor;
  }

  // The even and odd weights of 32 as f32 bits (times 2^-112 for f16).
  static void split(__m512i v, tiles::F16, __m512& even, __m512& odd) {
    const __m512i f32_fields = _mm512_set1_epi32(int(0x8fffe000u));
    even = _mm512_castsi512_ps(_mm512_and_si512(_mm512_srai_epi32(_mm512_slli_epi32(v, 16), 3), f32_fields));
    odd = _mm512_castsi512_ps(_mm512_and_si512(_mm512_srai_epi32(v, 3), f32_fields));
  }
  static void split(__m512i v, tiles::BF16, __m512& even, __m512& odd) {
    even = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
    odd = _mm512_castsi512_ps(_mm512_and_si512(v, _mm512_set1_epi32(int(0xffff0000u))));
  }

  template <typename W>
  static float dot_rearranged(const W* w, const float* x, size_t len) {
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    const auto step = [&](size_t i, __m512i v, size_t a) {
      __m512 even, odd;
      split(v, W{}, even, odd);
      acc[a] = _mm512_fmadd_ps(even, _mm512_load_ps(x + i), acc[a]);
      acc[a + 1] = _mm512_fmadd_ps(odd, _mm512_load_ps(x + i + 16), acc[a + 1]);
    };
    size_t i = 0;
    for (; i + 64 <= len; i += 64) {
      step(i, _mm512_loadu_si512(w + i), 0);
      step(i + 32, _mm512_loadu_si512(w + i + 32), 2);
    }
    for (; i < len; i += 32) {
      step(i, _mm512_maskz_loadu_epi16(__mmask32(len - i >= 32 ? ~0u : (1u << (len - i)) - 1), w + i), 0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
  }

  // 24 sums, 4 token vectors and a weight vector: 29 of 32 registers. Per step, 4 loads of x
  // (from L2: x is swept once per 6 rows) and 6 of weights (from L1) feed 24 FMAs. Measured on
  // Zen 4 for [768, 768] x 64 tokens: 8% faster than 4 x 4, 30% than 8 x 2; at 512 tokens 84% of the f32 peak.
  static constexpr size_t kTileRows = 6, kTileTokens = 4;
  // Rows streamed for a few tokens (matmul_tiles.h): 16 sums, 4 weight vectors from memory and a
  // token vector, all in registers (wider tiles GCC spills).
  static constexpr size_t kStreamedRows = 4, kStreamedTokens = 4;

  static constexpr size_t kAxpyTokens = 4;  // 16 sums, 4 row vectors and a broadcast: 21 of 32 registers

  // Both block types work on groups of 4 blocks (the last one padded with zero blocks), one
  // group per vector: q is stored per group as the first 16 values of each of its blocks, then
  // the last 16 of each, matching the low and high halves (q8_0) or nibbles (q4_0) of the 4 weight
  // blocks; lanes 4k..4k + 3 belong to block k. vpdpbusd multiplies unsigned by signed bytes, so
  // the weights enter unsigned (q8_0 as w + 128, q4_0 nibbles as they are) and e holds
  // c = -128 (q8_0) or -8 (q4_0) times the sums of x over each 32-bit lane's 8 values, which
  // starts each sum so as to remove the offset exactly; then d repeated 4 times per block.
  template <DType T>
  static void quantize(const float* x, size_t blocks, int8_t* q, float* d, int32_t* e) {
    const size_t slots = (blocks + 3) / 4 * 4;
    const int32_t offset = T == DType::Q8_0 ? -128 : -8;
    int32_t* c = e;
    float* d4 = reinterpret_cast<float*>(e + 4 * slots);
    for (size_t b = 0; b < slots; ++b, x += 32) {
      __m256i bytes = _mm256_setzero_si256();
      float scale = 0;
      if (b < blocks) {
        const QuantizedBlock block = quantize_block(x);
        bytes = _mm256_set_m128i(_mm512_cvtepi32_epi8(block.high), _mm512_cvtepi32_epi8(block.low));
        scale = d[b] = block.scale;
      }
      const __m256i lanes = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(1), bytes);
      int8_t* group = q + 128 * (b / 4) + 16 * (b % 4);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(group), _mm256_castsi256_si128(bytes));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(group + 64), _mm256_extracti128_si256(bytes, 1));
      const __m128i pairs = _mm_add_epi32(_mm256_castsi256_si128(lanes), _mm256_extracti128_si256(lanes, 1));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(c + 4 * b), _mm_mullo_epi32(pairs, _mm_set1_epi32(offset)));
      _mm_storeu_ps(d4 + 4 * b, _mm_set1_ps(scale));
    }
  }

  // A row's weights for one step, group g (blocks 4g.. 4g + count - 1, count <= 4; missing
  // blocks zero), unpacked once and used for every token of the tile: the low and high halves
  // (q8_0, as w + 128) or nibbles (q4_0) of its blocks, and their f16 scales widened to match.
  struct Unpacked {
    __m512i low, high;
    __m512 scale;
  };

  template <DType Q>
  static Unpacked unpack_group(const unsigned char* w, size_t g, size_t count) {
    constexpr size_t kBlockBytes = Q == DType::Q8_0 ? 34 : 18;
    const unsigned char* block = w + kBlockBytes * 4 * g;
    __m512i first = _mm512_setzero_si512(), second = _mm512_setzero_si512();
    uint64_t scales = 0;  // the f16 scales, 16 bits each; zero for padding
    for (size_t k = 0; k < count; ++k) {
      const unsigned char* at = block + kBlockBytes * k;
      const __mmask16 lanes = __mmask16(0xf << (4 * k));
      first = _mm512_mask_broadcast_i32x4(first, lanes, _mm_loadu_si128(reinterpret_cast<const __m128i*>(at + 2)));
      if constexpr (Q == DType::Q8_0) {
        second = _mm512_mask_broadcast_i32x4(second, lanes, _mm_loadu_si128(reinterpret_cast<const __m128i*>(at + 18)));
      }
      uint16_t h;
      std::memcpy(&h, at, 2);
      scales |= uint64_t(h) << (16 * k);
    }
    const __m128 dw4 = _mm_cvtph_ps(_mm_cvtsi64_si128(int64_t(scales)));
    const __m512 scale = _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3),
                                               _mm512_castps128_ps512(dw4));
    if constexpr (Q == DType::Q8_0) {
      const __m512i sign = _mm512_set1_epi8(char(0x80));
      return {_mm512_xor_si512(first, sign), _mm512_xor_si512(second, sign), scale};
    } else {
      return {_mm512_and_si512(first, _mm512_set1_epi8(0x0f)),
              _mm512_and_si512(_mm512_srli_epi16(first, 4), _mm512_set1_epi8(0x0f)), scale};
    }
  }

  // acc + one token's products with the unpacked group g: its q, c and scales at g.
  static __m512 add_products(const Unpacked& w, size_t g, const int8_t* q, const int32_t* c, const float* dx,
                             __m512 acc) {
    __m512i sums = _mm512_dpbusd_epi32(_mm512_loadu_si512(c + 16 * g), w.low, _mm512_loadu_si512(q + 128 * g));
    sums = _mm512_dpbusd_epi32(sums, w.high, _mm512_loadu_si512(q + 128 * g + 64));
    const __m512 scaled = _mm512_mul_ps(_mm512_cvtepi32_ps(sums), _mm512_loadu_ps(dx + 16 * g));
    return _mm512_fmadd_ps(scaled, w.scale, acc);
  }

  static constexpr size_t block_tile_tokens(DType) { return 4; }

  // Steps over groups of 4 blocks, the last one partial; U steps in flight when U > 1.
  template <DType Q, size_t R, size_t T, size_t U>
  static void dot_blocks(const unsigned char* w, size_t stride, const tiles::QuantizedTile& x, size_t t0,
                         size_t blocks, float* out) {
    const size_t groups = blocks / 4, padded = (blocks + 3) / 4 * 4;  // the slots K::quantize filled
    const int8_t* q[T];
    const int32_t* c[T];
    const float* dx[T];
    for (size_t t = 0; t < T; ++t) {
      q[t] = x.q_of(t0 + t);
      c[t] = x.e_of(t0 + t);
      dx[t] = reinterpret_cast<const float*>(c[t] + 4 * padded);
    }
    __m512 acc[T][R][U];
    for (size_t t = 0; t < T; ++t) {
      for (size_t r = 0; r < R; ++r) {
        for (size_t u = 0; u < U; ++u) acc[t][r][u] = _mm512_setzero_ps();
      }
    }
    const auto step = [&](size_t g, size_t u, size_t count) {
      Unpacked wv[R];
      for (size_t r = 0; r < R; ++r) wv[r] = unpack_group<Q>(w + r * stride, g, count);
      for (size_t t = 0; t < T; ++t) {
        for (size_t r = 0; r < R; ++r) acc[t][r][u] = add_products(wv[r], g, q[t], c[t], dx[t], acc[t][r][u]);
      }
    };
    size_t g = 0;
    for (; g + U <= groups; g += U) {
      for (size_t u = 0; u < U; ++u) step(g + u, u, 4);
    }
    for (; g < groups; ++g) step(g, 0, 4);
    if (blocks % 4 != 0) step(g, 0, blocks % 4);
    for (size_t t = 0; t < T; ++t) {
      for (size_t r = 0; r < R; ++r) {
        __m512 sum = acc[t][r][0];
        for (size_t u = 1; u < U; ++u) sum = _mm512_add_ps(sum, acc[t][r][u]);
        out[t * R + r] = _mm512_reduce_add_ps(sum);
      }
    }
  }
};

// q8_0 / q4_0 weights packed Interleaved16 (kernels.h): each vpdpbusd multiplies 4 weights of 16
// rows by the same 4 activations of one token, broadcast from memory, so a block of 16 rows is
// 8 of them per token, and its scales are applied once per block to 16 rows at a time. Against the
// stored rows (whose weights must be unpacked per block) that is about 3x fewer instructions.
namespace interleaved {

constexpr size_t kRows = 16;
constexpr size_t kStripBlocks = 64;   // a (row, token)'s sum is added to y every 64 blocks, whatever n
constexpr size_t kTokens = 8;         // a register tile: 8 token sums, 8 weight vectors, the scales
constexpr size_t kPassTokens = 32;    // tokens quantized at once, each group's weights then reused by them all
constexpr size_t kBufferBlocks = 2048;  // activation blocks quantized at once: 80 KB on the stack
constexpr size_t kPrefetchTokens = 3;   // passes of this many tokens or more prefetch (matmul)

// Activations of `tokens` tokens (at most kPassTokens) over some blocks, quantized to q8: per block,
// the tokens' 32 values each, then their scales d, then c = offset * (sum of the block's values),
// which removes the weights' unsigned offset (q8_0 stored as w + 128, q4_0 nibbles as w + 8) from
// each integer sum exactly. Block after block, so that a tile reads them as one stream beside the
// weights' (one stream per token and array left the weights' without a prefetcher: measured at 8
// tokens on [14336, 4096] q8_0 from DRAM, 1.6x slower).
struct Activations {
  unsigned char* base;
  size_t tokens;
  size_t block_bytes() const { return tokens * 40; }
  int8_t* q(size_t b, size_t t) const { return reinterpret_cast<int8_t*>(base + b * block_bytes() + 32 * t); }
  float* d(size_t b, size_t t) const { return reinterpret_cast<float*>(base + b * block_bytes() + 32 * tokens) + t; }
  int32_t* c(size_t b, size_t t) const {
    return reinterpret_cast<int32_t*>(base + b * block_bytes() + 36 * tokens) + t;
  }
};

// Token t's blocks [0, blocks) of x into a.
template <DType Q>
void quantize(const float* x, size_t blocks, const Activations& a, size_t t) {
  const int32_t offset = Q == DType::Q8_0 ? -128 : -8;
  for (size_t b = 0; b < blocks; ++b, x += 32) {
    const QuantizedBlock block = quantize_block(x);
    int8_t* q = a.q(b, t);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q), _mm512_cvtepi32_epi8(block.low));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 16), _mm512_cvtepi32_epi8(block.high));
    *a.d(b, t) = block.scale;
    *a.c(b, t) = offset * _mm512_reduce_add_epi32(_mm512_add_epi32(block.low, block.high));
  }
}

// y[t][rows of the group in [row_begin, row_end)] = (first ? bias (or 0) : y) + the group's sums over
// blocks [b0, b0 + count) of tokens t0..t0 + T - 1, prefetching the same blocks of `ahead` (when
// not null) into L2. Each token's integer sum of a block runs in two chains when registers allow
// (T <= 4: latency hidden for a few tokens); integer sums are exact, so the result does not depend
// on T.
template <DType Q, size_t T>
void tile(const unsigned char* group, size_t b0, size_t count, const Activations& x, size_t t0, float* y,
          size_t y_stride, __mmask16 lanes, bool first, const float* bias, const unsigned char* ahead) {
  constexpr size_t kUnitBytes = Q == DType::Q8_0 ? 512 : 256, kBlockBytes = kUnitBytes + 32;
  constexpr bool kTwoChains = T <= 4;
  __m512 acc[T];
  for (size_t t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
  for (size_t b = b0; b < b0 + count; ++b) {
    const unsigned char* at = group + b * kBlockBytes;
    if (ahead) {
      for (size_t l = 0; l < kBlockBytes; l += 64) tiles::prefetch_l2(ahead + b * kBlockBytes + l);
    }
    __m512i w[8];
    if constexpr (Q == DType::Q8_0) {
      for (size_t u = 0; u < 8; ++u) w[u] = _mm512_loadu_si512(at + 64 * u);
    } else {
      const __m512i nibble = _mm512_set1_epi8(0x0f);
      for (size_t u = 0; u < 4; ++u) {
        const __m512i packed = _mm512_loadu_si512(at + 64 * u);
        w[u] = _mm512_and_si512(packed, nibble);
        w[u + 4] = _mm512_and_si512(_mm512_srli_epi16(packed, 4), nibble);
      }
    }
    const __m512 scale = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(at + kUnitBytes)));
    // Unit by unit across the tokens, so that consecutive instructions are independent chains (left
    // to itself the compiler runs one token's chain of 8 and waits on each).
    const int32_t* q[T];
    __m512i sum[T], other[T];
#pragma GCC unroll 8
    for (size_t t = 0; t < T; ++t) {
      q[t] = reinterpret_cast<const int32_t*>(x.q(b, t0 + t));
      sum[t] = _mm512_set1_epi32(*x.c(b, t0 + t));
      other[t] = _mm512_setzero_si512();
    }
#pragma GCC unroll 8
    for (size_t u = 0; u < 8; ++u) {
#pragma GCC unroll 8
      for (size_t t = 0; t < T; ++t) {
        __m512i& chain = kTwoChains && u % 2 ? other[t] : sum[t];
        chain = _mm512_dpbusd_epi32(chain, w[u], _mm512_set1_epi32(q[t][u]));
      }
    }
#pragma GCC unroll 8
    for (size_t t = 0; t < T; ++t) {
      if constexpr (kTwoChains) sum[t] = _mm512_add_epi32(sum[t], other[t]);
      const float dx = *x.d(b, t0 + t);
      acc[t] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(sum[t]), scale), _mm512_set1_ps(dx), acc[t]);
    }
  }
  const __m512 start = first ? (bias ? _mm512_maskz_loadu_ps(lanes, bias) : _mm512_setzero_ps()) : __m512();
  for (size_t t = 0; t < T; ++t) {
    float* out = y + (t0 + t) * y_stride;
    const __m512 before = first ? start : _mm512_maskz_loadu_ps(lanes, out);
    _mm512_mask_storeu_ps(out, lanes, _mm512_add_ps(before, acc[t]));
  }
}

// Tokens in passes of up to kPassTokens, over as many blocks as the buffer holds for them (all of a
// row for one token; one strip for a full pass); within a pass, groups of 16 rows one after the other
// (the order decoding streams them), each multiplied strip by strip by every token while in cache.
template <DType Q>
void matmul(const Matrix& w, const float* x, size_t n, const float* bias, float* y, size_t row_begin,
            size_t row_end) {
  alignas(64) unsigned char buffer[kBufferBlocks * 40];
  const size_t blocks = w.cols / 32, group_bytes = kRows * row_bytes(Q, w.cols);
  const auto* packed = static_cast<const unsigned char*>(w.packed);
  for (size_t t0 = 0; t0 < n; t0 += kPassTokens) {
    const size_t tokens = tiles::smaller(kPassTokens, n - t0);
    const size_t strips = tiles::smaller((blocks + kStripBlocks - 1) / kStripBlocks,
                                         kBufferBlocks / (tokens * kStripBlocks));
    const size_t pass_blocks = tiles::smaller(blocks, strips * kStripBlocks);
    for (size_t p0 = 0; p0 < blocks; p0 += pass_blocks) {
      const size_t span = tiles::smaller(pass_blocks, blocks - p0);
      // Block indices relative to the pass: the group pointer starts at block p0.
      const Activations a{buffer, tokens};
      for (size_t t = 0; t < tokens; ++t) quantize<Q>(x + (t0 + t) * w.cols + p0 * 32, span, a, t);
      for (size_t r0 = row_begin / kRows * kRows; r0 < row_end; r0 += kRows) {
        const size_t lo = r0 > row_begin ? r0 : row_begin, hi = tiles::smaller(r0 + kRows, row_end);
        const __mmask16 lanes = __mmask16(((1u << (hi - r0)) - 1) & ~((1u << (lo - r0)) - 1));
        const unsigned char* group = packed + r0 / kRows * group_bytes + p0 * (group_bytes / blocks);
        float* out = y + t0 * w.rows + r0;
        const float* group_bias = bias ? bias + r0 : nullptr;
        // The group two ahead is fetched into L2 while this one is multiplied, block by block:
        // beyond a few tokens the hardware prefetcher alone left memory idle during the products
        // (measured, [65536, 768] q8_0 from DRAM: 8 tokens 4.25 -> 2.87 ms, 16 tokens 7.95 ->
        // 5.34 ms), where one token streams faster without it.
        const unsigned char* ahead =
            tokens >= kPrefetchTokens && r0 + 2 * kRows < row_end ? group + 2 * group_bytes : nullptr;
        for (size_t s = 0; s < span; s += kStripBlocks) {
          const size_t count = tiles::smaller(kStripBlocks, span - s);
          const bool first = p0 + s == 0;
          size_t t = 0;
          for (; t + kTokens <= tokens; t += kTokens) {
            tile<Q, kTokens>(group, s, count, a, t, out, w.rows, lanes, first, group_bias, t == 0 ? ahead : nullptr);
          }
          if (t < tokens) {
            tiles::with_tokens<kTokens - 1>(tokens - t, [&](auto rest) {
              tile<Q, decltype(rest)::value>(group, s, count, a, t, out, w.rows, lanes, first, group_bias,
                                             t == 0 ? ahead : nullptr);
            });
          }
        }
      }
    }
  }
}

}  // namespace interleaved

void matmul(const Matrix& w, const float* x, size_t n, const float* bias, float* y, size_t row_begin,
            size_t row_end) {
  if (w.packing == Packing::Interleaved16 && n > 0 && row_begin < row_end) {
    return w.dtype == DType::Q8_0 ? interleaved::matmul<DType::Q8_0>(w, x, n, bias, y, row_begin, row_end)
                                  : interleaved::matmul<DType::Q4_0>(w, x, n, bias, y, row_begin, row_end);
  }
  tiles::matmul<Avx512>(w, x, n, bias, y, row_begin, row_end);
}

// e^x to about 1 ulp: x = n ln 2 + r with |r| <= ln 2 / 2 (ln 2 in two parts, so r is exact), e^r
// by its Taylor series to r^7 (truncation under 0.05 ulp), then times 2^n by vscalefps, which
// overflows to infinity and underflows through the subnormals as exp does. The clamp keeps n finite
// without changing any result (e^89 overflows, e^-104 rounds to 0); a NaN passes through it.
__m512 exp16(__m512 x) {
  x = _mm512_min_ps(_mm512_set1_ps(89.0f), _mm512_max_ps(_mm512_set1_ps(-104.0f), x));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);  // ln 2's first 16 bits
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.42860682030941723e-6f), r);
  static constexpr float kTaylor[] = {1.0f / 720, 1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f, 1.0f};
  __m512 p = _mm512_set1_ps(1.0f / 5040);
  for (const float c : kTaylor) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
  return _mm512_scalef_ps(p, n);
}

// gate = gate / (1 + e^-gate) * up, as cpu::reference's, e^x by exp16.
void silu_mul(float* gate, const float* up, size_t n) {
  for (size_t i = 0; i < n; i += 16) {
    const __mmask16 m = first_lanes(n - i < 16 ? n - i : 16);
    const __m512 g = _mm512_maskz_loadu_ps(m, gate + i);
    const __m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), g));
    const __m512 silu = _mm512_div_ps(g, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
    _mm512_mask_storeu_ps(gate + i, m, _mm512_mul_ps(silu, _mm512_maskz_loadu_ps(m, up + i)));
  }
}

}  // namespace
}  // namespace t2r::cpu::avx512

namespace t2r::cpu {

extern const KernelTable kAvx512Kernels = {"avx512",
                                           Packing::Interleaved16,
                                           avx512::matmul,
                                           tiles::linear_attention_step<avx512::Avx512>,
                                           tiles::linear_attention_chunk<avx512::Avx512>,
                                           tiles::softmax_attention<avx512::Avx512>,
                                           avx512::silu_mul};

}  // namespace t2r::cpu
