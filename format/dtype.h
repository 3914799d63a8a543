// Element types of tensors in a model file and conversions between them.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

namespace t2r {

// Values are stored in the file; never renumber.
enum class DType : uint32_t {
  F32 = 0,
  F16 = 1,
  BF16 = 2,
  // 3.. reserved for block-quantized types (q8_0, q4_0); see format/SPEC.md.
};

constexpr bool dtype_is_known(uint32_t raw) { return raw <= 2; }

constexpr size_t dtype_size(DType t) { return t == DType::F32 ? 4 : 2; }

std::string_view dtype_name(DType t);
// Parses "f32", "f16", "bf16"; returns false for anything else.
bool dtype_from_name(std::string_view name, DType* out);

inline float bf16_to_f32(uint16_t h) {
  uint32_t bits = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Round to nearest even, as PyTorch does; NaN stays NaN.
inline uint16_t f32_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return uint16_t((bits >> 16) | 0x40);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return uint16_t(bits >> 16);
}

float f16_to_f32(uint16_t h);
// Round to nearest even; overflow becomes infinity, as IEEE conversion does.
uint16_t f32_to_f16(float f);

}  // namespace t2r
