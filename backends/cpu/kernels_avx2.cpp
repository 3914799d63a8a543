// AVX2 + FMA + F16C kernels (Haswell, Zen 1 and later). CMake compiles this file, and only this
// file, with those flags; everything in it has internal linkage (see matmul_tiles.h).
#include <immintrin.h>

#include <cstring>

#include "kernel_table.h"
#include "linear_attention_tiles.h"
#include "matmul_tiles.h"
#include "softmax_attention_tiles.h"

namespace t2r::cpu::avx2 {
namespace {

constexpr int32_t kMaskTable[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

// The first n (0..8) lanes set, for partial loads and stores.
__m256i lane_mask(size_t n) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kMaskTable + 8 - n)); }

float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

float hmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

// The f16 scale at p, as 8 equal lanes.
__m256 broadcast_f16(const unsigned char* p) {
  int16_t h;
  std::memcpy(&h, p, 2);
  return _mm256_cvtph_ps(_mm_set1_epi16(h));
}

// Weights as f32 vectors: 8 at p, or the first n (<= 8) of them with the rest zero.
__m256 load8(const float* p) { return _mm256_loadu_ps(p); }
__m256 load8(const tiles::F16* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
__m256 load8(const tiles::BF16* p) {
  const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
}
__m256 load8(const float* p, size_t n) { return _mm256_maskload_ps(p, lane_mask(n)); }
template <typename W>
__m256 load8(const W* p, size_t n) {
  W part[8] = {};
  std::memcpy(part, p, n * sizeof(W));
  return load8(part);
}

// 32 unsigned bytes of w (at most 15: q4_0 nibbles, or ones) times 32 signed ones of x, summed in 8
// int32 lanes (lane i: bytes 4i..4i+3); maddubs' pairs cannot overflow.
__m256i dot_unsigned(__m256i w, __m256i x) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), _mm256_set1_epi16(1));
}

struct Avx2 {
  // matmul_tiles.h's vector primitives: 8 lanes, tails masked.
  using Vec = __m256;
  static constexpr size_t kLanes = 8;
  static Vec zero() { return _mm256_setzero_ps(); }
  template <typename W>
  static Vec load(const W* p) { return load8(p); }
  // Whole vectors unmasked: a masked load or store is slower (measured on Zen 4, 12 heads of
  // softmax attention over 2,048 positions: 580 -> 520 us, fastest of 8).
  template <typename W>
  static Vec load_first(const W* p, size_t n) { return n == 8 ? load8(p) : load8(p, n); }
  static void store(float* p, Vec v) { _mm256_storeu_ps(p, v); }
  static void store_first(float* p, Vec v, size_t n) {
    if (n == 8) return _mm256_storeu_ps(p, v);
    _mm256_maskstore_ps(p, lane_mask(n), v);
  }
  static Vec add(Vec a, Vec b) { return _mm256_add_ps(a, b); }
  static Vec fma(Vec acc, Vec a, Vec b) { return _mm256_fmadd_ps(a, b, acc); }
  static Vec madd(Vec acc, Vec a, float s) { return _mm256_fmadd_ps(_mm256_set1_ps(s), a, acc); }
  static Vec scale(Vec a, float s) { return _mm256_mul_ps(a, _mm256_set1_ps(s)); }
  static float hsum(Vec v) { return avx2::hsum(v); }

  // 12 sums and 3 token vectors: all 16 registers, the weights entering the FMAs from L1 (on
  // Zen 4, [768, 768] x 64 tokens: 1.47x the rate of 4 x 2).
  static constexpr size_t kTileRows = 4, kTileTokens = 3;
  // Rows streamed for a few tokens (matmul_tiles.h): 6 sums, 2 weight vectors and the token vectors.
  static constexpr size_t kStreamedRows = 2, kStreamedTokens = 3;
  template <typename W>
  static constexpr bool kRearrangesInput = false;  // decoding reads x as it is

  static constexpr size_t kAxpyTokens = 2;  // 8 sums, 4 row vectors and a broadcast: 13 of 16 registers

  // q8_0 needs q alone. q4_0 works on pairs of blocks (the last one padded with a zero block): q
  // is stored per pair as the first 16 values of both blocks, then the last 16 of both, matching
  // the low and the high nibbles of the two weight blocks in one vector; c holds -8 times the sums
  // of x over each 32-bit lane's 8 values (the nibbles enter unsigned), then d repeated 4 times.
  template <DType T>
  static void quantize(const float* x, size_t blocks, int8_t* q, float* d, int32_t* c) {
    const size_t slots = T == DType::Q4_0 ? (blocks + 1) / 2 * 2 : blocks;
    float* d4 = reinterpret_cast<float*>(c + 4 * slots);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (size_t b = 0; b < slots; ++b, x += 32) {
      __m256i i8 = _mm256_setzero_si256();
      float scale = 0;
      if (b < blocks) {
        __m256 v[4], amax = _mm256_setzero_ps();
        for (size_t m = 0; m < 4; ++m) {
          v[m] = _mm256_loadu_ps(x + 8 * m);
          amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, v[m]));
        }
        scale = hmax(amax) / 127;
        const __m256 inverse = _mm256_set1_ps(scale != 0 ? 1.0f / scale : 0.0f);
        __m256i i32[4];
        for (size_t m = 0; m < 4; ++m) {
          const __m256 scaled = _mm256_mul_ps(v[m], inverse);
          i32[m] = _mm256_cvtps_epi32(_mm256_round_ps(scaled, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        }
        // packs works within 128-bit lanes; the permutation restores element order.
        const __m256i i16_lo = _mm256_packs_epi32(i32[0], i32[1]), i16_hi = _mm256_packs_epi32(i32[2], i32[3]);
        i8 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(i16_lo, i16_hi), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        d[b] = scale;
      }
      if constexpr (T == DType::Q8_0) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + 32 * b), i8);
      } else {
        int8_t* pair = q + 64 * (b / 2) + 16 * (b % 2);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(pair), _mm256_castsi256_si128(i8));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(pair + 32), _mm256_extracti128_si256(i8, 1));
        const __m256i lanes = dot_unsigned(_mm256_set1_epi8(1), i8);
        const __m128i sums = _mm_add_epi32(_mm256_castsi256_si128(lanes), _mm256_extracti128_si256(lanes, 1));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(c + 4 * b), _mm_sub_epi32(_mm_setzero_si128(), _mm_slli_epi32(sums, 3)));
        _mm_storeu_ps(d4 + 4 * b, _mm_set1_ps(scale));
      }
    }
  }

  // A q8_0 weight block ready for dot products: its bytes, their magnitudes (maddubs' unsigned
  // side; the signs move onto x) and its scale; unpacked once for every token of a tile.
  struct Q8Block {
    __m256i w, magnitude;
    __m256 scale;
  };
  static Q8Block q8_block(const unsigned char* block) {
    const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 2));
    return {w, _mm256_sign_epi8(w, w), broadcast_f16(block)};
  }
  // acc + (sum_j w[j] x[j]) d_x d_w for the 32 activations q (scale d), in 8 partial sums; with
  // |x| <= 127 a pair of maddubs products stays within int16 (2 * 128 * 127).
  static __m256 add_block(const Q8Block& w, const int8_t* q, const float* d, __m256 acc) {
    const __m256i x = _mm256_sign_epi8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(q)), w.w);
    const __m256i sums = _mm256_madd_epi16(_mm256_maddubs_epi16(w.magnitude, x), _mm256_set1_epi16(1));
    const __m256 scaled = _mm256_mul_ps(_mm256_cvtepi32_ps(sums), _mm256_broadcast_ss(d));
    return _mm256_fmadd_ps(scaled, w.scale, acc);
  }

  // A pair of q4_0 weight blocks (2p and, when Full, 2p + 1; lanes 0..3 belong to the first, 4..7
  // to the second) ready for dot products: the low and the high nibbles, and the two scales.
  struct Q4Pair {
    __m256i low, high;
    __m256 scales;
  };
  template <bool Full>
  static Q4Pair q4_pair(const unsigned char* block) {
    const __m128i first = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 2));
    const __m128i second = Full ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 20)) : _mm_setzero_si128();
    const __m256i raw = _mm256_set_m128i(second, first);
    int16_t h0, h1 = 0;
    std::memcpy(&h0, block, 2);
    if (Full) std::memcpy(&h1, block + 18, 2);
    return {_mm256_and_si256(raw, _mm256_set1_epi8(0x0f)),
            _mm256_and_si256(_mm256_srli_epi16(raw, 4), _mm256_set1_epi8(0x0f)),
            _mm256_cvtph_ps(_mm_unpacklo_epi64(_mm_set1_epi16(h0), _mm_set1_epi16(h1)))};
  }
  // acc + the products of a pair with its activations: q (64 bytes as quantize lays out a pair),
  // c (the pair's 8 correction words) and d4 (its 8 scales).
  static __m256 add_pair(const Q4Pair& w, const int8_t* q, const int32_t* c, const float* d4, __m256 acc) {
    // Each maddubs pair is at most 2 * 15 * 127, so the two halves add within int16.
    const __m256i pairs =
        _mm256_add_epi16(_mm256_maddubs_epi16(w.low, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q))),
                         _mm256_maddubs_epi16(w.high, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 32))));
    const __m256i sums = _mm256_add_epi32(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)),
                                          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c)));
    const __m256 scaled = _mm256_mul_ps(_mm256_cvtepi32_ps(sums), _mm256_loadu_ps(d4));
    return _mm256_fmadd_ps(scaled, w.scales, acc);
  }

  // Two tokens per tile: 4 rows x 2 tokens of sums, and the block being unpacked, in 16 registers;
  // each row's block is unpacked once for both, the weights coming again from L1 for the next two
  // (one token per tile unpacked every block again for every token).
  static constexpr size_t block_tile_tokens(DType) { return 2; }

  // V partial sums per row and token: 1 for tiles of tokens, 4 (as U = 2 asks, one token) for a
  // lone row, block (q8_0) or pair (q4_0) i into sum i % V, the blocks after the last multiple of
  // V into sum 0. Each token's sums are formed alike whatever T is: they do not depend on how
  // the tokens are tiled.
  template <DType Q, size_t R, size_t T, size_t U>
  static void dot_blocks(const unsigned char* w, size_t stride, const tiles::QuantizedTile& x, size_t t0,
                         size_t blocks, float* out) {
    constexpr size_t V = U == 1 ? 1 : 4;
    static_assert(V == 1 || T == 1, "partial sums per block in flight for one token only");
    __m256 acc[R][T][V];
    for (size_t r = 0; r < R; ++r) {
      for (size_t t = 0; t < T; ++t) {
        for (size_t v = 0; v < V; ++v) acc[r][t][v] = _mm256_setzero_ps();
      }
    }
    if constexpr (Q == DType::Q8_0) {
      const size_t whole = blocks / V * V;
      for (size_t b = 0; b < blocks; ++b) {
        for (size_t r = 0; r < R; ++r) {
          const Q8Block block = q8_block(w + r * stride + 34 * b);
          for (size_t t = 0; t < T; ++t) {
            __m256& sum = acc[r][t][b < whole ? b % V : 0];
            sum = add_block(block, x.q_of(t0 + t) + 32 * b, x.d_of(t0 + t) + b, sum);
          }
        }
      }
    } else {
      const size_t pairs = (blocks + 1) / 2, slots = pairs * 2, whole = blocks / 2 / V * V;
      for (size_t p = 0; p < pairs; ++p) {
        for (size_t r = 0; r < R; ++r) {
          const unsigned char* pair = w + r * stride + 36 * p;
          const Q4Pair block = 2 * p + 1 < blocks ? q4_pair<true>(pair) : q4_pair<false>(pair);
          for (size_t t = 0; t < T; ++t) {
            const int32_t* c = x.e_of(t0 + t);
            const float* d4 = reinterpret_cast<const float*>(c + 4 * slots);
            __m256& sum = acc[r][t][p < whole ? p % V : 0];
            sum = add_pair(block, x.q_of(t0 + t) + 64 * p, c + 8 * p, d4 + 8 * p, sum);
          }
        }
      }
    }
    for (size_t r = 0; r < R; ++r) {
      for (size_t t = 0; t < T; ++t) {
        for (size_t v = 1; v < V; ++v) acc[r][t][0] = _mm256_add_ps(acc[r][t][0], acc[r][t][v]);
        out[t * R + r] = hsum(acc[r][t][0]);
      }
    }
  }
};

void matmul(const Matrix& w, const float* x, size_t n, const float* bias, float* y, size_t row_begin,
            size_t row_end) {
  tiles::matmul<Avx2>(w, x, n, bias, y, row_begin, row_end);
}

// e^x as kernels_avx512.cpp's exp16 computes it, bit for bit: the same reduction and series, and
// 2^n applied as 2^(n/2) then 2^(n - n/2), exact until the last product (which rounds into the
// subnormals or overflows as vscalefps does).
__m256 exp8(__m256 x) {
  x = _mm256_min_ps(_mm256_set1_ps(89.0f), _mm256_max_ps(_mm256_set1_ps(-104.0f), x));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.42860682030941723e-6f), r);
  static constexpr float kTaylor[] = {1.0f / 720, 1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f, 1.0f};
  __m256 p = _mm256_set1_ps(1.0f / 5040);
  for (const float c : kTaylor) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
  const __m256i e = _mm256_cvtps_epi32(n), half = _mm256_srai_epi32(e, 1);
  const auto power = [](__m256i k) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k, _mm256_set1_epi32(127)), 23));
  };
  return _mm256_mul_ps(_mm256_mul_ps(p, power(half)), power(_mm256_sub_epi32(e, half)));
}

void silu_mul(float* gate, const float* up, size_t n) {
  for (size_t i = 0; i < n; i += 8) {
    const size_t lanes = n - i < 8 ? n - i : 8;
    const __m256 g = load8(gate + i, lanes);
    const __m256 silu = _mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), exp8(_mm256_sub_ps(_mm256_setzero_ps(), g))));
    _mm256_maskstore_ps(gate + i, lane_mask(lanes), _mm256_mul_ps(silu, load8(up + i, lanes)));
  }
}

}  // namespace
}  // namespace t2r::cpu::avx2

namespace t2r::cpu {

extern const KernelTable kAvx2Kernels = {"avx2",
                                         Packing::None,
                                         avx2::matmul,
                                         tiles::linear_attention_step<avx2::Avx2>,
                                         tiles::linear_attention_chunk<avx2::Avx2>,
                                         tiles::softmax_attention<avx2::Avx2>,
                                         avx2::silu_mul};

}  // namespace t2r::cpu
