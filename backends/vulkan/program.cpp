#include "program.h"

#include <algorithm>
#include <string>

#include "error.h"

namespace t2r::vulkan {
namespace {

constexpr VkPipelineStageFlags kDeviceStages = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
constexpr VkAccessFlags kDeviceWrites = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
constexpr VkAccessFlags kDeviceAccess =
    VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;

void memory_barrier(const Vk& vk, VkCommandBuffer cb, VkPipelineStageFlags dst_stages, VkAccessFlags dst_access) {
  auto barrier = make<VkMemoryBarrier>(VK_STRUCTURE_TYPE_MEMORY_BARRIER);
  barrier.srcAccessMask = kDeviceWrites;
  barrier.dstAccessMask = dst_access;
  vk.CmdPipelineBarrier(cb, kDeviceStages, dst_stages, 0, 1, &barrier, 0, nullptr, 0, nullptr);
}

}  // namespace

Program::Program(Device& device) : device_(device), dummy_(device, 16, Memory::Device) {}

Program::~Program() {
  const Vk& vk = device_.vk();
  if (fence_) vk.DestroyFence(device_.handle(), fence_, nullptr);
  // Destroying the pool frees its command buffers.
  if (command_pool_) vk.DestroyCommandPool(device_.handle(), command_pool_, nullptr);
  if (pool_) vk.DestroyDescriptorPool(device_.handle(), pool_, nullptr);
}

void Program::add(Command command) {
  if (!cbs_.empty()) throw Error("Program: commands added after finish()");
  commands_.push_back(command);
}

void Program::dispatch(const Dispatch& d) { add({Command::Dispatch, d, {}, {}}); }
void Program::copy(Span from, Span to) { add({Command::Copy, {}, from, to}); }
void Program::fill_zero(Span span) { add({Command::Fill, {}, {}, span}); }
void Program::barrier() { add({Command::Barrier, {}, {}, {}}); }
void Program::host_barrier() { add({Command::HostBarrier, {}, {}, {}}); }

uint32_t Program::section() {
  add({Command::Section, {}, {}, {}});
  return sections_++;
}

size_t Program::dispatch_count() const {
  return size_t(std::count_if(commands_.begin(), commands_.end(), [](const Command& c) { return c.kind == Command::Dispatch; }));
}

void Program::finish() {
  if (!cbs_.empty()) throw Error("Program: finish() called twice");
  const Vk& vk = device_.vk();
  const VkDevice dev = device_.handle();
  const uint32_t sets = uint32_t(std::max<size_t>(dispatch_count(), 1));
  const VkDescriptorPoolSize size{VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, sets * kBindings};
  auto pool = make<VkDescriptorPoolCreateInfo>(VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO);
  pool.maxSets = sets;
  pool.poolSizeCount = 1;
  pool.pPoolSizes = &size;
  check(vk.CreateDescriptorPool(dev, &pool, nullptr, &pool_), "vkCreateDescriptorPool");

  auto command_pool = make<VkCommandPoolCreateInfo>(VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO);
  command_pool.queueFamilyIndex = device_.queue_family();
  check(vk.CreateCommandPool(dev, &command_pool, nullptr, &command_pool_), "vkCreateCommandPool");
  auto allocate = make<VkCommandBufferAllocateInfo>(VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO);
  allocate.commandPool = command_pool_;
  allocate.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
  allocate.commandBufferCount = sections_;
  cbs_.resize(sections_);
  check(vk.AllocateCommandBuffers(dev, &allocate, cbs_.data()), "vkAllocateCommandBuffers");
  submitted_.resize(sections_);
  auto fence = make<VkFenceCreateInfo>(VK_STRUCTURE_TYPE_FENCE_CREATE_INFO);
  check(vk.CreateFence(dev, &fence, nullptr, &fence_), "vkCreateFence");

  size_t section = 0;
  VkCommandBuffer cb = VK_NULL_HANDLE;
  auto begin_section = [&] {
    cb = cbs_[section];
    auto begin = make<VkCommandBufferBeginInfo>(VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO);
    check(vk.BeginCommandBuffer(cb, &begin), "vkBeginCommandBuffer");
    // What ran before (this program's other sections, or any other program) finished its writes
    // before this section starts.
    memory_barrier(vk, cb, kDeviceStages, kDeviceAccess);
  };
  begin_section();
  const Pipeline* bound = nullptr;
  for (const Command& c : commands_) {
    switch (c.kind) {
      case Command::Dispatch: {
        auto set_info = make<VkDescriptorSetAllocateInfo>(VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO);
        const VkDescriptorSetLayout layout = device_.set_layout();
        set_info.descriptorPool = pool_;
        set_info.descriptorSetCount = 1;
        set_info.pSetLayouts = &layout;
        VkDescriptorSet set = VK_NULL_HANDLE;
        check(vk.AllocateDescriptorSets(dev, &set_info, &set), "vkAllocateDescriptorSets");
        if (bound != c.dispatch.pipeline) {
          vk.CmdBindPipeline(cb, VK_PIPELINE_BIND_POINT_COMPUTE, c.dispatch.pipeline->handle);
          bound = c.dispatch.pipeline;
        }
        record_dispatch(cb, c.dispatch, set);
        break;
      }
      case Command::Copy: {
        const VkBufferCopy region{c.from.offset, c.to.offset, std::min(c.from.size, c.to.size)};
        vk.CmdCopyBuffer(cb, c.from.buffer, c.to.buffer, 1, &region);
        break;
      }
      case Command::Fill: vk.CmdFillBuffer(cb, c.to.buffer, c.to.offset, c.to.size, 0); break;
      case Command::Barrier: memory_barrier(vk, cb, kDeviceStages, kDeviceAccess); break;
      case Command::HostBarrier: memory_barrier(vk, cb, VK_PIPELINE_STAGE_HOST_BIT, VK_ACCESS_HOST_READ_BIT); break;
      case Command::Section:
        check(vk.EndCommandBuffer(cb), "vkEndCommandBuffer");
        ++section;
        begin_section();
        bound = nullptr;  // a command buffer starts with no pipeline bound
        break;
    }
  }
  check(vk.EndCommandBuffer(cb), "vkEndCommandBuffer");
}

void Program::record_dispatch(VkCommandBuffer cb, const vulkan::Dispatch& d, VkDescriptorSet set) {
  const Vk& vk = device_.vk();
  VkDescriptorBufferInfo infos[kBindings];
  VkWriteDescriptorSet writes[kBindings];
  for (uint32_t i = 0; i < kBindings; ++i) {
    const Span s = d.bindings[i].buffer ? d.bindings[i] : dummy_.span();
    infos[i] = {s.buffer, s.offset, s.size};
    writes[i] = make<VkWriteDescriptorSet>(VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET);
    writes[i].dstSet = set;
    writes[i].dstBinding = i;
    writes[i].descriptorCount = 1;
    writes[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
    writes[i].pBufferInfo = &infos[i];
  }
  vk.UpdateDescriptorSets(device_.handle(), kBindings, writes, 0, nullptr);
  vk.CmdBindDescriptorSets(cb, VK_PIPELINE_BIND_POINT_COMPUTE, device_.pipeline_layout(), 0, 1, &set, 0, nullptr);
  vk.CmdPushConstants(cb, device_.pipeline_layout(), VK_SHADER_STAGE_COMPUTE_BIT, 0, kPushConstantBytes, d.push);
  const uint32_t max_x = device_.limits().maxComputeWorkGroupCount[0];
  const uint32_t x = std::min(d.groups, max_x), y = (d.groups + x - 1) / x;
  if (y > device_.limits().maxComputeWorkGroupCount[1]) {
    throw Error("a dispatch of " + std::to_string(d.groups) + " workgroups exceeds Vulkan device " + device_.name() +
                "'s limits");
  }
  vk.CmdDispatch(cb, x, y, 1);
}

void Program::run() {
  if (cbs_.empty()) throw Error("Program: run before finish");
  run_submitted(cbs_.data(), cbs_.size());
}

void Program::run(const uint32_t* sections, size_t count) {
  if (cbs_.empty()) throw Error("Program: run before finish");
  if (count > cbs_.size()) throw Error("Program: more sections submitted than recorded");
  for (size_t i = 0; i < count; ++i) {
    if (sections[i] >= cbs_.size()) throw Error("Program: section " + std::to_string(sections[i]) + " does not exist");
    submitted_[i] = cbs_[sections[i]];
  }
  run_submitted(submitted_.data(), count);
}

void Program::run_submitted(const VkCommandBuffer* buffers, size_t count) {
  if (count == 0) return;
  const Vk& vk = device_.vk();
  device_.submit(buffers, uint32_t(count), fence_);
  check(vk.WaitForFences(device_.handle(), 1, &fence_, VK_TRUE, UINT64_MAX), "vkWaitForFences");
  check(vk.ResetFences(device_.handle(), 1, &fence_), "vkResetFences");
}

}  // namespace t2r::vulkan
