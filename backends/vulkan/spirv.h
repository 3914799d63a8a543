// The compute shaders, compiled to SPIR-V by glslc at build time and embedded in the binary
// (embed_spirv.cmake generates their definitions).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace t2r::vulkan {

struct SpirvModule {
  const char* name;  // the shader's file name without .comp, plus its variant ("matvec_q8_0_sg")
  const uint32_t* words;
  size_t word_count;
};

// nullptr when no module has that name.
const SpirvModule* find_spirv(std::string_view name);

}  // namespace t2r::vulkan
