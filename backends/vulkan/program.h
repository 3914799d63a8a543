// A fixed sequence of GPU commands (dispatches, copies, barriers), recorded once and replayed by
// run() as often as needed. It may be cut into sections, each recorded into a command buffer of its
// own, so that one submission can replay any of them in any order: a context's Program has a
// section for a batch (and one for a batch of one row) and one per count of logits to copy back.
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
  // Starts the next section and returns its index (a program starts in section 0). Each section
  // begins with a barrier(), so sections replayed in any order see each other's writes.
  uint32_t section();

  // Records the command buffers; no commands may be added afterwards.
  void finish();
  // Submits every section in order and waits for them.
  void run();
  // Submits the given sections (each at most once), in this order, as one submission and waits;
  // allocates nothing.
  void run(const uint32_t* sections, size_t count);
  size_t dispatch_count() const;

 private:
  struct Command {
    enum Kind { Dispatch, Copy, Fill, Barrier, HostBarrier, Section } kind;
    vulkan::Dispatch dispatch;
    Span from, to;
  };
  void add(Command command);
  void record_dispatch(VkCommandBuffer cb, const vulkan::Dispatch& d, VkDescriptorSet set);
  void run_submitted(const VkCommandBuffer* buffers, size_t count);

  Device& device_;
  std::vector<Command> commands_;
  uint32_t sections_ = 1;
  Buffer dummy_;
  VkDescriptorPool pool_ = VK_NULL_HANDLE;
  VkCommandPool command_pool_ = VK_NULL_HANDLE;  // its own, so that threads record without a lock
  std::vector<VkCommandBuffer> cbs_;             // one per section
  std::vector<VkCommandBuffer> submitted_;       // run()'s list, sized by finish()
  VkFence fence_ = VK_NULL_HANDLE;
};

template <typename T>
void Dispatch::set(size_t word, T value) {
  static_assert(sizeof(T) == 4, "push constants are 32-bit words");
  std::memcpy(&push[word], &value, 4);
}

}  // namespace t2r::vulkan
