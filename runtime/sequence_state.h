// A sequence's state, for every backend: where each layer's part lives in the flat block
// (StateLayout), and the versioned bytes it is saved as. Layout of a saved state, little-endian:
//   "T2RSTATE", u32 version, u32 0, u64 model file checksum, i64 position, u64 payload bytes,
// then the payload, all f32:
//   version 1 (a Session): the last logits [V], then the blocks;
//   version 2 (one sequence of a Context): the blocks.
// The blocks, in this order: S of each linear-attention layer [H, r, d_h], then z of each such layer
// [H, r], then the window keys and values of each linear layer with a window [H_kv, window, d_h]
// each (slot p % window holds position p), then for each softmax layer its keys and then its values of the filled positions
// [position, H_kv d_h]. (For a model of one kind this is version 1's layout from before contexts:
// S [L, H, r, d_h], z [L, H, r], or per layer keys then values.)
#pragma once

#include <cstddef>
#include <cstdint>

#include "architecture.h"
#include "hyperparams.h"

namespace t2r {

constexpr uint32_t kSessionStateVersion = 1;
constexpr uint32_t kSequenceStateVersion = 2;
constexpr size_t kStateHeaderBytes = 40;
// Positions are counted in int64_t; a bound far beyond any real run (2^53 tokens) keeps that count
// from overflowing, whatever position a restored state claims.
constexpr int64_t kMaxPosition = int64_t(1) << 53;

// max_context: positions of each softmax layer's cache (ignored when every layer is linear).
StateLayout plan_state_layout(const Hyperparams& hp, int64_t max_context);

// Calls visit(offset, floats) for each block of a sequence at `position`, in the saved order;
// offsets are in floats from the start of the sequence's state.
template <typename Visit>
void for_each_state_block(const Hyperparams& hp, const StateLayout& layout, int64_t position, Visit visit) {
  for (size_t l = 0; l < layout.layers.size(); ++l) {
    if (hp.attention(l).is_linear()) visit(layout.layers[l].offset, layout.layers[l].state_floats);
  }
  for (size_t l = 0; l < layout.layers.size(); ++l) {
    const StateLayout::Layer& layer = layout.layers[l];
    if (hp.attention(l).is_linear()) visit(layer.offset + layer.state_floats, layer.normalizer_floats);
  }
  for (size_t l = 0; l < layout.layers.size(); ++l) {
    const StateLayout::Layer& layer = layout.layers[l];
    if (layer.window_floats > 0) visit(layer.offset + layer.state_floats + layer.normalizer_floats, 2 * layer.window_floats);
  }
  for (size_t l = 0; l < layout.layers.size(); ++l) {
    if (hp.attention(l).is_linear()) continue;
    const StateLayout::Layer& layer = layout.layers[l];
    const size_t filled = size_t(position) * layer.cache_row_floats;
    visit(layer.offset, filled);
    visit(layer.offset + size_t(layout.max_context) * layer.cache_row_floats, filled);
  }
}

size_t state_payload_floats(const Hyperparams& hp, const StateLayout& layout, int64_t position);

// What a saved state holds, once its header is checked.
struct StateHeader {
  uint32_t version = 0;
  uint64_t checksum = 0;
  int64_t position = 0;
  uint64_t payload_bytes = 0;
};
void write_state_header(void* out, const StateHeader& header);
// Checks the magic, version, reserved field, checksum and position (at most max_position, and
// kMaxPosition), the payload size (extra_floats, such as the logits, then the blocks) against `size`,
// and that every payload float is finite; throws t2r::Error naming what is wrong.
StateHeader check_state(const void* data, size_t size, uint32_t version, uint64_t checksum, int64_t max_position,
                        const Hyperparams& hp, const StateLayout& layout, size_t extra_floats);

}  // namespace t2r
