// The matmul kernel alone: GMAC/s on one thread for a model's projection shapes, the weights
// packed as a loaded model packs them, against the arithmetic peak measured in the same run.
#pragma once

#include <cstddef>
#include <vector>

#include "dtype.h"
#include "synthetic_model.h"

namespace t2r::bench {

void run_matmul_bench(const SyntheticConfig& config, const std::vector<DType>& dtypes, size_t tokens, long repeat);

}  // namespace t2r::bench
