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
  Q8_0 = 3,  // ggml's q8_0: blocks of 32 weights, an f16 scale then 32 int8 (format/quantize.h)
  Q4_0 = 4,  // ggml's q4_0: blocks of 32 weights, an f16 scale then 16 bytes of 4-bit values
};

constexpr bool dtype_is_known(uint32_t raw) { return raw <= 4; }

// Block types store whole blocks of 32 elements along the last dimension of a tensor.
constexpr size_t kQuantBlock = 32;
constexpr bool dtype_is_block(DType t) { return t == DType::Q8_0 || t == DType::Q4_0; }
// Elements per storage unit (1, or 32 for block types) and the bytes of one unit.
constexpr size_t dtype_unit_elements(DType t) { return dtype_is_block(t) ? kQuantBlock : 1; }
constexpr size_t dtype_unit_bytes(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::F16:
    case DType::BF16: return 2;
    case DType::Q8_0: return 34;
    case DType::Q4_0: return 18;
  }
  return 0;
}
// Bytes of one row of `cols` elements; for block types `cols` must be a multiple of 32.
constexpr size_t row_bytes(DType t, size_t cols) { return cols / dtype_unit_elements(t) * dtype_unit_bytes(t); }

std::string_view dtype_name(DType t);
// Parses "f32", "f16", "bf16", "q8_0", "q4_0"; returns false for anything else.
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
