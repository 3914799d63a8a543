// What the Vulkan test files share: opening a validated Vulkan object or skipping where the machine
// has no Vulkan device, and checking that the validation layer stayed silent.
#pragma once

#ifdef T2R_VULKAN

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "error.h"
#include "model.h"
#include "vulkan/device.h"

namespace t2r::test {

// A T (vulkan::Session or vulkan::Context) with the validation layer on, or none when the machine
// has no Vulkan device (the test then passes with a warning, unless T2R_REQUIRE_VULKAN is set, as
// CI sets it).
template <typename T, typename Options>
std::unique_ptr<T> open_validated(const Model& model, Options options) {
  options.device.validation = true;
  try {
    return std::make_unique<T>(model, options);
  } catch (const Error& e) {
    if (std::getenv("T2R_REQUIRE_VULKAN") || vulkan::list_devices().size() > 0) throw;
    MESSAGE("skipped: no Vulkan device (" << e.what() << ")");
    return nullptr;
  }
}

inline void check_validation(const vulkan::Device& device) {
  const auto messages = device.validation_messages();
  for (const auto& m : messages) MESSAGE("validation: " << m);
  CHECK(messages.empty());
}

inline double max_diff(const float* a, const float* b, int64_t n) {
  double worst = 0;
  for (int64_t i = 0; i < n; ++i) worst = std::max(worst, std::fabs(double(a[i]) - double(b[i])));
  return worst;
}

}  // namespace t2r::test

#endif
