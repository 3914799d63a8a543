#include "sequence_state.h"

#include <cstring>
#include <string>

#include "error.h"
#include "finite_check.h"

namespace t2r {
namespace {
constexpr char kStateMagic[8] = {'T', '2', 'R', 'S', 'T', 'A', 'T', 'E'};
}  // namespace

StateLayout plan_state_layout(const Hyperparams& hp, int64_t max_context) {
  StateLayout layout;
  layout.max_context = hp.has_softmax_attention() ? max_context : 0;
  const size_t H = size_t(hp.n_heads), dh = size_t(hp.head_dim), row = size_t(hp.n_kv_heads) * dh;
  for (const LayerSpec& spec : hp.layers) {
    StateLayout::Layer layer;
    layer.offset = layout.floats;
    if (spec.attention.is_linear()) {
      const LinearAttentionSpec& linear = spec.attention.linear;
      const size_t r = size_t(linear.features), heads = linear.state_per_kv_head ? size_t(hp.n_kv_heads) : H;
      layer.state_floats = heads * r * dh;
      layer.normalizer_floats = linear.readout == Readout::Normalized ? heads * r : 0;
      layer.window_floats = size_t(linear.window) * row;
      layout.floats += layer.state_floats + layer.normalizer_floats + 2 * layer.window_floats;
    } else {
      layer.cache_row_floats = row;
      layout.floats += 2 * size_t(layout.max_context) * row;
    }
    layout.layers.push_back(layer);
  }
  return layout;
}

size_t state_payload_floats(const Hyperparams& hp, const StateLayout& layout, int64_t position) {
  size_t total = 0;
  for_each_state_block(hp, layout, position, [&](size_t, size_t floats) { total += floats; });
  return total;
}

void write_state_header(void* out, const StateHeader& header) {
  auto p = static_cast<unsigned char*>(out);
  const uint32_t reserved = 0;
  std::memcpy(p, kStateMagic, 8);
  std::memcpy(p + 8, &header.version, 4);
  std::memcpy(p + 12, &reserved, 4);
  std::memcpy(p + 16, &header.checksum, 8);
  std::memcpy(p + 24, &header.position, 8);
  std::memcpy(p + 32, &header.payload_bytes, 8);
}

StateHeader check_state(const void* data, size_t size, uint32_t version, uint64_t checksum, int64_t max_position,
                        const Hyperparams& hp, const StateLayout& layout, size_t extra_floats) {
  auto p = static_cast<const unsigned char*>(data);
  if (size < kStateHeaderBytes || std::memcmp(p, kStateMagic, 8) != 0) throw Error("not a t2r session state");
  StateHeader h;
  uint32_t reserved;
  std::memcpy(&h.version, p + 8, 4);
  std::memcpy(&reserved, p + 12, 4);
  std::memcpy(&h.checksum, p + 16, 8);
  std::memcpy(&h.position, p + 24, 8);
  std::memcpy(&h.payload_bytes, p + 32, 8);
  if (h.version != version) {
    throw Error("session state version " + std::to_string(h.version) + " is not supported (expected " +
                std::to_string(version) + ")");
  }
  if (reserved != 0) throw Error("session state is damaged (its reserved field is not zero)");
  if (h.checksum != checksum) throw Error("session state was saved with a different model");
  if (h.position < 0 || h.position > kMaxPosition || (max_position >= 0 && h.position > max_position)) {
    throw Error("session state position " + std::to_string(h.position) + " does not fit this session");
  }
  const size_t expected = (extra_floats + state_payload_floats(hp, layout, h.position)) * sizeof(float);
  if (h.payload_bytes != expected || size != kStateHeaderBytes + expected) {
    throw Error("session state of " + std::to_string(size) + " bytes does not match this model (expected " +
                std::to_string(kStateHeaderBytes + expected) + ")");
  }
  // A saved state is always finite; NaN or infinity would poison every later output.
  NonFinite bad;
  if (find_non_finite(DType::F32, p + kStateHeaderBytes, expected, &bad)) {
    throw Error("session state holds " + std::string(non_finite_name(bad.value)) + " at float " +
                std::to_string(bad.element) + " of its payload");
  }
  return h;
}

}  // namespace t2r
