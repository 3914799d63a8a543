// A context on a Vulkan device: runtime/context.h's Context, computed by compute shaders. It holds
// the states of up to max_sequences sequences on the device, each one block of floats laid out by
// the same StateLayout as the CPU's (so saving, restoring and copying a sequence are plain copies,
// and saved states move between the backends), and runs the model through the weights that every
// context of the model on the device shares (vulkan/device_model.h).
//
// Everything is planned, allocated and recorded once, at creation. A batch of n rows (any mix of
// sequences) runs as one pass through the layers: the embedding of every row in one dispatch, then
// per layer seven dependent steps over all rows: the attention norm (one pass, which the three
// projections read), the projections (each weight read once for up to 8 rows, or in batches of
// more than kMatmulMinRows rows once per 32 as tiled products), attention (a workgroup per head
// and run of consecutive rows of one sequence, stepping through the run's positions; linear
// attention: runs of kLinearAttentionChunkMinRows rows or more in chunks, in the chunked form; with
// a long KV cache, in batches of up to kMatmulMinRows rows, a workgroup per kSplitPositions
// positions, head and row, then their combination), the output projection, the feed-forward norm,
// its up and down projections; then the final norm and the output projection of the rows that ask
// for logits (tiled when more than kMatmulMinRows do). The activations are planned for max_batch
// rows; the row count, the runs and the rows that want logits are a small upload
// (vulkan/batch_input.h) that the kernels read, so one recorded program serves every batch.
// decode() writes that input and submits the batch's section (one recorded for batches of one row
// does no work for absent rows), the logits' and the copy of the logits to the host, as one
// submission. Each row's logits are bit for bit those of its sequence run alone in batches of up
// to kMatmulMinRows rows, and agree with them to rounding in larger ones.
// Decoding allocates nothing, on the host or the device.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "architecture.h"
#include "batch.h"
#include "batch_input.h"
#include "device_model.h"
#include "memory.h"
#include "model.h"
#include "program.h"

namespace t2r::vulkan {

struct ContextOptions {
  int max_sequences = 1;
  int max_batch = 64;       // rows one decode() takes: tokens of every sequence together
  int max_outputs = 0;      // rows of one decode() that ask for logits (0: min(max_sequences, max_batch))
  int64_t max_context = 0;  // softmax layers: KV positions per sequence (0: the model's max_positions)
  // The most device memory the context may need: bytes() plus the model's weights (counted for each
  // context, though contexts of one model share them); 0: no limit.
  uint64_t memory_budget = 0;
  DeviceOptions device;
};

class Context {
 public:
  // Batches of more rows than this run the layers' projections as tiled matrix products
  // (vulkan/ops.h matmul), which sum in another order than the matvec.
  static constexpr size_t kMatmulMinRows = 16;

  // Opens (or shares) the device and the model's weights on it, plans and allocates the states and
  // activations, and records the program. Throws t2r::Error for bad options (the CPU context's
  // messages), no suitable device, a plan over options.memory_budget (stating the bytes needed), or
  // a model that does not fit the device.
  Context(const Model& model, const ContextOptions& options = {});
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  // As t2r::Context::decode: the logits of the rows that asked for them, [outputs(), vocab_size] in
  // row order, valid until the next call; throws t2r::Error, changing nothing, for a bad batch (the
  // CPU context's checks and messages) or a position of 2^32 or beyond. Never allocates.
  const float* decode(const BatchRow* rows, size_t count);
  const float* logits(size_t output) const { return host_logits_ + output * vocab_size_; }
  size_t outputs() const { return outputs_; }

  // Sequence operations, as t2r::Context's; each throws t2r::Error for a sequence outside
  // [0, max_sequences). Each is one small submission (not per token).
  int64_t position(int sequence) const;
  void clear(int sequence);     // back to the empty sequence
  void copy(int from, int to);  // `to` continues exactly as `from` would
  // The sequence's state as the CPU context saves it (version 2 of runtime/sequence_state.h).
  size_t state_size(int sequence) const;
  void save(int sequence, void* out, size_t size) const;
  // Throws t2r::Error, leaving the sequence as it was, for a state of another model or size, a
  // damaged header, a position beyond 2^53 or the KV cache, or a NaN or infinite float.
  void restore(int sequence, const void* data, size_t size);

  const Model& model() const { return model_; }
  const StateLayout& state_layout() const { return layout_; }
  int max_sequences() const { return limits_.max_sequences; }
  size_t max_batch() const { return limits_.max_batch; }
  size_t max_outputs() const { return limits_.max_outputs; }
  int64_t max_context() const { return layout_.max_context > 0 ? layout_.max_context : -1; }  // -1: unbounded
  // Device memory this context allocated: states, activations, transfer buffers. The weights are
  // the DeviceModel's, shared with the model's other contexts on the device (weight_bytes()).
  size_t bytes() const { return bytes_; }
  size_t weight_bytes() const { return device_model_->bytes(); }
  std::shared_ptr<const DeviceModel> device_model() const { return device_model_; }
  const Device& device() const { return device_model_->device(); }

  // For Session's state (version 1: the last logits, then the blocks). The blocks of a sequence in
  // the saved order (state_size(sequence) - kStateHeaderBytes bytes):
  void save_blocks(int sequence, void* out) const;
  // Writes the blocks of a sequence at `position` (checked by the caller) and sets its position.
  void restore_blocks(int sequence, int64_t position, const void* blocks);
  // Sets the logits of `output` to vocab_size floats (zeros for nullptr): a restored Session's last
  // logits, which a saved state holds at any alignment.
  void write_logits(size_t output, const void* values);

 private:
  struct Regions;
  // Whether softmax attention is split over the positions (flash-decoding) in the sections of at
  // most kMatmulMinRows rows: when the KV cache holds more than one split of positions.
  bool splits_attention() const;
  void plan(Regions& r);
  void record(const Regions& r);
  // The device span of `floats` floats at `offset` floats into a sequence's block.
  Span state_span(int sequence, size_t offset, size_t floats) const;
  // Runs the copies of a one-off program: save, restore, copy and clear.
  template <typename Record>
  void run_once(Record record) const;

  const Model& model_;
  ContextLimits limits_;  // checked before the device is opened
  StateLayout layout_;
  BatchInputLimits batch_limits_;  // runs: at most one per sequence
  size_t vocab_size_ = 0;
  std::shared_ptr<DeviceModel> device_model_;
  Device& device_;
  size_t bytes_ = 0;
  size_t outputs_ = 0;
  std::vector<int64_t> positions_of_;  // each sequence's next position
  Arena activations_, states_;
  size_t states_region_ = 0;
  Buffer inputs_;    // the batch input (vulkan/batch_input.h), written by the host before a decode
  Buffer readback_;  // the logits of max_outputs rows, copied back by a copy section
  Buffer transfer_;  // one sequence's saved blocks, on their way to or from the host
  float* host_logits_ = nullptr;
  std::unique_ptr<Program> program_;  // the batch's sections and the logits' copies (record())
  uint32_t one_row_section_ = 0, tiled_section_ = 0, copy_section_ = 0;
  // The logits of one row, of up to kMatmulMinRows rows, and of more (tiled).
  uint32_t logits_sections_[3] = {};
};

}  // namespace t2r::vulkan
