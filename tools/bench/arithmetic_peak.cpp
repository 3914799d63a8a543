#include "arithmetic_peak.h"

#if defined(__GNUC__) && !defined(__clang__)
// GCC 12's AVX-512 headers trip its own uninitialized-variable warnings (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <algorithm>
#include <chrono>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

namespace t2r::bench {
namespace {

#if defined(__x86_64__) && defined(__GNUC__)
double seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

constexpr long kIterations = 20000000;
constexpr int kChains = 12;  // enough independent accumulators to hide any of these latencies

// Cycles per second: eight dependent adds per iteration, one cycle each, the loop's own
// instructions run alongside.
double clock_hz() {
  long x = 0;
  const double start = seconds();
  for (long i = 0; i < kIterations; ++i) {
    asm volatile("add $1,%0\n\tadd $1,%0\n\tadd $1,%0\n\tadd $1,%0\n\tadd $1,%0\n\tadd $1,%0\n\tadd $1,%0\n\tadd $1,%0"
                 : "+r"(x));
  }
  return 8.0 * kIterations / (seconds() - start);
}

__attribute__((target("avx512f,avx512vnni"))) double dpbusd_per_second() {
  __m512i acc[kChains];
  for (int k = 0; k < kChains; ++k) acc[k] = _mm512_set1_epi32(k);
  const __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(5);
  const double start = seconds();
  for (long i = 0; i < kIterations / 4; ++i) {
#pragma GCC unroll 12
    for (int k = 0; k < kChains; ++k) acc[k] = _mm512_dpbusd_epi32(acc[k], a, b);
  }
  const double elapsed = seconds() - start;
  for (int k = 1; k < kChains; ++k) acc[0] = _mm512_add_epi32(acc[0], acc[k]);
  volatile int sink = _mm512_reduce_add_epi32(acc[0]);  // keeps the chains
  (void)sink;
  return double(kIterations / 4) * kChains / elapsed;
}

__attribute__((target("avx512f"))) double fma_per_second() {
  __m512 acc[kChains];
  for (int k = 0; k < kChains; ++k) acc[k] = _mm512_set1_ps(float(k));
  const __m512 a = _mm512_set1_ps(0.999f), b = _mm512_set1_ps(0.001f);
  const double start = seconds();
  for (long i = 0; i < kIterations / 4; ++i) {
#pragma GCC unroll 12
    for (int k = 0; k < kChains; ++k) acc[k] = _mm512_fmadd_ps(acc[k], a, b);
  }
  const double elapsed = seconds() - start;
  for (int k = 1; k < kChains; ++k) acc[0] = _mm512_add_ps(acc[0], acc[k]);
  volatile float sink = _mm512_reduce_add_ps(acc[0]);
  (void)sink;
  return double(kIterations / 4) * kChains / elapsed;
}
#endif

}  // namespace

ArithmeticPeak measure_arithmetic_peak() {
  ArithmeticPeak peak;
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512vnni")) return peak;
  double hz = 0, dpbusd = 0, fma = 0;
  for (int pass = 0; pass < 3; ++pass) {  // the best of each: a pass a neighbour interrupted is slower
    hz = std::max(hz, clock_hz());
    dpbusd = std::max(dpbusd, dpbusd_per_second());
    fma = std::max(fma, fma_per_second());
  }
  peak.measured = true;
  peak.ghz = hz / 1e9;
  peak.dpbusd_per_cycle = dpbusd / hz;
  peak.fma_per_cycle = fma / hz;
#endif
  return peak;
}

}  // namespace t2r::bench
