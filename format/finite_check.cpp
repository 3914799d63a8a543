#include "finite_check.h"

#include <cmath>
#include <cstring>

namespace t2r {
namespace {

// Scans `count` units of `unit_bytes` each, whose exponent field (an f16, bf16 or f32 starting
// at `field_offset` in each unit) is all ones for NaN and infinity. Chunks are first OR-reduced
// without branches, which the compiler vectorizes; only a chunk with a hit is searched.
template <typename Bits>
bool scan(const unsigned char* p, uint64_t count, size_t unit_bytes, size_t field_offset, Bits exponent_mask,
          uint64_t* index) {
  auto special = [&](uint64_t i) {
    Bits bits;
    std::memcpy(&bits, p + i * unit_bytes + field_offset, sizeof bits);
    return (bits & exponent_mask) == exponent_mask;
  };
  constexpr uint64_t kChunk = 1024;
  for (uint64_t begin = 0; begin < count; begin += kChunk) {
    const uint64_t end = begin + kChunk < count ? begin + kChunk : count;
    bool any = false;
    for (uint64_t i = begin; i < end; ++i) any |= special(i);
    if (!any) continue;
    for (uint64_t i = begin; i < end; ++i) {
      if (special(i)) {
        *index = i;
        return true;
      }
    }
  }
  return false;
}

}  // namespace

bool find_non_finite(DType dtype, const void* data, uint64_t bytes, NonFinite* found) {
  const auto* p = static_cast<const unsigned char*>(data);
  const size_t unit = dtype_unit_bytes(dtype);
  const uint64_t count = bytes / unit;
  uint64_t i = 0;
  uint16_t half = 0;
  switch (dtype) {
    case DType::F32:
      if (!scan<uint32_t>(p, count, 4, 0, 0x7f800000u, &i)) return false;
      std::memcpy(&found->value, p + 4 * i, 4);
      found->element = i;
      return true;
    case DType::BF16:
      if (!scan<uint16_t>(p, count, 2, 0, 0x7f80u, &i)) return false;
      std::memcpy(&half, p + 2 * i, 2);
      *found = {i, bf16_to_f32(half)};
      return true;
    case DType::F16:
    case DType::Q8_0:
    case DType::Q4_0:  // the f16 scale leads each block
      if (!scan<uint16_t>(p, count, unit, 0, 0x7c00u, &i)) return false;
      std::memcpy(&half, p + unit * i, 2);
      *found = {i * dtype_unit_elements(dtype), f16_to_f32(half)};
      return true;
  }
  return false;
}

const char* non_finite_name(float value) { return std::isnan(value) ? "NaN" : value > 0 ? "+inf" : "-inf"; }

}  // namespace t2r
