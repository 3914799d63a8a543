#include "bandwidth.h"

#if defined(__GNUC__) && !defined(__clang__)
// GCC 12's AVX-512 headers trip its own uninitialized-variable warnings (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

namespace t2r::bench {
namespace {

// Sums words [begin, end) as `streams` runs read in lockstep, 64 bytes per load and stream.
template <int Streams>
uint64_t read_portable(const uint64_t* words, size_t begin, size_t end) {
  const size_t per = (end - begin) / Streams / 8 * 8;
  uint64_t acc[Streams][8] = {};  // independent sums: the loop vectorizes and is bound by memory
  for (size_t i = 0; i < per; i += 8) {
    for (int s = 0; s < Streams; ++s) {
      for (int u = 0; u < 8; ++u) acc[s][u] += words[begin + s * per + i + u];
    }
  }
  uint64_t total = 0;
  for (const auto& stream : acc) {
    for (uint64_t a : stream) total += a;
  }
  return total;
}

#if defined(__x86_64__) && defined(__GNUC__)
template <int Streams>
__attribute__((target("avx512f"))) uint64_t read_avx512(const uint64_t* words, size_t begin, size_t end) {
  const size_t per = (end - begin) / Streams / 32 * 32;
  __m512i acc[Streams][4];
  for (auto& stream : acc) {
    for (auto& a : stream) a = _mm512_setzero_si512();
  }
  for (size_t i = 0; i < per; i += 32) {
    for (int s = 0; s < Streams; ++s) {
      const uint64_t* p = words + begin + s * per + i;
      for (int u = 0; u < 4; ++u) acc[s][u] = _mm512_add_epi64(acc[s][u], _mm512_loadu_si512(p + 8 * u));
    }
  }
  __m512i total = _mm512_setzero_si512();
  for (const auto& stream : acc) {
    for (const auto& a : stream) total = _mm512_add_epi64(total, a);
  }
  return uint64_t(_mm512_reduce_add_epi64(total));
}

template <int Streams>
__attribute__((target("avx2"))) uint64_t read_avx2(const uint64_t* words, size_t begin, size_t end) {
  const size_t per = (end - begin) / Streams / 16 * 16;
  __m256i acc[Streams][4];
  for (auto& stream : acc) {
    for (auto& a : stream) a = _mm256_setzero_si256();
  }
  for (size_t i = 0; i < per; i += 16) {
    for (int s = 0; s < Streams; ++s) {
      const uint64_t* p = words + begin + s * per + i;
      for (int u = 0; u < 4; ++u) {
        acc[s][u] = _mm256_add_epi64(acc[s][u], _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 4 * u)));
      }
    }
  }
  __m256i total = _mm256_setzero_si256();
  for (const auto& stream : acc) {
    for (const auto& a : stream) total = _mm256_add_epi64(total, a);
  }
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), total);
  return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}
#endif

using ReadFunction = uint64_t (*)(const uint64_t*, size_t, size_t);

// The widest loads this CPU runs, for 1, 2 and 4 streams.
std::vector<std::pair<int, ReadFunction>> read_functions() {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return {{1, read_avx512<1>}, {2, read_avx512<2>}, {4, read_avx512<4>}};
  if (__builtin_cpu_supports("avx2")) return {{1, read_avx2<1>}, {2, read_avx2<2>}, {4, read_avx2<4>}};
#endif
  return {{1, read_portable<1>}, {2, read_portable<2>}, {4, read_portable<4>}};
}

}  // namespace

ReadBandwidth read_bandwidth(ThreadPool& pool, size_t bytes, int repeats) {
  const size_t words = bytes / sizeof(uint64_t);
  std::unique_ptr<uint64_t[]> buffer(new uint64_t[words]);
  // Every page written once, by the threads that will read it (first touch places it), and
  // read once untimed: what is timed is memory, not page faults.
  auto fill = [&](int thread, int threads) {
    size_t begin, end;
    split_range(words, thread, threads, &begin, &end);
    for (size_t i = begin; i < end; ++i) buffer[i] = i;
  };
  pool.run(fill);
  std::vector<uint64_t> sums(size_t(pool.size()));
  ReadBandwidth best;
  for (const auto& [streams, read] : read_functions()) {
    for (int pass = 0; pass <= repeats; ++pass) {
      auto job = [&, read = read](int thread, int threads) {
        size_t begin, end;
        split_range(words, thread, threads, &begin, &end);
        sums[size_t(thread)] += read(buffer.get(), begin, end);
      };
      const auto start = std::chrono::steady_clock::now();
      pool.run(job);
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      const double gb_s = double(words * sizeof(uint64_t)) / seconds / 1e9;
      if (pass > 0 && gb_s > best.gb_s) best = {gb_s, streams};  // the first pass of each warms the TLB
    }
  }
  volatile uint64_t sink = 0;
  for (uint64_t s : sums) sink = sink + s;  // keeps the reads from being optimized away
  return best;
}

}  // namespace t2r::bench
