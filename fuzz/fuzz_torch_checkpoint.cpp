// libFuzzer target: the torch checkpoint reader (zip archive, unpickler, tensor views into the
// storages) and gathering every tensor it accepts. Changes inside a zip entry fail its CRC-32,
// so the pickle itself is fuzzed on its own by fuzz_unpickle.
#include <cstdint>
#include <string_view>

#include "error.h"
#include "torch_checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const t2r::TorchCheckpoint checkpoint =
        t2r::parse_torch_checkpoint(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.pt");
    for (const t2r::TorchTensor& t : checkpoint.state_dict) {
      try {
        t2r::torch_tensor_to_f32(t);
      } catch (const t2r::Error&) {
      }
    }
  } catch (const t2r::Error&) {
  }
  return 0;
}
