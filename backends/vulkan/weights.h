// A model's tensors on the device, uploaded once through a bounded staging buffer and then
// found by the host address the Model binds them at.
#pragma once

#include <map>

#include "memory.h"
#include "model.h"
#include "ops.h"

namespace t2r::vulkan {

class Weights {
 public:
  Weights(Device& device, const Model& model);

  DeviceMatrix matrix(const cpu::Matrix& m) const;
  Span vector(const float* v) const;  // empty for nullptr (an absent bias)
  // Model::position_freq(): rotary inverse frequencies or sinusoidal frequencies.
  Span position_freq() const { return arena_[position_freq_]; }
  VkDeviceSize bytes() const { return arena_.bytes(); }

 private:
  Span find(const void* host) const;

  Arena arena_;
  std::map<const void*, size_t> regions_;  // host address of a tensor -> its region
  size_t position_freq_ = 0;
};

}  // namespace t2r::vulkan
