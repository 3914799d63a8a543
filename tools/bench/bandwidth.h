// The machine's memory read bandwidth, measured the way decoding uses memory: streaming a
// buffer far larger than the caches, on the same threads the model runs on.
#pragma once

#include <cstddef>

#include "thread_pool.h"

namespace t2r::bench {

// GB/s (1e9 bytes per second), best of `repeats` passes over `bytes`.
double read_bandwidth(ThreadPool& pool, size_t bytes = size_t(1) << 30, int repeats = 5);

}  // namespace t2r::bench
