#include "memory.h"

#include <algorithm>
#include <utility>

#include "error.h"

namespace t2r::vulkan {
namespace {

VkDeviceSize round_up(VkDeviceSize n, VkDeviceSize multiple) { return (n + multiple - 1) / multiple * multiple; }

// Buffers of an arena hold at most this much (or the device's allocation limit, if lower), so that
// no driver meets a single huge allocation; a larger region gets a buffer of its own.
constexpr VkDeviceSize kArenaBlock = VkDeviceSize(1) << 30;

}  // namespace

Buffer::Buffer(Device& device, VkDeviceSize size, Memory memory) : device_(&device), size_(size) {
  const Vk& vk = device.vk();
  auto info = make<VkBufferCreateInfo>(VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO);
  info.size = size;
  info.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;
  info.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
  check(vk.CreateBuffer(device.handle(), &info, nullptr, &buffer_), "vkCreateBuffer");
  try {
    VkMemoryRequirements needs;
    vk.GetBufferMemoryRequirements(device.handle(), buffer_, &needs);
    const VkMemoryPropertyFlags host = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT;
    uint32_t type = 0;
    switch (memory) {
      case Memory::Device: type = device.memory_type(needs.memoryTypeBits, 0, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT); break;
      case Memory::Upload: type = device.memory_type(needs.memoryTypeBits, host | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT, 0); break;
      case Memory::Readback: type = device.memory_type(needs.memoryTypeBits, host, VK_MEMORY_PROPERTY_HOST_CACHED_BIT); break;
    }
    auto allocate = make<VkMemoryAllocateInfo>(VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO);
    allocate.allocationSize = needs.size;
    allocate.memoryTypeIndex = type;
    const VkResult result = vk.AllocateMemory(device.handle(), &allocate, nullptr, &memory_);
    if (result == VK_ERROR_OUT_OF_DEVICE_MEMORY || result == VK_ERROR_OUT_OF_HOST_MEMORY) {
      throw Error("Vulkan device " + device.name() + " is out of memory for a buffer of " + std::to_string(size) +
                  " bytes");
    }
    check(result, "vkAllocateMemory");
    check(vk.BindBufferMemory(device.handle(), buffer_, memory_, 0), "vkBindBufferMemory");
    if (memory != Memory::Device) {
      check(vk.MapMemory(device.handle(), memory_, 0, VK_WHOLE_SIZE, 0, &mapped_), "vkMapMemory");
      coherent_ = device.memory_type_has(type, VK_MEMORY_PROPERTY_HOST_COHERENT_BIT);
    }
  } catch (...) {
    release();
    throw;
  }
}

Buffer::~Buffer() { release(); }

Buffer::Buffer(Buffer&& other) noexcept { *this = std::move(other); }

Buffer& Buffer::operator=(Buffer&& other) noexcept {
  if (this != &other) {
    release();
    device_ = other.device_;
    buffer_ = std::exchange(other.buffer_, VK_NULL_HANDLE);
    memory_ = std::exchange(other.memory_, VK_NULL_HANDLE);
    size_ = other.size_;
    mapped_ = std::exchange(other.mapped_, nullptr);
    coherent_ = other.coherent_;
  }
  return *this;
}

void Buffer::release() {
  if (!device_) return;
  // Freeing the memory unmaps it.
  if (buffer_) device_->vk().DestroyBuffer(device_->handle(), buffer_, nullptr);
  if (memory_) device_->vk().FreeMemory(device_->handle(), memory_, nullptr);
  buffer_ = VK_NULL_HANDLE;
  memory_ = VK_NULL_HANDLE;
  mapped_ = nullptr;
}

void Buffer::invalidate() const {
  if (coherent_) return;
  auto range = make<VkMappedMemoryRange>(VK_STRUCTURE_TYPE_MAPPED_MEMORY_RANGE);
  range.memory = memory_;
  range.size = VK_WHOLE_SIZE;
  check(device_->vk().InvalidateMappedMemoryRanges(device_->handle(), 1, &range), "vkInvalidateMappedMemoryRanges");
}

void Buffer::flush() const {
  if (coherent_) return;
  auto range = make<VkMappedMemoryRange>(VK_STRUCTURE_TYPE_MAPPED_MEMORY_RANGE);
  range.memory = memory_;
  range.size = VK_WHOLE_SIZE;
  check(device_->vk().FlushMappedMemoryRanges(device_->handle(), 1, &range), "vkFlushMappedMemoryRanges");
}

size_t Arena::reserve(VkDeviceSize bytes, const std::string& what) {
  const VkDeviceSize size = round_up(std::max<VkDeviceSize>(bytes, 16), 16);
  if (size > device_.limits().maxStorageBufferRange) {
    throw Error(what + " needs " + std::to_string(bytes) + " bytes; Vulkan device " + device_.name() +
                " binds at most " + std::to_string(device_.limits().maxStorageBufferRange) + " bytes per buffer");
  }
  const VkDeviceSize align = std::max<VkDeviceSize>(device_.limits().minStorageBufferOffsetAlignment, 16);
  const VkDeviceSize block = std::min(kArenaBlock, device_.max_allocation());
  if (buffer_sizes_.empty() || round_up(buffer_sizes_.back(), align) + size > block) buffer_sizes_.push_back(0);
  const VkDeviceSize offset = round_up(buffer_sizes_.back(), align);
  buffer_sizes_.back() = offset + size;
  regions_.push_back({buffer_sizes_.size() - 1, offset, size});
  return regions_.size() - 1;
}

void Arena::allocate(Memory memory) {
  for (VkDeviceSize size : buffer_sizes_) buffers_.emplace_back(device_, size, memory);
}

Span Arena::operator[](size_t region) const {
  const Region& r = regions_.at(region);
  return {buffers_.at(r.buffer).span().buffer, r.offset, r.size};
}

VkDeviceSize Arena::bytes() const {
  VkDeviceSize total = 0;
  for (VkDeviceSize size : buffer_sizes_) total += size;
  return total;
}

}  // namespace t2r::vulkan
