#include "device_model.h"

#include <map>
#include <mutex>
#include <string>
#include <tuple>

namespace t2r::vulkan {

DeviceModel::DeviceModel(const Model& model, const DeviceOptions& options)
    : device_(std::make_unique<Device>(options)), weights_(std::make_unique<Weights>(*device_, model)) {}

std::shared_ptr<DeviceModel> DeviceModel::open(const Model& model, const DeviceOptions& options) {
  using Key = std::tuple<const Model*, int, std::string, bool>;
  static std::mutex mutex;
  static std::map<Key, std::weak_ptr<DeviceModel>> cache;
  std::lock_guard<std::mutex> lock(mutex);
  for (auto it = cache.begin(); it != cache.end();) it = it->second.expired() ? cache.erase(it) : std::next(it);
  std::weak_ptr<DeviceModel>& entry = cache[Key{&model, options.index, options.name, options.validation}];
  if (std::shared_ptr<DeviceModel> live = entry.lock()) return live;
  // Created under the lock: a second context of the same model waits for this upload instead of
  // making its own.
  auto created = std::make_shared<DeviceModel>(model, options);
  entry = created;
  return created;
}

}  // namespace t2r::vulkan
