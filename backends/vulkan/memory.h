// Device memory: buffers, the spans of them that shaders bind, and an arena that lays out many
// regions (weights, activations, state) in as few buffers as the device's limits allow.
#pragma once

#include <string>
#include <vector>

#include "device.h"

namespace t2r::vulkan {

// A byte range of a buffer, bound to one shader binding.
struct Span {
  VkBuffer buffer = VK_NULL_HANDLE;
  VkDeviceSize offset = 0;
  VkDeviceSize size = 0;
};

enum class Memory {
  Device,    // device-local where the device has it: weights, activations, state
  Upload,    // host-visible and coherent: staging, the per-token input
  Readback,  // host-visible, cached where possible: the logits
};

class Buffer {
 public:
  Buffer() = default;
  Buffer(Device& device, VkDeviceSize size, Memory memory);
  ~Buffer();
  Buffer(Buffer&& other) noexcept;
  Buffer& operator=(Buffer&& other) noexcept;

  Span span() const { return {buffer_, 0, size_}; }
  VkDeviceSize size() const { return size_; }
  void* mapped() const { return mapped_; }  // host-visible memory only
  // Makes device writes visible to the host when the memory is not host-coherent.
  void invalidate() const;
  // Makes host writes visible to the device when the memory is not host-coherent.
  void flush() const;

 private:
  void release();
  Device* device_ = nullptr;
  VkBuffer buffer_ = VK_NULL_HANDLE;
  VkDeviceMemory memory_ = VK_NULL_HANDLE;
  VkDeviceSize size_ = 0;
  void* mapped_ = nullptr;
  bool coherent_ = true;
};

class Arena {
 public:
  explicit Arena(Device& device) : device_(device) {}
  // Plans a region of `bytes` (named `what` in errors) and returns its index. Regions start on
  // the device's storage-buffer offset alignment and are padded to 16 bytes.
  size_t reserve(VkDeviceSize bytes, const std::string& what);
  // Creates the buffers; spans are valid from then on.
  void allocate(Memory memory);
  Span operator[](size_t region) const;
  VkDeviceSize bytes() const;  // memory of all buffers, planned (before allocate()) or allocated

 private:
  struct Region {
    size_t buffer;
    VkDeviceSize offset, size;
  };
  Device& device_;
  std::vector<Region> regions_;
  std::vector<VkDeviceSize> buffer_sizes_;
  std::vector<Buffer> buffers_;
};

}  // namespace t2r::vulkan
