// Finding NaN and infinity in stored tensor data. One such weight turns every output of a
// model into NaN, so the reader refuses files holding one and the writer refuses to produce
// one (an f32 value beyond the f16 range would otherwise be stored as infinity).
#pragma once

#include <cstdint>

#include "dtype.h"

namespace t2r {

struct NonFinite {
  uint64_t element;  // index of the first element that is not finite
  float value;       // what it decodes to: NaN or an infinity (for block types, the block's scale)
};

// `data` holds `bytes` bytes of whole storage units of `dtype`, at any alignment. Returns false
// when every element is finite. A block type's elements are finite exactly when the block's
// f16 scale is, its quants being small integers; the element reported is the block's first.
bool find_non_finite(DType dtype, const void* data, uint64_t bytes, NonFinite* found);

// "NaN", "+inf" or "-inf", for messages.
const char* non_finite_name(float value);

}  // namespace t2r
