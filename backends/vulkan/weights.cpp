#include "weights.h"

#include <algorithm>
#include <cstring>

#include "error.h"

namespace t2r::vulkan {
namespace {

// Staging memory for the upload: the model goes up in pieces of at most this size.
constexpr VkDeviceSize kStagingBytes = VkDeviceSize(64) << 20;
// Kernels may read a word or quad past the end of a tensor's last row (weights.glsl).
constexpr VkDeviceSize kReadPadding = 16;

}  // namespace

Weights::Weights(Device& device, const Model& model) : arena_(device) {
  struct Piece {
    const void* host;
    size_t region;
    VkDeviceSize size;
  };
  std::vector<Piece> pieces;
  for (const TensorInfo& t : model.file().tensors()) {
    const size_t region = arena_.reserve(t.size + kReadPadding, "tensor " + t.name);
    regions_[t.data] = region;
    pieces.push_back({t.data, region, t.size});
  }
  const std::vector<float>& freq = model.position_freq();
  position_freq_ = arena_.reserve(freq.size() * sizeof(float), "position frequencies");
  pieces.push_back({freq.data(), position_freq_, freq.size() * sizeof(float)});
  arena_.allocate(Memory::Device);

  VkDeviceSize total = 0;
  for (const Piece& p : pieces) total += p.size;
  Buffer staging(device, std::max<VkDeviceSize>(std::min(total, kStagingBytes), 16), Memory::Upload);
  auto* bytes = static_cast<unsigned char*>(staging.mapped());
  std::vector<VkBufferCopy> copies;
  std::vector<VkBuffer> targets;
  VkDeviceSize used = 0;
  auto flush = [&] {
    device.run_once([&](VkCommandBuffer cb) {
      for (size_t i = 0; i < copies.size(); ++i) device.vk().CmdCopyBuffer(cb, staging.span().buffer, targets[i], 1, &copies[i]);
    });
    copies.clear();
    targets.clear();
    used = 0;
  };
  for (const Piece& p : pieces) {
    const Span target = arena_[p.region];
    for (VkDeviceSize done = 0; done < p.size;) {
      if (used == staging.size()) flush();
      const VkDeviceSize n = std::min(p.size - done, staging.size() - used);
      std::memcpy(bytes + used, static_cast<const unsigned char*>(p.host) + done, n);
      copies.push_back({used, target.offset + done, n});
      targets.push_back(target.buffer);
      used += n;
      done += n;
    }
  }
  if (!copies.empty()) flush();
}

Span Weights::find(const void* host) const {
  auto it = regions_.find(host);
  if (it == regions_.end()) throw Error("Vulkan backend: a weight is not a tensor of the model file");
  return arena_[it->second];
}

DeviceMatrix Weights::matrix(const cpu::Matrix& m) const {
  if (m.rows > UINT32_MAX || m.cols > UINT32_MAX) throw Error("Vulkan backend: a matrix is too large");
  return {m.dtype, find(m.data), uint32_t(m.rows), uint32_t(m.cols)};
}

Span Weights::vector(const float* v) const { return v ? find(v) : Span{}; }

}  // namespace t2r::vulkan
