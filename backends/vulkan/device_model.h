// A model on a Vulkan device: the device and the model's weights uploaded to it, shared by every
// context and session of that model on that device, so that the weights are uploaded and held once.
//
// Shared through a process-wide cache rather than handed around: a vulkan::Context is created from
// (Model, ContextOptions) like the CPU one, so callers such as the C API need no extra object to
// share the upload, and the cache holds only weak references, so the device and the weights go away
// with the last context that uses them.
#pragma once

#include <memory>

#include "device.h"
#include "model.h"
#include "weights.h"

namespace t2r::vulkan {

class DeviceModel {
 public:
  // The DeviceModel of `model` on the device `options` selects: the one a live context already
  // uses, or a new one (opening the device and uploading the weights). Thread-safe. Devices are
  // told apart by the options as given (index, name, validation), not by the device they pick.
  static std::shared_ptr<DeviceModel> open(const Model& model, const DeviceOptions& options);

  DeviceModel(const Model& model, const DeviceOptions& options);  // use open()
  DeviceModel(const DeviceModel&) = delete;
  DeviceModel& operator=(const DeviceModel&) = delete;

  // Not const: recording a context creates pipelines in the device's cache.
  Device& device() const { return *device_; }
  const Weights& weights() const { return *weights_; }
  size_t bytes() const { return size_t(weights_->bytes()); }  // device memory of the weights

 private:
  std::unique_ptr<Device> device_;
  std::unique_ptr<Weights> weights_;
};

}  // namespace t2r::vulkan
