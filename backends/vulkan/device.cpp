#include "device.h"

#include <algorithm>
#include <cctype>
#include <cstring>

#include "error.h"
#include "spirv.h"

namespace t2r::vulkan {
namespace {

constexpr const char* kValidationLayer = "VK_LAYER_KHRONOS_validation";

bool has_extension(const Vk& vk, const char* layer, const char* name) {
  uint32_t count = 0;
  vk.EnumerateInstanceExtensionProperties(layer, &count, nullptr);
  std::vector<VkExtensionProperties> extensions(count);
  vk.EnumerateInstanceExtensionProperties(layer, &count, extensions.data());
  return std::any_of(extensions.begin(), extensions.end(),
                     [&](const VkExtensionProperties& e) { return std::strcmp(e.extensionName, name) == 0; });
}

bool has_layer(const Vk& vk, const char* name) {
  uint32_t count = 0;
  vk.EnumerateInstanceLayerProperties(&count, nullptr);
  std::vector<VkLayerProperties> layers(count);
  vk.EnumerateInstanceLayerProperties(&count, layers.data());
  return std::any_of(layers.begin(), layers.end(),
                     [&](const VkLayerProperties& l) { return std::strcmp(l.layerName, name) == 0; });
}

// Creates a Vulkan 1.1 instance; with `messenger` (validation wanted and installed) it enables
// the validation layer, its synchronization checks and VK_EXT_debug_utils, and sets *debug.
VkInstance make_instance(Vk& vk, const VkDebugUtilsMessengerCreateInfoEXT* messenger, bool* debug) {
  vk.load_global();
  uint32_t version = 0;
  vk.EnumerateInstanceVersion(&version);
  if (version < VK_API_VERSION_1_1) {
    throw Error("the Vulkan loader supports only Vulkan " + std::to_string(VK_API_VERSION_MAJOR(version)) + "." +
                std::to_string(VK_API_VERSION_MINOR(version)) + "; t2r needs 1.1");
  }
  auto app = make<VkApplicationInfo>(VK_STRUCTURE_TYPE_APPLICATION_INFO);
  app.pApplicationName = "t2r";
  app.apiVersion = VK_API_VERSION_1_1;
  auto info = make<VkInstanceCreateInfo>(VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO);
  info.pApplicationInfo = &app;

  std::vector<const char*> layers, extensions;
  const VkValidationFeatureEnableEXT sync = VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT;
  auto features = make<VkValidationFeaturesEXT>(VK_STRUCTURE_TYPE_VALIDATION_FEATURES_EXT);
  *debug = messenger && has_layer(vk, kValidationLayer) &&
           has_extension(vk, kValidationLayer, VK_EXT_DEBUG_UTILS_EXTENSION_NAME);
  if (*debug) {
    layers.push_back(kValidationLayer);
    extensions.push_back(VK_EXT_DEBUG_UTILS_EXTENSION_NAME);
    info.pNext = messenger;  // also reports on instance creation itself
    if (has_extension(vk, kValidationLayer, VK_EXT_VALIDATION_FEATURES_EXTENSION_NAME)) {
      extensions.push_back(VK_EXT_VALIDATION_FEATURES_EXTENSION_NAME);
      features.enabledValidationFeatureCount = 1;
      features.pEnabledValidationFeatures = &sync;
      features.pNext = messenger;
      info.pNext = &features;
    }
  }
  info.enabledLayerCount = uint32_t(layers.size());
  info.ppEnabledLayerNames = layers.data();
  info.enabledExtensionCount = uint32_t(extensions.size());
  info.ppEnabledExtensionNames = extensions.data();

  VkInstance instance = VK_NULL_HANDLE;
  const VkResult result = vk.CreateInstance(&info, nullptr, &instance);
  if (result == VK_ERROR_INCOMPATIBLE_DRIVER) {
    throw Error("no Vulkan driver found (VK_ERROR_INCOMPATIBLE_DRIVER); install one, e.g. mesa-vulkan-drivers "
                "for the CPU device lavapipe");
  }
  check(result, "vkCreateInstance");
  vk.load_instance(instance, *debug);
  return instance;
}

std::vector<VkPhysicalDevice> physical_devices(const Vk& vk, VkInstance instance) {
  uint32_t count = 0;
  check(vk.EnumeratePhysicalDevices(instance, &count, nullptr), "vkEnumeratePhysicalDevices");
  std::vector<VkPhysicalDevice> devices(count);
  check(vk.EnumeratePhysicalDevices(instance, &count, devices.data()), "vkEnumeratePhysicalDevices");
  devices.resize(count);
  return devices;
}

const char* type_name(VkPhysicalDeviceType type) {
  switch (type) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete GPU";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated GPU";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual GPU";
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return "CPU";
    default: return "other";
  }
}

// Lower is preferred when no device is named.
int type_rank(VkPhysicalDeviceType type) {
  switch (type) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return 0;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return 1;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return 2;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return 3;
    default: return 4;
  }
}

std::string describe(size_t index, const VkPhysicalDeviceProperties& p) {
  return std::to_string(index) + ": " + p.deviceName + " (" + type_name(p.deviceType) + ", Vulkan " +
         std::to_string(VK_API_VERSION_MAJOR(p.apiVersion)) + "." + std::to_string(VK_API_VERSION_MINOR(p.apiVersion)) +
         "." + std::to_string(VK_API_VERSION_PATCH(p.apiVersion)) + ")";
}

// The first queue family that runs compute, or -1.
int compute_family(const Vk& vk, VkPhysicalDevice device) {
  uint32_t count = 0;
  vk.GetPhysicalDeviceQueueFamilyProperties(device, &count, nullptr);
  std::vector<VkQueueFamilyProperties> families(count);
  vk.GetPhysicalDeviceQueueFamilyProperties(device, &count, families.data());
  for (uint32_t i = 0; i < count; ++i) {
    if (families[i].queueFlags & VK_QUEUE_COMPUTE_BIT) return int(i);
  }
  return -1;
}

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

std::vector<std::string> list_devices() {
  Vk vk;
  bool debug = false;
  VkInstance instance = make_instance(vk, nullptr, &debug);
  std::vector<std::string> lines;
  const auto devices = physical_devices(vk, instance);
  for (size_t i = 0; i < devices.size(); ++i) {
    VkPhysicalDeviceProperties p;
    vk.GetPhysicalDeviceProperties(devices[i], &p);
    lines.push_back(describe(i, p));
  }
  vk.DestroyInstance(instance, nullptr);
  return lines;
}

Device::Device(const DeviceOptions& options) {
  auto messenger = make<VkDebugUtilsMessengerCreateInfoEXT>(VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT);
  messenger.messageSeverity =
      VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT;
  messenger.messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT;
  messenger.pfnUserCallback = &Device::on_message;
  messenger.pUserData = this;
  bool debug = false;
  instance_ = make_instance(vk_, options.validation ? &messenger : nullptr, &debug);
  try {
    if (debug) check(vk_.CreateDebugUtilsMessengerEXT(instance_, &messenger, nullptr, &messenger_), "vkCreateDebugUtilsMessengerEXT");
    choose(options);
    create_device();
  } catch (...) {
    release();  // the destructor does not run for a constructor that throws
    throw;
  }
}

Device::~Device() { release(); }

void Device::release() {
  if (device_) {
    for (auto& [key, p] : pipelines_) vk_.DestroyPipeline(device_, p.handle, nullptr);
    for (auto& [key, m] : modules_) vk_.DestroyShaderModule(device_, m, nullptr);
    pipelines_.clear();
    modules_.clear();
    if (pipeline_layout_) vk_.DestroyPipelineLayout(device_, pipeline_layout_, nullptr);
    if (set_layout_) vk_.DestroyDescriptorSetLayout(device_, set_layout_, nullptr);
    if (command_pool_) vk_.DestroyCommandPool(device_, command_pool_, nullptr);
    vk_.DestroyDevice(device_, nullptr);
    device_ = VK_NULL_HANDLE;
  }
  if (messenger_) vk_.DestroyDebugUtilsMessengerEXT(instance_, messenger_, nullptr);
  messenger_ = VK_NULL_HANDLE;
  if (instance_) vk_.DestroyInstance(instance_, nullptr);
  instance_ = VK_NULL_HANDLE;
}

void Device::choose(const DeviceOptions& options) {
  const auto devices = physical_devices(vk_, instance_);
  if (devices.empty()) {
    throw Error("no Vulkan device found; install a driver, e.g. mesa-vulkan-drivers for the CPU device lavapipe");
  }
  std::vector<VkPhysicalDeviceProperties> props(devices.size());
  std::string all;
  for (size_t i = 0; i < devices.size(); ++i) {
    vk_.GetPhysicalDeviceProperties(devices[i], &props[i]);
    all += "\n  " + describe(i, props[i]);
  }
  // Why device i cannot run t2r, or "" when it can.
  auto unusable = [&](size_t i) -> std::string {
    if (props[i].apiVersion < VK_API_VERSION_1_1) return "it supports only Vulkan 1.0; t2r needs 1.1";
    if (compute_family(vk_, devices[i]) < 0) return "it has no compute queue";
    if (props[i].limits.maxPerStageDescriptorStorageBuffers < kBindings) {
      return "it binds fewer than " + std::to_string(kBindings) + " storage buffers per shader";
    }
    return "";
  };

  int chosen = -1;
  if (options.index >= 0) {
    if (size_t(options.index) >= devices.size()) {
      throw Error("there is no Vulkan device " + std::to_string(options.index) + "; the devices are:" + all);
    }
    chosen = options.index;
  } else if (!options.name.empty()) {
    for (size_t i = 0; i < devices.size() && chosen < 0; ++i) {
      if (lower(props[i].deviceName).find(lower(options.name)) != std::string::npos) chosen = int(i);
    }
    if (chosen < 0) throw Error("no Vulkan device name contains '" + options.name + "'; the devices are:" + all);
  } else {
    for (size_t i = 0; i < devices.size(); ++i) {
      if (unusable(i).empty() && (chosen < 0 || type_rank(props[i].deviceType) < type_rank(props[chosen].deviceType))) {
        chosen = int(i);
      }
    }
    if (chosen < 0) throw Error("no Vulkan device can run t2r (" + unusable(0) + "); the devices are:" + all);
  }
  if (const std::string why = unusable(size_t(chosen)); !why.empty()) {
    throw Error(std::string("Vulkan device ") + props[chosen].deviceName + " cannot run t2r: " + why);
  }

  physical_ = devices[chosen];
  queue_family_ = uint32_t(compute_family(vk_, physical_));
  name_ = props[chosen].deviceName;
  limits_ = props[chosen].limits;

  auto subgroup = make<VkPhysicalDeviceSubgroupProperties>(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES);
  auto maintenance3 = make<VkPhysicalDeviceMaintenance3Properties>(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES);
  subgroup.pNext = &maintenance3;
  auto properties2 = make<VkPhysicalDeviceProperties2>(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2);
  properties2.pNext = &subgroup;
  vk_.GetPhysicalDeviceProperties2(physical_, &properties2);
  subgroup_size_ = std::max(subgroup.subgroupSize, 1u);
  subgroup_arithmetic_ = (subgroup.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                         (subgroup.supportedOperations & VK_SUBGROUP_FEATURE_BASIC_BIT) &&
                         (subgroup.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT);
  max_allocation_ = maintenance3.maxMemoryAllocationSize;
  vk_.GetPhysicalDeviceMemoryProperties(physical_, &memory_);
}

void Device::create_device() {
  // No optional features: 8- and 16-bit weights are unpacked from 32-bit words in the shaders,
  // so any Vulkan 1.1 device with a compute queue runs every model.
  const float priority = 1.0f;
  auto queue = make<VkDeviceQueueCreateInfo>(VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO);
  queue.queueFamilyIndex = queue_family_;
  queue.queueCount = 1;
  queue.pQueuePriorities = &priority;
  auto info = make<VkDeviceCreateInfo>(VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO);
  info.queueCreateInfoCount = 1;
  info.pQueueCreateInfos = &queue;
  check(vk_.CreateDevice(physical_, &info, nullptr, &device_), "vkCreateDevice");
  vk_.load_device(device_);
  vk_.GetDeviceQueue(device_, queue_family_, 0, &queue_);

  auto pool = make<VkCommandPoolCreateInfo>(VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO);
  pool.queueFamilyIndex = queue_family_;
  check(vk_.CreateCommandPool(device_, &pool, nullptr, &command_pool_), "vkCreateCommandPool");

  VkDescriptorSetLayoutBinding bindings[kBindings];
  for (uint32_t i = 0; i < kBindings; ++i) {
    bindings[i] = {i, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1, VK_SHADER_STAGE_COMPUTE_BIT, nullptr};
  }
  auto set = make<VkDescriptorSetLayoutCreateInfo>(VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO);
  set.bindingCount = kBindings;
  set.pBindings = bindings;
  check(vk_.CreateDescriptorSetLayout(device_, &set, nullptr, &set_layout_), "vkCreateDescriptorSetLayout");
  const VkPushConstantRange push{VK_SHADER_STAGE_COMPUTE_BIT, 0, kPushConstantBytes};
  auto layout = make<VkPipelineLayoutCreateInfo>(VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO);
  layout.setLayoutCount = 1;
  layout.pSetLayouts = &set_layout_;
  layout.pushConstantRangeCount = 1;
  layout.pPushConstantRanges = &push;
  check(vk_.CreatePipelineLayout(device_, &layout, nullptr, &pipeline_layout_), "vkCreatePipelineLayout");
}

uint32_t Device::memory_type(uint32_t type_bits, VkMemoryPropertyFlags required, VkMemoryPropertyFlags preferred) const {
  int fallback = -1;
  for (uint32_t i = 0; i < memory_.memoryTypeCount; ++i) {
    if (!(type_bits & (1u << i)) || !memory_type_has(i, required)) continue;
    if (memory_type_has(i, preferred)) return i;
    if (fallback < 0) fallback = int(i);
  }
  if (fallback < 0) throw Error("Vulkan device " + name_ + " has no suitable memory type");
  return uint32_t(fallback);
}

bool Device::memory_type_has(uint32_t type, VkMemoryPropertyFlags flags) const {
  return (memory_.memoryTypes[type].propertyFlags & flags) == flags;
}

const Pipeline& Device::pipeline(const std::string& name, uint32_t workgroup_size, const std::vector<uint32_t>& constants) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string key = name + "/" + std::to_string(workgroup_size);
  for (uint32_t c : constants) key += "/" + std::to_string(c);
  if (auto it = pipelines_.find(key); it != pipelines_.end()) return it->second;

  if (workgroup_size > limits_.maxComputeWorkGroupSize[0] || workgroup_size > limits_.maxComputeWorkGroupInvocations) {
    throw Error("Vulkan device " + name_ + " cannot run workgroups of " + std::to_string(workgroup_size));
  }
  const SpirvModule* spirv = subgroup_arithmetic_ ? find_spirv(name + "_sg") : nullptr;
  if (!spirv) spirv = find_spirv(name);
  if (!spirv) throw Error("no SPIR-V module named " + name);
  VkShaderModule& module = modules_[spirv->name];
  if (!module) {
    auto info = make<VkShaderModuleCreateInfo>(VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO);
    info.codeSize = spirv->word_count * 4;
    info.pCode = spirv->words;
    check(vk_.CreateShaderModule(device_, &info, nullptr, &module), "vkCreateShaderModule");
  }

  // Constant 0 is the workgroup size (local_size_x_id = 0), then the shader's own.
  std::vector<uint32_t> values = {workgroup_size};
  values.insert(values.end(), constants.begin(), constants.end());
  std::vector<VkSpecializationMapEntry> entries;
  for (uint32_t i = 0; i < values.size(); ++i) entries.push_back({i, i * 4, 4});
  VkSpecializationInfo specialization{uint32_t(entries.size()), entries.data(), values.size() * 4, values.data()};
  auto info = make<VkComputePipelineCreateInfo>(VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO);
  info.stage = make<VkPipelineShaderStageCreateInfo>(VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO);
  info.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
  info.stage.module = module;
  info.stage.pName = "main";
  info.stage.pSpecializationInfo = &specialization;
  info.layout = pipeline_layout_;
  Pipeline p;
  p.workgroup_size = workgroup_size;
  check(vk_.CreateComputePipelines(device_, VK_NULL_HANDLE, 1, &info, nullptr, &p.handle), "vkCreateComputePipelines");
  return pipelines_.emplace(key, p).first->second;
}

void Device::run_once(const std::function<void(VkCommandBuffer)>& record) {
  std::lock_guard<std::mutex> lock(mutex_);
  // Frees the command buffer and fence however this returns.
  struct Scope {
    const Device& d;
    VkCommandBuffer cb = VK_NULL_HANDLE;
    VkFence fence = VK_NULL_HANDLE;
    ~Scope() {
      if (fence) d.vk_.DestroyFence(d.device_, fence, nullptr);
      if (cb) d.vk_.FreeCommandBuffers(d.device_, d.command_pool_, 1, &cb);
    }
  } scope{*this};
  auto allocate = make<VkCommandBufferAllocateInfo>(VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO);
  allocate.commandPool = command_pool_;
  allocate.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
  allocate.commandBufferCount = 1;
  check(vk_.AllocateCommandBuffers(device_, &allocate, &scope.cb), "vkAllocateCommandBuffers");
  auto begin = make<VkCommandBufferBeginInfo>(VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO);
  begin.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
  check(vk_.BeginCommandBuffer(scope.cb, &begin), "vkBeginCommandBuffer");
  record(scope.cb);
  check(vk_.EndCommandBuffer(scope.cb), "vkEndCommandBuffer");
  auto fence_info = make<VkFenceCreateInfo>(VK_STRUCTURE_TYPE_FENCE_CREATE_INFO);
  check(vk_.CreateFence(device_, &fence_info, nullptr, &scope.fence), "vkCreateFence");
  auto submit = make<VkSubmitInfo>(VK_STRUCTURE_TYPE_SUBMIT_INFO);
  submit.commandBufferCount = 1;
  submit.pCommandBuffers = &scope.cb;
  check(vk_.QueueSubmit(queue_, 1, &submit, scope.fence), "vkQueueSubmit");
  check(vk_.WaitForFences(device_, 1, &scope.fence, VK_TRUE, UINT64_MAX), "vkWaitForFences");
}

void Device::submit(const VkCommandBuffer* buffers, uint32_t count, VkFence fence) {
  auto info = make<VkSubmitInfo>(VK_STRUCTURE_TYPE_SUBMIT_INFO);
  info.commandBufferCount = count;
  info.pCommandBuffers = buffers;
  std::lock_guard<std::mutex> lock(mutex_);
  check(vk_.QueueSubmit(queue_, 1, &info, fence), "vkQueueSubmit");
}

VKAPI_ATTR VkBool32 VKAPI_CALL Device::on_message(VkDebugUtilsMessageSeverityFlagBitsEXT,
                                                  VkDebugUtilsMessageTypeFlagsEXT,
                                                  const VkDebugUtilsMessengerCallbackDataEXT* data, void* user) {
  auto* self = static_cast<Device*>(user);
  std::lock_guard<std::mutex> lock(self->messages_mutex_);
  self->messages_.push_back(data->pMessage ? data->pMessage : "(no message)");
  return VK_FALSE;
}

std::vector<std::string> Device::validation_messages() const {
  std::lock_guard<std::mutex> lock(messages_mutex_);
  return messages_;
}

}  // namespace t2r::vulkan
