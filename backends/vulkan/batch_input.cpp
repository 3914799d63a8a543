#include "batch_input.h"

#include <cstring>

#include "error.h"

namespace t2r::vulkan {
namespace {

constexpr size_t kHeaderWords = 8, kEntryWords = 4;

}  // namespace

size_t batch_input_bytes(const BatchInputLimits& limits) {
  return (kHeaderWords + kEntryWords * (limits.max_rows + limits.max_runs + limits.max_outputs)) * sizeof(uint32_t);
}

size_t write_batch_input(void* out, const BatchInputLimits& limits, const BatchRow* rows, size_t count,
                         size_t sequence_floats) {
  auto* words = static_cast<uint32_t*>(out);
  uint32_t* entries = words + kHeaderWords;
  uint32_t* runs = entries + kEntryWords * limits.max_rows;
  uint32_t* outputs = runs + kEntryWords * limits.max_runs;
  size_t run_count = 0, output_count = 0;
  for (size_t i = 0; i < count; ++i) {
    const uint32_t row[kEntryWords] = {uint32_t(rows[i].token), uint32_t(rows[i].position), 0, 0};
    std::memcpy(entries + kEntryWords * i, row, sizeof(row));
    if (i == 0 || rows[i].sequence != rows[i - 1].sequence) {
      if (run_count == limits.max_runs) throw Error("batch input: more runs than planned");
      // The offset fits: the states binding holds at most 2^32 bytes.
      const uint32_t run[kEntryWords] = {uint32_t(i), 0, uint32_t(size_t(rows[i].sequence) * sequence_floats), 0};
      std::memcpy(runs + kEntryWords * run_count++, run, sizeof(run));
    }
    ++runs[kEntryWords * (run_count - 1) + 1];
    if (rows[i].logits) {
      if (output_count == limits.max_outputs) throw Error("batch input: more outputs than planned");
      const uint32_t output[kEntryWords] = {uint32_t(i), 0, 0, 0};
      std::memcpy(outputs + kEntryWords * output_count++, output, sizeof(output));
    }
  }
  const uint32_t header[kHeaderWords] = {uint32_t(count),
                                         uint32_t(run_count),
                                         uint32_t(output_count),
                                         uint32_t(limits.max_rows),
                                         uint32_t(limits.max_rows + limits.max_runs),
                                         0,
                                         0,
                                         0};
  std::memcpy(words, header, sizeof(header));
  return output_count;
}

}  // namespace t2r::vulkan
