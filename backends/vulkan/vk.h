// The Vulkan entry points the backend uses, loaded at run time from the system's loader
// (libvulkan.so.1) rather than linked: a binary with the Vulkan backend still starts on a
// machine without Vulkan, and says so only when a Vulkan session is asked for.
#pragma once

#define VK_NO_PROTOTYPES
#include <vulkan/vulkan.h>

#include <string>

namespace t2r::vulkan {

// Loader-level functions (no instance needed).
#define T2R_VK_GLOBAL_FUNCTIONS(X) \
  X(CreateInstance)                \
  X(EnumerateInstanceVersion)      \
  X(EnumerateInstanceLayerProperties) \
  X(EnumerateInstanceExtensionProperties)

#define T2R_VK_INSTANCE_FUNCTIONS(X)       \
  X(DestroyInstance)                       \
  X(EnumeratePhysicalDevices)              \
  X(GetPhysicalDeviceProperties)           \
  X(GetPhysicalDeviceProperties2)          \
  X(GetPhysicalDeviceQueueFamilyProperties) \
  X(GetPhysicalDeviceMemoryProperties)     \
  X(CreateDevice)                          \
  X(GetDeviceProcAddr)

// Present only when the validation layer is enabled.
#define T2R_VK_DEBUG_FUNCTIONS(X)  \
  X(CreateDebugUtilsMessengerEXT)  \
  X(DestroyDebugUtilsMessengerEXT)

#define T2R_VK_DEVICE_FUNCTIONS(X)  \
  X(DestroyDevice)                  \
  X(GetDeviceQueue)                 \
  X(CreateBuffer)                   \
  X(DestroyBuffer)                  \
  X(GetBufferMemoryRequirements)    \
  X(AllocateMemory)                 \
  X(FreeMemory)                     \
  X(BindBufferMemory)               \
  X(MapMemory)                      \
  X(InvalidateMappedMemoryRanges)   \
  X(FlushMappedMemoryRanges)        \
  X(CreateShaderModule)             \
  X(DestroyShaderModule)            \
  X(CreateDescriptorSetLayout)      \
  X(DestroyDescriptorSetLayout)     \
  X(CreatePipelineLayout)           \
  X(DestroyPipelineLayout)          \
  X(CreateComputePipelines)         \
  X(DestroyPipeline)                \
  X(CreateDescriptorPool)           \
  X(DestroyDescriptorPool)          \
  X(AllocateDescriptorSets)         \
  X(UpdateDescriptorSets)           \
  X(CreateCommandPool)              \
  X(DestroyCommandPool)             \
  X(AllocateCommandBuffers)         \
  X(FreeCommandBuffers)             \
  X(BeginCommandBuffer)             \
  X(EndCommandBuffer)               \
  X(CmdBindPipeline)                \
  X(CmdBindDescriptorSets)          \
  X(CmdPushConstants)               \
  X(CmdDispatch)                    \
  X(CmdPipelineBarrier)             \
  X(CmdCopyBuffer)                  \
  X(CmdFillBuffer)                  \
  X(CreateFence)                    \
  X(DestroyFence)                   \
  X(ResetFences)                    \
  X(WaitForFences)                  \
  X(QueueSubmit)

#define T2R_VK_MEMBER(name) PFN_vk##name name = nullptr;

// One table per Device: device-level pointers come from vkGetDeviceProcAddr of that device.
struct Vk {
  T2R_VK_GLOBAL_FUNCTIONS(T2R_VK_MEMBER)
  T2R_VK_INSTANCE_FUNCTIONS(T2R_VK_MEMBER)
  T2R_VK_DEBUG_FUNCTIONS(T2R_VK_MEMBER)
  T2R_VK_DEVICE_FUNCTIONS(T2R_VK_MEMBER)

  // Opens the loader once per process and fills the global functions; throws t2r::Error when
  // no Vulkan loader is installed.
  void load_global();
  void load_instance(VkInstance instance, bool debug_utils);
  void load_device(VkDevice device);
};

#undef T2R_VK_MEMBER

// A zeroed Vulkan structure with its sType set.
template <typename T>
T make(VkStructureType type) {
  T value{};
  value.sType = type;
  return value;
}

// Throws t2r::Error "what: VK_ERROR_..." unless result is VK_SUCCESS.
void check(VkResult result, const char* what);
std::string result_name(VkResult result);

}  // namespace t2r::vulkan
