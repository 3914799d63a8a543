#include "vk.h"

#include <dlfcn.h>

#include "error.h"

namespace t2r::vulkan {
namespace {

PFN_vkGetInstanceProcAddr open_loader() {
  // Opened once and never closed: function pointers from it live as long as the process.
  static const PFN_vkGetInstanceProcAddr get = [] {
    for (const char* name : {"libvulkan.so.1", "libvulkan.so"}) {
      if (void* library = dlopen(name, RTLD_NOW | RTLD_LOCAL)) {
        return reinterpret_cast<PFN_vkGetInstanceProcAddr>(dlsym(library, "vkGetInstanceProcAddr"));
      }
    }
    return PFN_vkGetInstanceProcAddr(nullptr);
  }();
  if (!get) {
    throw Error("no Vulkan loader found (libvulkan.so.1); install one, e.g. apt-get install libvulkan1 "
                "mesa-vulkan-drivers");
  }
  return get;
}

template <typename F>
void resolve(F& slot, PFN_vkVoidFunction f, const char* name) {
  if (!f) throw Error(std::string("the Vulkan loader lacks vk") + name);
  slot = reinterpret_cast<F>(f);
}

}  // namespace

void Vk::load_global() {
  const PFN_vkGetInstanceProcAddr get = open_loader();
#define T2R_VK_LOAD(name) resolve(name, get(VK_NULL_HANDLE, "vk" #name), #name);
  T2R_VK_GLOBAL_FUNCTIONS(T2R_VK_LOAD)
#undef T2R_VK_LOAD
}

void Vk::load_instance(VkInstance instance, bool debug_utils) {
  const PFN_vkGetInstanceProcAddr get = open_loader();
#define T2R_VK_LOAD(name) resolve(name, get(instance, "vk" #name), #name);
  T2R_VK_INSTANCE_FUNCTIONS(T2R_VK_LOAD)
  if (debug_utils) {
    T2R_VK_DEBUG_FUNCTIONS(T2R_VK_LOAD)
  }
#undef T2R_VK_LOAD
}

void Vk::load_device(VkDevice device) {
#define T2R_VK_LOAD(name) resolve(name, GetDeviceProcAddr(device, "vk" #name), #name);
  T2R_VK_DEVICE_FUNCTIONS(T2R_VK_LOAD)
#undef T2R_VK_LOAD
}

std::string result_name(VkResult result) {
  switch (result) {
#define T2R_VK_RESULT(r) \
  case r: return #r;
    T2R_VK_RESULT(VK_SUCCESS)
    T2R_VK_RESULT(VK_NOT_READY)
    T2R_VK_RESULT(VK_TIMEOUT)
    T2R_VK_RESULT(VK_INCOMPLETE)
    T2R_VK_RESULT(VK_ERROR_OUT_OF_HOST_MEMORY)
    T2R_VK_RESULT(VK_ERROR_OUT_OF_DEVICE_MEMORY)
    T2R_VK_RESULT(VK_ERROR_INITIALIZATION_FAILED)
    T2R_VK_RESULT(VK_ERROR_DEVICE_LOST)
    T2R_VK_RESULT(VK_ERROR_MEMORY_MAP_FAILED)
    T2R_VK_RESULT(VK_ERROR_LAYER_NOT_PRESENT)
    T2R_VK_RESULT(VK_ERROR_EXTENSION_NOT_PRESENT)
    T2R_VK_RESULT(VK_ERROR_FEATURE_NOT_PRESENT)
    T2R_VK_RESULT(VK_ERROR_INCOMPATIBLE_DRIVER)
    T2R_VK_RESULT(VK_ERROR_TOO_MANY_OBJECTS)
    T2R_VK_RESULT(VK_ERROR_OUT_OF_POOL_MEMORY)
#undef T2R_VK_RESULT
    default: return "VkResult " + std::to_string(int(result));
  }
}

void check(VkResult result, const char* what) {
  if (result != VK_SUCCESS) throw Error(std::string("Vulkan: ") + what + " failed: " + result_name(result));
}

}  // namespace t2r::vulkan
