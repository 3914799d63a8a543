// The kernels one instruction set provides, as plain function pointers. init_kernels() points the
// public API (kernels.h) at one table; each SIMD file defines its table.
#pragma once

#include "kernels.h"

namespace t2r::cpu {

struct KernelTable {
  const char* name;
  Packing packing;  // the packed copies this table's matmul reads (Packing::None: none)
  void (*matmul)(const Matrix& w, const float* x, size_t n, const float* bias, float* y, size_t row_begin,
                 size_t row_end);
  void (*linear_attention_step)(float* state, float* normalizer, const float* phi_q, const float* phi_k,
                                const float* v, size_t r, size_t d_v, float floor, float* out);
  void (*linear_attention_chunk)(const LinearAttentionChunk& c, float* state, float* normalizer);
  void (*softmax_attention)(const float* q, const float* keys, const float* values, size_t length,
                            size_t stride, size_t head_dim, float* scores, float* out);
  void (*silu_mul)(float* gate, const float* up, size_t n);
};

#if defined(T2R_KERNELS_X86)
extern const KernelTable kAvx2Kernels;    // kernels_avx2.cpp: AVX2, FMA, F16C
extern const KernelTable kAvx512Kernels;  // kernels_avx512.cpp: AVX-512 F, BW, DQ, VL, VNNI
#elif defined(T2R_KERNELS_ARM64)
extern const KernelTable kNeonKernels;         // kernels_neon.cpp
extern const KernelTable kNeonDotprodKernels;  // kernels_neon_dotprod.cpp: the same with sdot
#elif defined(T2R_KERNELS_WASM)
extern const KernelTable kWasmSimd128Kernels;  // kernels_wasm_simd128.cpp
#endif

}  // namespace t2r::cpu
