#include "packing.h"

#include <cstdint>
#include <cstring>

#include "quantize.h"

namespace t2r::cpu {

namespace {
constexpr size_t kGroupRows = 16;
}

size_t interleaved16_bytes(const Matrix& w) {
  return (w.rows + kGroupRows - 1) / kGroupRows * kGroupRows * row_bytes(w.dtype, w.cols);
}

void write_interleaved16(const Matrix& w, unsigned char* out) {
  const bool q8 = w.dtype == DType::Q8_0;
  const size_t blocks = w.cols / 32, block_bytes = q8 ? sizeof(BlockQ8_0) : sizeof(BlockQ4_0);
  const size_t units = q8 ? 8 : 4, stride = blocks * block_bytes;
  const auto* rows = static_cast<const unsigned char*>(w.data);
  for (size_t r0 = 0; r0 < w.rows; r0 += kGroupRows) {
    for (size_t b = 0; b < blocks; ++b) {
      for (size_t u = 0; u < units; ++u) {
        for (size_t i = 0; i < kGroupRows; ++i, out += 4) {
          // Padding rows: zero weights (q8_0's 0 + 128; q4_0's nibbles 8) under a zero scale.
          if (r0 + i >= w.rows) {
            std::memset(out, q8 ? 0x80 : 0x88, 4);
            continue;
          }
          uint32_t bytes;  // four at once: packing an 8B model's 4.5 GB is then a few seconds
          std::memcpy(&bytes, rows + (r0 + i) * stride + b * block_bytes + 2 + 4 * u, 4);  // past the scale
          if (q8) bytes ^= 0x80808080u;
          std::memcpy(out, &bytes, 4);
        }
      }
      for (size_t i = 0; i < kGroupRows; ++i, out += 2) {
        if (r0 + i < w.rows) {
          std::memcpy(out, rows + (r0 + i) * stride + b * block_bytes, 2);
        } else {
          std::memset(out, 0, 2);
        }
      }
    }
  }
}

}  // namespace t2r::cpu
