// The machine's memory read bandwidth, measured the way decoding meets it: a buffer far larger
// than the caches, every page touched before timing, read with the widest vector loads this CPU
// has, front to back as a matvec reads a model's rows, on the same threads the model runs on.
#pragma once

#include <cstddef>

#include "thread_pool.h"

namespace t2r::bench {

struct ReadBandwidth {
  double gb_s = 0;  // 1e9 bytes per second: the best of every pass
  int streams = 0;  // the number of streams per thread that gave it
};

// Each thread reads its part of `bytes` as 1, 2 and 4 interleaved streams (prefetchers differ in
// how many they follow; on this project's Zen 4 VM one is fastest), `repeats` passes each.
ReadBandwidth read_bandwidth(ThreadPool& pool, size_t bytes = size_t(1) << 30, int repeats = 4);

}  // namespace t2r::bench
