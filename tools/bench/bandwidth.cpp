#include "bandwidth.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

namespace t2r::bench {

double read_bandwidth(ThreadPool& pool, size_t bytes, int repeats) {
  const size_t words = bytes / sizeof(uint64_t);
  std::unique_ptr<uint64_t[]> buffer(new uint64_t[words]);
  // Every page written once, by the threads that will read it (first touch places it).
  auto fill = [&](int thread, int threads) {
    size_t begin, end;
    split_range(words, thread, threads, &begin, &end);
    for (size_t i = begin; i < end; ++i) buffer[i] = i;
  };
  pool.run(fill);
  std::vector<uint64_t> sums(size_t(pool.size()));
  double best = 0;
  for (int pass = 0; pass < repeats; ++pass) {
    // Each thread reads its range as 4 streams in lockstep: one stream leaves a core well short
    // of what it can pull (measured on Zen 5: 19.5 GB/s against 31.7 with 4), and the decode
    // kernels keep several rows in flight.
    auto read = [&](int thread, int threads) {
      size_t begin, end;
      split_range(words, thread, threads, &begin, &end);
      constexpr size_t kStreams = 4;
      const size_t per = (end - begin) / kStreams / 8 * 8;
      uint64_t acc[kStreams][8] = {};  // independent sums: the loop vectorizes and is bound by memory
      for (size_t i = 0; i < per; i += 8) {
        for (size_t s = 0; s < kStreams; ++s) {
          for (size_t u = 0; u < 8; ++u) acc[s][u] += buffer[begin + s * per + i + u];
        }
      }
      for (size_t i = begin + kStreams * per; i < end; ++i) acc[0][0] += buffer[i];
      uint64_t total = 0;
      for (const auto& stream : acc) {
        for (uint64_t a : stream) total += a;
      }
      sums[size_t(thread)] = total;
    };
    const auto start = std::chrono::steady_clock::now();
    pool.run(read);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::max(best, double(words * sizeof(uint64_t)) / seconds / 1e9);
  }
  volatile uint64_t sink = 0;
  for (uint64_t s : sums) sink = sink + s;  // keeps the reads from being optimized away
  return best;
}

}  // namespace t2r::bench
