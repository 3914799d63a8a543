// A fixed sequence of GPU commands (dispatches, copies, barriers), recorded once into a command
// buffer and replayed by run() as often as needed: a session's whole token is one Program.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "memory.h"

namespace t2r::vulkan {

// One compute dispatch: a pipeline, the spans at bindings 0..kBindings-1 (empty ones are bound
// to a dummy buffer) and the push constants as raw words.
struct Dispatch {
  const Pipeline* pipeline = nullptr;
  Span bindings[kBindings] = {};
  uint32_t push[kPushConstantBytes / 4] = {};
  uint32_t groups = 1;  // workgroups; split over y beyond the device's x limit

  // Stores a push-constant word (uint32_t, int32_t or float, bit for bit).
  template <typename T>
  void set(size_t word, T value);
};

class Program {
 public:
  explicit Program(Device& device);
  ~Program();
  Program(const Program&) = delete;
  Program& operator=(const Program&) = delete;

  void dispatch(const Dispatch& d);
  void copy(Span from, Span to);
  void fill_zero(Span span);
  // Orders everything before it before everything after it, with device writes visible to
  // later device reads and writes. Every dependent step needs one; independent dispatches
  // between two barriers may run concurrently.
  void barrier();
  // Makes earlier writes visible to the host once run() returns.
  void host_barrier();

  // Records the command buffer; no commands may be added afterwards.
  void finish();
  // Submits the recorded command buffer and waits for it.
  void run();
  size_t dispatch_count() const;

 private:
  struct Command {
    enum Kind { Dispatch, Copy, Fill, Barrier, HostBarrier } kind;
    vulkan::Dispatch dispatch;
    Span from, to;
  };
  void add(Command command);
  void record_dispatch(VkCommandBuffer cb, const vulkan::Dispatch& d, VkDescriptorSet set);

  Device& device_;
  std::vector<Command> commands_;
  Buffer dummy_;
  VkDescriptorPool pool_ = VK_NULL_HANDLE;
  VkCommandBuffer cb_ = VK_NULL_HANDLE;
  VkFence fence_ = VK_NULL_HANDLE;
};

template <typename T>
void Dispatch::set(size_t word, T value) {
  static_assert(sizeof(T) == 4, "push constants are 32-bit words");
  std::memcpy(&push[word], &value, 4);
}

}  // namespace t2r::vulkan
