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

#include "kernel_table.h"
#include "matmul_tiles.h"

namespace t2r::cpu::avx512 {
namespace {

// The first n (0..16) lanes.
__mmask16 first_lanes(size_t n) { return __mmask16((1u << n) - 1); }

// The f16 scale at p, as 8 equal lanes.
__m256 broadcast_f16(const unsigned char* p) {
  int16_t h;
  std::memcpy(&h, p, 2);
  return _mm256_cvtph_ps(_mm_set1_epi16(h));
}

// Weights as f32 vectors: the first n (<= 16) at p, the rest zero.
__m512 load16(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
__m512 load16(const tiles::F16* p, __mmask16 m) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p)); }
__m512 load16(const tiles::BF16* p, __mmask16 m) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)), 16));
}
__m512 load16(const float* p) { return _mm512_loadu_ps(p); }
__m512 load16(const tiles::F16* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
__m512 load16(const tiles::BF16* p) {
  const __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
}

struct Avx512 {
  // Two vectors per row per step, four for a single row: enough independent sums to hide the
  // FMA latency. Tails use masked loads.
  template <size_t R, typename W>
  static void dot(const W* w, size_t stride, const float* x, size_t len, float* out) {
    constexpr size_t U = R == 1 ? 4 : 2;
    __m512 acc[R][U];
    for (size_t r = 0; r < R; ++r) {
      for (size_t u = 0; u < U; ++u) acc[r][u] = _mm512_setzero_ps();
    }
    size_t i = 0;
    for (; i + 16 * U <= len; i += 16 * U) {
      for (size_t u = 0; u < U; ++u) {
        const __m512 xv = _mm512_loadu_ps(x + i + 16 * u);
        for (size_t r = 0; r < R; ++r) acc[r][u] = _mm512_fmadd_ps(load16(w + r * stride + i + 16 * u), xv, acc[r][u]);
      }
    }
    for (; i < len; i += 16) {
      const __mmask16 mask = first_lanes(len - i < 16 ? len - i : 16);
      const __m512 xv = _mm512_maskz_loadu_ps(mask, x + i);
      for (size_t r = 0; r < R; ++r) acc[r][1] = _mm512_fmadd_ps(load16(w + r * stride + i, mask), xv, acc[r][1]);
    }
    for (size_t r = 0; r < R; ++r) {
      for (size_t u = 1; u < U; ++u) acc[r][0] = _mm512_add_ps(acc[r][0], acc[r][u]);
      out[r] = _mm512_reduce_add_ps(acc[r][0]);
    }
  }

  // Full vectors unmasked (masked stores are slower), the tail masked.
  template <typename W>
  static void convert(const W* src, size_t len, float* dst) {
    size_t i = 0;
    for (; i + 16 <= len; i += 16) _mm512_storeu_ps(dst + i, load16(src + i));
    if (i < len) {
      const __mmask16 mask = first_lanes(len - i);
      _mm512_mask_storeu_ps(dst + i, mask, load16(src + i, mask));
    }
  }

  // q8_0: e holds c = -128 times the lane sums of each block's q, then d repeated 8 times per
  // block. vpdpbusd multiplies unsigned by signed bytes, so the weights enter as w + 128 and
  // starting the sum at c removes the offset exactly.
  // q4_0 works on groups of 4 blocks (the last one padded with zero blocks): q is stored per group
  // as the first 16 values of each of its blocks, then the last 16 of each, matching the low and
  // the high nibbles of the 4 weight blocks in one vector; e holds c = -8 times the sums of x
  // over each 32-bit lane's 8 values (the nibbles enter as they are), then d repeated 4 times.
  template <DType T>
  static void quantize(const float* x, size_t blocks, int8_t* q, float* d, int32_t* e) {
    const size_t slots = T == DType::Q4_0 ? (blocks + 3) / 4 * 4 : blocks;
    const size_t per_block = T == DType::Q8_0 ? 8 : 4;  // words of c and of d per block
    int32_t* c = e;
    float* dd = reinterpret_cast<float*>(e + per_block * slots);
    for (size_t b = 0; b < slots; ++b, x += 32) {
      __m256i bytes = _mm256_setzero_si256();
      float scale = 0;
      if (b < blocks) {
        const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
        scale = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1))) / 127;
        const __m512 inverse = _mm512_set1_ps(scale != 0 ? 1.0f / scale : 0.0f);
        constexpr int kNearest = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
        const __m512i i0 = _mm512_cvtps_epi32(_mm512_roundscale_ps(_mm512_mul_ps(v0, inverse), kNearest));
        const __m512i i1 = _mm512_cvtps_epi32(_mm512_roundscale_ps(_mm512_mul_ps(v1, inverse), kNearest));
        bytes = _mm256_set_m128i(_mm512_cvtepi32_epi8(i1), _mm512_cvtepi32_epi8(i0));
        d[b] = scale;
      }
      const __m256i lanes = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(1), bytes);
      if constexpr (T == DType::Q8_0) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + 32 * b), bytes);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + 8 * b),
                            _mm256_mullo_epi32(lanes, _mm256_set1_epi32(-128)));
        _mm256_storeu_ps(dd + 8 * b, _mm256_set1_ps(scale));
      } else {
        int8_t* group = q + 128 * (b / 4) + 16 * (b % 4);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(group), _mm256_castsi256_si128(bytes));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(group + 64), _mm256_extracti128_si256(bytes, 1));
        const __m128i pairs = _mm_add_epi32(_mm256_castsi256_si128(lanes), _mm256_extracti128_si256(lanes, 1));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(c + 4 * b), _mm_mullo_epi32(pairs, _mm_set1_epi32(-8)));
        _mm_storeu_ps(dd + 4 * b, _mm_set1_ps(scale));
      }
    }
  }

  // q8_0: acc + (sum_j w[j] x[j]) d_x d_w for block b of the row at w, in 8 partial sums.
  static __m256 add_block(const unsigned char* w, size_t b, const int8_t* q, const int32_t* c, const float* d8,
                          __m256 acc) {
    const unsigned char* block = w + 34 * b;
    const __m256i weights = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 2)),
                                             _mm256_set1_epi8(char(0x80)));
    const __m256i sums = _mm256_dpbusd_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + 8 * b)), weights,
                                             _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 32 * b)));
    const __m256 scaled = _mm256_mul_ps(_mm256_cvtepi32_ps(sums), _mm256_loadu_ps(d8 + 8 * b));
    return _mm256_fmadd_ps(scaled, broadcast_f16(block), acc);
  }

  // q8_0: the same for blocks b and b + 1 in one 512-bit vector: lanes 0..7 for b, 8..15 for b + 1.
  static __m512 add_pair(const unsigned char* w, size_t b, const int8_t* q, const int32_t* c, const float* d8,
                         __m512 acc) {
    const unsigned char* block = w + 34 * b;
    const __m512i raw = _mm512_inserti64x4(
        _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 2))),
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 36)), 1);
    const __m512i weights = _mm512_xor_si512(raw, _mm512_set1_epi8(char(0x80)));
    const __m512i sums = _mm512_dpbusd_epi32(_mm512_loadu_si512(c + 8 * b), weights, _mm512_loadu_si512(q + 32 * b));
    const __m512 scaled = _mm512_mul_ps(_mm512_cvtepi32_ps(sums), _mm512_loadu_ps(d8 + 8 * b));
    int16_t h0, h1;
    std::memcpy(&h0, block, 2);
    std::memcpy(&h1, block + 34, 2);
    const __m512 dw = _mm512_cvtph_ps(_mm256_set_m128i(_mm_set1_epi16(h1), _mm_set1_epi16(h0)));
    return _mm512_fmadd_ps(scaled, dw, acc);
  }

  // q4_0: acc + the products of group g (blocks 4g.. 4g + count - 1, count <= 4) of the row at w;
  // lanes 4k..4k + 3 belong to block 4g + k.
  template <bool Full>
  static __m512 add_group(const unsigned char* w, size_t g, size_t count, const int8_t* q, const int32_t* c,
                          const float* d4, __m512 acc) {
    const unsigned char* block = w + 18 * 4 * g;
    __m512i raw = _mm512_setzero_si512();
    uint64_t scales = 0;  // the f16 scales, 16 bits each; zero for padding
    for (size_t k = 0; k < (Full ? 4 : count); ++k) {
      const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 18 * k + 2));
      raw = k == 0 ? _mm512_castsi128_si512(bytes)
                   : _mm512_mask_broadcast_i32x4(raw, __mmask16(0xf << (4 * k)), bytes);
      uint16_t h;
      std::memcpy(&h, block + 18 * k, 2);
      scales |= uint64_t(h) << (16 * k);
    }
    const __m512i low = _mm512_and_si512(raw, _mm512_set1_epi8(0x0f));
    const __m512i high = _mm512_and_si512(_mm512_srli_epi16(raw, 4), _mm512_set1_epi8(0x0f));
    __m512i sums = _mm512_dpbusd_epi32(_mm512_loadu_si512(c + 16 * g), low, _mm512_loadu_si512(q + 128 * g));
    sums = _mm512_dpbusd_epi32(sums, high, _mm512_loadu_si512(q + 128 * g + 64));
    const __m512 scaled = _mm512_mul_ps(_mm512_cvtepi32_ps(sums), _mm512_loadu_ps(d4 + 16 * g));
    const __m128 dw4 = _mm_cvtph_ps(_mm_cvtsi64_si128(int64_t(scales)));
    const __m512 dw = _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3),
                                            _mm512_castps128_ps512(dw4));
    return _mm512_fmadd_ps(scaled, dw, acc);
  }

  template <DType T, size_t R>
  static void dot_blocks(const unsigned char* w, size_t stride, const int8_t* q, const float*, const int32_t* e,
                         size_t blocks, float* out) {
    if constexpr (T == DType::Q8_0) {
      dot_q8_0<R>(w, stride, q, e, blocks, out);
    } else {
      dot_q4_0<R>(w, stride, q, e, blocks, out);
    }
  }

  // Two pairs in flight for a single row, one pair per row for four rows.
  template <size_t R>
  static void dot_q8_0(const unsigned char* w, size_t stride, const int8_t* q, const int32_t* e, size_t blocks,
                       float* out) {
    constexpr size_t U = R == 1 ? 2 : 1;
    const float* d8 = reinterpret_cast<const float*>(e + 8 * blocks);
    __m512 acc[R][U];
    for (size_t r = 0; r < R; ++r) {
      for (size_t u = 0; u < U; ++u) acc[r][u] = _mm512_setzero_ps();
    }
    size_t b = 0;
    for (; b + 2 * U <= blocks; b += 2 * U) {
      for (size_t u = 0; u < U; ++u) {
        for (size_t r = 0; r < R; ++r) acc[r][u] = add_pair(w + r * stride, b + 2 * u, q, e, d8, acc[r][u]);
      }
    }
    for (; b + 2 <= blocks; b += 2) {
      for (size_t r = 0; r < R; ++r) acc[r][0] = add_pair(w + r * stride, b, q, e, d8, acc[r][0]);
    }
    for (size_t r = 0; r < R; ++r) {
      for (size_t u = 1; u < U; ++u) acc[r][0] = _mm512_add_ps(acc[r][0], acc[r][u]);
      __m256 sum = _mm256_add_ps(_mm512_castps512_ps256(acc[r][0]), _mm512_extractf32x8_ps(acc[r][0], 1));
      if (b < blocks) sum = add_block(w + r * stride, b, q, e, d8, sum);  // an odd last block
      __m128 s = _mm_add_ps(_mm256_castps256_ps128(sum), _mm256_extractf128_ps(sum, 1));
      s = _mm_add_ps(s, _mm_movehl_ps(s, s));
      out[r] = _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
    }
  }

  // Two groups in flight for a single row, one group per row for four rows.
  template <size_t R>
  static void dot_q4_0(const unsigned char* w, size_t stride, const int8_t* q, const int32_t* e, size_t blocks,
                       float* out) {
    constexpr size_t U = R == 1 ? 2 : 1;
    const size_t groups = blocks / 4;
    const float* d4 = reinterpret_cast<const float*>(e + 4 * ((blocks + 3) / 4 * 4));
    __m512 acc[R][U];
    for (size_t r = 0; r < R; ++r) {
      for (size_t u = 0; u < U; ++u) acc[r][u] = _mm512_setzero_ps();
    }
    size_t g = 0;
    for (; g + U <= groups; g += U) {
      for (size_t u = 0; u < U; ++u) {
        for (size_t r = 0; r < R; ++r) acc[r][u] = add_group<true>(w + r * stride, g + u, 4, q, e, d4, acc[r][u]);
      }
    }
    for (; g < groups; ++g) {
      for (size_t r = 0; r < R; ++r) acc[r][0] = add_group<true>(w + r * stride, g, 4, q, e, d4, acc[r][0]);
    }
    if (blocks % 4 != 0) {
      for (size_t r = 0; r < R; ++r) acc[r][0] = add_group<false>(w + r * stride, g, blocks % 4, q, e, d4, acc[r][0]);
    }
    for (size_t r = 0; r < R; ++r) {
      for (size_t u = 1; u < U; ++u) acc[r][0] = _mm512_add_ps(acc[r][0], acc[r][u]);
      out[r] = _mm512_reduce_add_ps(acc[r][0]);
    }
  }
};

void matmul(const Matrix& w, const float* x, size_t n, const float* bias, float* y, size_t row_begin,
            size_t row_end) {
  tiles::matmul<Avx512>(w, x, n, bias, y, row_begin, row_end);
}

// Columns [j, j + 16 M) of S += phi_k v^T and out = phi_q^T S * inverse, with v and out held in
// registers across the r rows; `last` masks the last vector.
template <size_t M>
void linear_attention_columns(float* state, const float* phi_q, const float* phi_k, const float* v, size_t r,
                              size_t d_v, size_t j, __mmask16 last, float inverse, float* out) {
  __m512 vv[M], acc[M];
  __mmask16 mask[M];
  for (size_t m = 0; m < M; ++m) {
    mask[m] = m + 1 == M ? last : __mmask16(0xffff);
    vv[m] = _mm512_maskz_loadu_ps(mask[m], v + j + 16 * m);
    acc[m] = _mm512_setzero_ps();
  }
  for (size_t i = 0; i < r; ++i) {
    float* row = state + i * d_v + j;
    const __m512 k = _mm512_set1_ps(phi_k[i]), q = _mm512_set1_ps(phi_q[i]);
    for (size_t m = 0; m < M; ++m) {
      const __m512 s = _mm512_fmadd_ps(k, vv[m], _mm512_maskz_loadu_ps(mask[m], row + 16 * m));
      _mm512_mask_storeu_ps(row + 16 * m, mask[m], s);
      acc[m] = _mm512_fmadd_ps(q, s, acc[m]);
    }
  }
  for (size_t m = 0; m < M; ++m) {
    _mm512_mask_storeu_ps(out + j + 16 * m, mask[m], _mm512_mul_ps(acc[m], _mm512_set1_ps(inverse)));
  }
}

void linear_attention_step(float* state, float* normalizer, const float* phi_q, const float* phi_k, const float* v,
                           size_t r, size_t d_v, float floor, float* out) {
  __m512 dot = _mm512_setzero_ps();
  for (size_t i = 0; i < r; i += 16) {
    const __mmask16 mask = first_lanes(r - i < 16 ? r - i : 16);
    const __m512 z = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, normalizer + i), _mm512_maskz_loadu_ps(mask, phi_k + i));
    _mm512_mask_storeu_ps(normalizer + i, mask, z);
    dot = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, phi_q + i), z, dot);
  }
  const float denominator = _mm512_reduce_add_ps(dot);
  const float inverse = 1.0f / (denominator > floor ? denominator : floor);
  size_t j = 0;
  for (; j + 64 <= d_v; j += 64) linear_attention_columns<4>(state, phi_q, phi_k, v, r, d_v, j, 0xffff, inverse, out);
  for (; j < d_v; j += 16) {
    linear_attention_columns<1>(state, phi_q, phi_k, v, r, d_v, j, first_lanes(d_v - j < 16 ? d_v - j : 16), inverse, out);
  }
}

// out[j, j + 16 M) = sum_t scores[t] values[t]; `last` masks the last vector.
template <size_t M>
void weighted_sum_columns(const float* scores, const float* values, size_t length, size_t stride, size_t j,
                          __mmask16 last, float* out) {
  __m512 acc[M];
  for (size_t m = 0; m < M; ++m) acc[m] = _mm512_setzero_ps();
  for (size_t t = 0; t < length; ++t) {
    const __m512 s = _mm512_set1_ps(scores[t]);
    const float* row = values + t * stride + j;
    for (size_t m = 0; m < M; ++m) {
      acc[m] = _mm512_fmadd_ps(s, _mm512_maskz_loadu_ps(m + 1 == M ? last : __mmask16(0xffff), row + 16 * m), acc[m]);
    }
  }
  for (size_t m = 0; m < M; ++m) _mm512_mask_storeu_ps(out + j + 16 * m, m + 1 == M ? last : __mmask16(0xffff), acc[m]);
}

void softmax_attention(const float* q, const float* keys, const float* values, size_t length, size_t stride,
                       size_t head_dim, float* scores, float* out) {
  for (size_t t = 0; t < length; ++t) Avx512::dot<1>(keys + t * stride, 0, q, head_dim, scores + t);
  softmax(scores, length);
  size_t j = 0;
  for (; j + 64 <= head_dim; j += 64) weighted_sum_columns<4>(scores, values, length, stride, j, 0xffff, out);
  for (; j < head_dim; j += 16) {
    weighted_sum_columns<1>(scores, values, length, stride, j, first_lanes(head_dim - j < 16 ? head_dim - j : 16), out);
  }
}

}  // namespace
}  // namespace t2r::cpu::avx512

namespace t2r::cpu {

extern const KernelTable kAvx512Kernels = {"avx512", avx512::matmul, avx512::linear_attention_step,
                                     avx512::softmax_attention};

}  // namespace t2r::cpu
