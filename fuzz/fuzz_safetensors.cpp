// libFuzzer target: the safetensors reader, and converting each tensor it accepts.
#include <cstdint>
#include <string>
#include <string_view>

#include "error.h"
#include "safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    t2r::SafetensorsFile file(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.safetensors");
    for (const std::string& name : file.names()) {
      const t2r::SafetensorsTensor& t = file.at(name);
      try {
        t2r::tensor_to_f32(t);
      } catch (const t2r::Error&) {
      }
      try {
        t2r::tensor_to_i32(t);
      } catch (const t2r::Error&) {
      }
    }
  } catch (const t2r::Error&) {
  }
  return 0;
}
