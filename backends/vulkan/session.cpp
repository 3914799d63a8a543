#include "session.h"

#include <cstring>
#include <string>

#include "error.h"
#include "sequence_state.h"

namespace t2r::vulkan {
namespace {

ContextOptions one_sequence(const SessionOptions& options) {
  ContextOptions o;
  o.max_sequences = 1;
  o.max_batch = options.prefill_chunk;
  o.max_outputs = 1;
  o.max_context = options.max_context;
  o.memory_budget = options.memory_budget;
  o.device = options.device;
  return o;
}

}  // namespace

Session::Session(const Model& model, const SessionOptions& options)
    : context_(model, one_sequence(options)), rows_(size_t(options.prefill_chunk)) {}

const float* Session::step(int32_t token) { return feed_prompt(context_, rows_.data(), 1, &token, 1); }

const float* Session::prefill(const int32_t* tokens, size_t count) {
  check_prompt(model().hparams(), tokens, count, position(), max_context());
  feed_prompt(context_, rows_.data(), rows_.size(), tokens, count);
  return logits();
}

void Session::reset() {
  context_.clear(0);
  context_.write_logits(0, nullptr);
}

size_t Session::state_size() const {
  return context_.state_size(0) + size_t(model().hparams().vocab_size) * sizeof(float);
}

void Session::save_state(void* out, size_t size) const {
  if (size < state_size()) {
    throw Error("state buffer of " + std::to_string(size) + " bytes is too small (needs " +
                std::to_string(state_size()) + ")");
  }
  const size_t logits_bytes = size_t(model().hparams().vocab_size) * sizeof(float);
  write_state_header(out, {kSessionStateVersion, model().file().checksum(), position(),
                           uint64_t(state_size() - kStateHeaderBytes)});
  auto p = static_cast<unsigned char*>(out) + kStateHeaderBytes;
  std::memcpy(p, logits(), logits_bytes);
  context_.save_blocks(0, p + logits_bytes);
}

void Session::restore_state(const void* data, size_t size) {
  const size_t V = size_t(model().hparams().vocab_size);
  const StateHeader header = check_state(data, size, kSessionStateVersion, model().file().checksum(), max_context(),
                                         model().hparams(), context_.state_layout(), V);
  auto p = static_cast<const unsigned char*>(data) + kStateHeaderBytes;
  context_.restore_blocks(0, header.position, p + V * sizeof(float));
  context_.write_logits(0, p);
}

}  // namespace t2r::vulkan
