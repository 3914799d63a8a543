#include "session.h"

#include <cstring>
#include <string>

#include "error.h"
#include "sequence_state.h"

namespace t2r {
namespace {

ContextOptions one_sequence(const Model& model, const SessionOptions& options) {
  if (model.hparams().has_encoder()) {
    throw Error("a translation model continues no prompt: translate with t2r-translate or a Translator");
  }
  ContextOptions o;
  o.max_sequences = 1;
  o.max_batch = options.prefill_chunk;
  o.max_outputs = 1;
  o.max_context = options.max_context;
  o.threads = options.threads;
  o.max_adaptive_prompt = options.max_adaptive_prompt;
  o.memory_budget = options.memory_budget;
  return o;
}

}  // namespace

Session::Session(const Model& model, SessionOptions options)
    : context_(model, one_sequence(model, options)),
      rows_(size_t(options.prefill_chunk)),
      logits_(context_.logits_buffer()) {}

const float* Session::step(int32_t token) { return feed_prompt(context_, rows_.data(), 1, &token, 1); }

const float* Session::prefill(const int32_t* tokens, size_t count) {
  check_prompt(model().hparams(), tokens, count, position(), max_context());
  feed_prompt(context_, rows_.data(), rows_.size(), tokens, count);
  return logits_;
}

const float* Session::prefill_adaptive(const int32_t* tokens, size_t count, const LengthConfig& config) {
  return context_.prefill_adaptive(0, tokens, count, config);
}

void Session::reset() {
  context_.clear(0);
  std::memset(logits_, 0, size_t(model().hparams().vocab_size) * sizeof(float));
}

size_t Session::state_size() const {
  return context_.state_size(0) + size_t(model().hparams().vocab_size) * sizeof(float);
}

void Session::save_state(void* out, size_t size) const {
  if (size < state_size()) {
    throw Error("state buffer of " + std::to_string(size) + " bytes is too small (needs " +
                std::to_string(state_size()) + ")");
  }
  const Hyperparams& hp = model().hparams();
  const size_t V = size_t(hp.vocab_size);
  write_state_header(out, {kSessionStateVersion, model().file().checksum(), position(),
                           uint64_t(state_size() - kStateHeaderBytes)});
  auto p = static_cast<unsigned char*>(out) + kStateHeaderBytes;
  std::memcpy(p, logits_, V * sizeof(float));
  context_.save_blocks(0, p + V * sizeof(float));
}

void Session::restore_state(const void* data, size_t size) {
  const Hyperparams& hp = model().hparams();
  const size_t V = size_t(hp.vocab_size);
  const StateHeader header = check_state(data, size, kSessionStateVersion, model().file().checksum(), max_context(),
                                         hp, context_.state_layout(), V);
  auto p = static_cast<const unsigned char*>(data) + kStateHeaderBytes;
  std::memcpy(logits_, p, V * sizeof(float));
  context_.restore_blocks(0, header.position, p + V * sizeof(float));
}

}  // namespace t2r
