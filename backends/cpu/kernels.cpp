// Kernel dispatch: which implementations this CPU runs (CPUID on x86-64, HWCAP on aarch64; a
// WebAssembly engine validates SIMD128 for the whole module, so a SIMD build always has it), chosen
// once; each public kernel is then one indirect call into the chosen table.
#include <atomic>
#include <cstdlib>

#include "error.h"
#include "kernel_table.h"
#include "kernels_reference.h"
#include "packing.h"

#if defined(T2R_KERNELS_X86)
#include <cpuid.h>
#elif defined(T2R_KERNELS_ARM64) && defined(__linux__)
#include <sys/auxv.h>
#endif

namespace t2r::cpu {
namespace {

constexpr KernelTable kReferenceKernels = {"scalar", Packing::None, reference::matmul, reference::linear_attention_step,
                                           reference::linear_attention_chunk, reference::softmax_attention,
                                           reference::silu_mul};

std::atomic<const KernelTable*> g_kernels{&kReferenceKernels};

#if defined(T2R_KERNELS_X86)
struct X86Features {
  bool avx2 = false, avx512 = false;
};

// The instruction sets must be reported by CPUID and their registers saved by the OS (XCR0).
X86Features detect_x86() {
  X86Features f;
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool fma = c & (1u << 12), osxsave = c & (1u << 27), avx = c & (1u << 28), f16c = c & (1u << 29);
  if (!osxsave || !avx) return f;
  unsigned xcr0_lo, xcr0_hi;
  __asm__("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
  const bool ymm_state = (xcr0_lo & 0x6u) == 0x6u, zmm_state = (xcr0_lo & 0xe6u) == 0xe6u;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return f;
  const bool avx2 = b & (1u << 5);
  const bool avx512 = (b & (1u << 16)) && (b & (1u << 17)) && (b & (1u << 30)) && (b & (1u << 31)) &&
                      (c & (1u << 11));  // F, DQ, BW, VL, VNNI
  f.avx2 = ymm_state && avx2 && fma && f16c;
  f.avx512 = f.avx2 && zmm_state && avx512;
  return f;
}
#endif

#if defined(T2R_KERNELS_ARM64)
bool has_dotprod() {
#if defined(__linux__)
  return getauxval(AT_HWCAP) & (1ul << 20);  // HWCAP_ASIMDDP
#elif defined(__APPLE__)
  return true;  // every Apple arm64 core has it
#else
  return false;
#endif
}
#endif

// Best last.
std::vector<const KernelTable*> usable_tables() {
  std::vector<const KernelTable*> tables = {&kReferenceKernels};
#if defined(T2R_KERNELS_X86)
  const X86Features f = detect_x86();
  if (f.avx2) tables.push_back(&kAvx2Kernels);
  if (f.avx512) tables.push_back(&kAvx512Kernels);
#elif defined(T2R_KERNELS_ARM64)
  tables.push_back(&kNeonKernels);
  if (has_dotprod()) tables.push_back(&kNeonDotprodKernels);
#elif defined(T2R_KERNELS_WASM)
  tables.push_back(&kWasmSimd128Kernels);
#endif
  return tables;
}

}  // namespace

void init_kernels() {
  static const bool ready = [] {
    reference::init_tables();
    const char* forced = std::getenv("T2R_CPU");
    if (forced && *forced) {
      if (!select_kernel_path(forced)) {
        std::string available;
        for (const auto& path : available_kernel_paths()) available += (available.empty() ? "" : ", ") + path;
        throw Error("T2R_CPU=" + std::string(forced) + " is not a kernel path this CPU runs (available: " +
                    available + ")");
      }
    } else {
      g_kernels.store(usable_tables().back());
    }
    return true;
  }();
  (void)ready;
}

std::vector<std::string> available_kernel_paths() {
  std::vector<std::string> names;
  for (const KernelTable* t : usable_tables()) names.emplace_back(t->name);
  return names;
}

bool select_kernel_path(std::string_view path) {
  for (const KernelTable* t : usable_tables()) {
    if (t->name == path) {
      g_kernels.store(t);
      return true;
    }
  }
  return false;
}

std::string_view kernel_path() { return g_kernels.load(std::memory_order_relaxed)->name; }

size_t packed_bytes(const Matrix& w) {
  const bool blocks = w.dtype == DType::Q8_0 || w.dtype == DType::Q4_0;
  const Packing packing = g_kernels.load(std::memory_order_relaxed)->packing;
  return blocks && packing == Packing::Interleaved16 ? interleaved16_bytes(w) : 0;
}

Matrix pack(const Matrix& w, void* storage) {
  if (packed_bytes(w) == 0) return w;
  write_interleaved16(w, static_cast<unsigned char*>(storage));
  Matrix packed = w;
  packed.packed = storage;
  packed.packing = Packing::Interleaved16;
  return packed;
}

void matmul(const Matrix& w, const float* x, size_t n, const float* bias, float* y, size_t row_begin,
            size_t row_end) {
  g_kernels.load(std::memory_order_relaxed)->matmul(w, x, n, bias, y, row_begin, row_end);
}

void linear_attention_step(float* state, float* normalizer, const float* phi_q, const float* phi_k,
                           const float* v, size_t r, size_t d_v, float floor, float* out) {
  g_kernels.load(std::memory_order_relaxed)->linear_attention_step(state, normalizer, phi_q, phi_k, v, r, d_v, floor,
                                                                    out);
}

void linear_attention_chunk(const LinearAttentionChunk& c, float* state, float* normalizer) {
  g_kernels.load(std::memory_order_relaxed)->linear_attention_chunk(c, state, normalizer);
}

void softmax_attention(const float* q, const float* keys, const float* values, size_t length,
                       size_t stride, size_t head_dim, float* scores, float* out) {
  g_kernels.load(std::memory_order_relaxed)->softmax_attention(q, keys, values, length, stride, head_dim, scores,
                                                                out);
}

void silu_mul(float* gate, const float* up, size_t n) { g_kernels.load(std::memory_order_relaxed)->silu_mul(gate, up, n); }

}  // namespace t2r::cpu
