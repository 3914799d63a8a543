// A Vulkan device chosen for compute: the instance, one queue, the properties the kernels are
// sized from, and the compute pipelines built from the embedded SPIR-V (cached by shader and
// specialization). Contexts on several threads may share one Device (vulkan/device_model.h): the
// pipeline cache, the set-up command pool and the queue are guarded by a mutex, and each Program
// records into a command pool of its own.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "vk.h"

namespace t2r::vulkan {

struct DeviceOptions {
  int index = -1;     // position in list_devices(); -1: choose by name, else the first GPU
  std::string name;   // case-insensitive substring of the device name (when index is -1)
  // Enables VK_LAYER_KHRONOS_validation (with synchronization checks) when it is installed and
  // collects its messages (validation_messages()); for development and tests.
  bool validation = false;
};

// One line per physical device: "0: NVIDIA H100 (discrete GPU, Vulkan 1.4.312)".
std::vector<std::string> list_devices();

// Every pipeline shares one layout: storage buffers at bindings 0..kBindings-1 and
// kPushConstantBytes of push constants.
constexpr uint32_t kBindings = 9;
constexpr uint32_t kPushConstantBytes = 64;

struct Pipeline {
  VkPipeline handle = VK_NULL_HANDLE;
  uint32_t workgroup_size = 0;
};

class Device {
 public:
  explicit Device(const DeviceOptions& options = {});
  ~Device();
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  const Vk& vk() const { return vk_; }
  VkDevice handle() const { return device_; }
  uint32_t queue_family() const { return queue_family_; }
  const std::string& name() const { return name_; }
  const VkPhysicalDeviceLimits& limits() const { return limits_; }
  VkDeviceSize max_allocation() const { return max_allocation_; }
  uint32_t subgroup_size() const { return subgroup_size_; }
  // subgroupAdd/subgroupMax in compute shaders; otherwise kernels reduce in shared memory.
  bool subgroup_arithmetic() const { return subgroup_arithmetic_; }

  // A memory type among type_bits with all `required` flags, preferring one that also has
  // `preferred`; throws when none has the required flags.
  uint32_t memory_type(uint32_t type_bits, VkMemoryPropertyFlags required, VkMemoryPropertyFlags preferred) const;
  bool memory_type_has(uint32_t type, VkMemoryPropertyFlags flags) const;

  // The pipeline for shader `name` (its subgroup variant "name_sg" when the device has subgroup
  // arithmetic) with workgroup size `workgroup_size` and specialization constants 1, 2, ...
  const Pipeline& pipeline(const std::string& name, uint32_t workgroup_size, const std::vector<uint32_t>& constants = {});
  VkDescriptorSetLayout set_layout() const { return set_layout_; }
  VkPipelineLayout pipeline_layout() const { return pipeline_layout_; }

  // Records commands into a fresh command buffer, submits it and waits (set-up work only).
  void run_once(const std::function<void(VkCommandBuffer)>& record);
  // Submits command buffers to the queue, which Vulkan requires its users to synchronize.
  void submit(const VkCommandBuffer* buffers, uint32_t count, VkFence fence);

  // Messages of the validation layer so far (empty unless options.validation).
  std::vector<std::string> validation_messages() const;

 private:
  static VKAPI_ATTR VkBool32 VKAPI_CALL on_message(VkDebugUtilsMessageSeverityFlagBitsEXT,
                                                   VkDebugUtilsMessageTypeFlagsEXT,
                                                   const VkDebugUtilsMessengerCallbackDataEXT*, void*);
  void create_instance(bool validation);
  void choose(const DeviceOptions& options);
  void create_device();
  void release();

  Vk vk_;
  VkInstance instance_ = VK_NULL_HANDLE;
  VkDebugUtilsMessengerEXT messenger_ = VK_NULL_HANDLE;
  VkPhysicalDevice physical_ = VK_NULL_HANDLE;
  VkDevice device_ = VK_NULL_HANDLE;
  VkQueue queue_ = VK_NULL_HANDLE;
  uint32_t queue_family_ = 0;
  VkCommandPool command_pool_ = VK_NULL_HANDLE;
  VkDescriptorSetLayout set_layout_ = VK_NULL_HANDLE;
  VkPipelineLayout pipeline_layout_ = VK_NULL_HANDLE;
  std::string name_;
  VkPhysicalDeviceLimits limits_{};
  VkPhysicalDeviceMemoryProperties memory_{};
  VkDeviceSize max_allocation_ = 0;
  uint32_t subgroup_size_ = 1;
  bool subgroup_arithmetic_ = false;
  std::mutex mutex_;  // guards the pipelines, the modules, command_pool_ and queue_
  std::map<std::string, Pipeline> pipelines_;
  std::map<std::string, VkShaderModule> modules_;
  mutable std::mutex messages_mutex_;
  std::vector<std::string> messages_;
};

}  // namespace t2r::vulkan
