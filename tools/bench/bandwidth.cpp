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
    auto read = [&](int thread, int threads) {
      size_t begin, end;
      split_range(words, thread, threads, &begin, &end);
      uint64_t acc[8] = {};  // independent sums: the loop vectorizes and is bound by memory
      size_t i = begin;
      for (; i + 8 <= end; i += 8) {
        for (int u = 0; u < 8; ++u) acc[u] += buffer[i + size_t(u)];
      }
      for (; i < end; ++i) acc[0] += buffer[i];
      sums[size_t(thread)] = acc[0] + acc[1] + acc[2] + acc[3] + acc[4] + acc[5] + acc[6] + acc[7];
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
