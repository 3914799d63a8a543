#include "batch.h"

#include <algorithm>
#include <string>

#include "error.h"
#include "sequence_state.h"

namespace t2r {
namespace {

void check_token(const Hyperparams& hp, int32_t token) {
  if (token < 0 || token >= hp.vocab_size) {
    throw Error("token id " + std::to_string(token) + " is outside the vocabulary (0.." +
                std::to_string(hp.vocab_size - 1) + ")");
  }
}

[[noreturn]] void position_overflow() {
  throw Error("the session cannot count beyond " + std::to_string(kMaxPosition) + " positions; reset it");
}

// Learned positions end with their table, whatever the attention (a linear model has no cache limit).
void check_learned_position(const Hyperparams& hp, int64_t last) {
  if (hp.positions == PositionKind::Learned && last >= hp.max_positions) {
    throw Error("position " + std::to_string(last) + " is beyond the model's " + std::to_string(hp.max_positions) +
                " learned positions; reset the sequence");
  }
}

[[noreturn]] void cache_full(int64_t max_context) {
  throw Error("the KV cache is full (" + std::to_string(max_context) + " positions); start a larger session");
}

}  // namespace

ContextLimits check_context_limits(const Hyperparams& hp, int max_sequences, int max_batch, int max_outputs,
                                   int64_t max_context) {
  if (max_sequences < 1 || max_sequences > 4096) throw Error("max sequences must be in [1, 4096]");
  if (max_batch < 1 || max_batch > 4096) throw Error("prefill chunk must be in [1, 4096]");
  if (max_outputs < 0 || max_outputs > max_batch) throw Error("max outputs must be in [0, max batch] (0: max sequences)");
  if (max_context < 0) throw Error("max context must be >= 0 (0: the model's maximum)");
  ContextLimits limits;
  limits.max_sequences = max_sequences;
  limits.max_batch = size_t(max_batch);
  limits.max_outputs = max_outputs > 0 ? size_t(max_outputs) : std::min(size_t(max_sequences), size_t(max_batch));
  // Learned positions end with their table, whatever the attention.
  if (hp.positions == PositionKind::Learned && max_context > hp.max_positions) {
    throw Error("a context of " + std::to_string(max_context) + " positions is longer than the model's " +
                std::to_string(hp.max_positions) + " learned positions");
  }
  if (!hp.has_softmax_attention()) return limits;
  const int64_t wanted = max_context > 0 ? max_context : hp.max_positions;
  size_t softmax_layers = 0;
  for (const LayerSpec& layer : hp.layers) softmax_layers += !layer.attention.is_linear();
  const double cache_bytes = 2.0 * double(softmax_layers) * double(wanted) * double(hp.n_kv_heads * hp.head_dim) *
                             sizeof(float) * double(max_sequences);
  if (cache_bytes > double(uint64_t(1) << 46)) {
    throw Error("a KV cache of " + std::to_string(wanted) + " positions needs " + std::to_string(cache_bytes / 1e9) +
                " GB; choose a smaller max context");
  }
  limits.max_context = wanted;
  return limits;
}

int check_sequence(int sequence, int max_sequences) {
  if (sequence < 0 || sequence >= max_sequences) {
    throw Error("sequence " + std::to_string(sequence) + " does not exist (this context holds " +
                std::to_string(max_sequences) + ")");
  }
  return sequence;
}

void check_batch_size(size_t count, size_t max_batch) {
  if (count > max_batch) {
    throw Error("a batch of " + std::to_string(count) + " rows is more than this context's max batch (" +
                std::to_string(max_batch) + ")");
  }
}

void check_batch(const Hyperparams& hp, const ContextLimits& limits, const int64_t* next_positions,
                 const BatchRow* rows, size_t count) {
  check_batch_size(count, limits.max_batch);
  size_t outputs = 0;
  for (size_t i = 0; i < count; ++i) {
    const BatchRow& row = rows[i];
    check_token(hp, row.token);
    check_sequence(row.sequence, limits.max_sequences);
    outputs += row.logits;
    const bool continues_run = i > 0 && rows[i - 1].sequence == row.sequence;
    const int64_t expected = continues_run ? rows[i - 1].position + 1 : next_positions[size_t(row.sequence)];
    if (!continues_run) {
      for (size_t j = 0; j + 1 < i; ++j) {
        if (rows[j].sequence == row.sequence) {
          throw Error("batch row " + std::to_string(i) + ": the rows of sequence " + std::to_string(row.sequence) +
                      " must be consecutive");
        }
      }
    }
    if (row.position != expected) {
      throw Error("batch row " + std::to_string(i) + ": sequence " + std::to_string(row.sequence) +
                  " continues at position " + std::to_string(expected) + ", not " + std::to_string(row.position));
    }
    if (row.position >= kMaxPosition) position_overflow();
    if (limits.max_context > 0 && row.position >= limits.max_context) cache_full(limits.max_context);
    check_learned_position(hp, row.position);
  }
  if (outputs > limits.max_outputs) {
    throw Error("a batch asks for the logits of " + std::to_string(outputs) + " rows, more than this context's " +
                "max outputs (" + std::to_string(limits.max_outputs) + ")");
  }
}

void check_prompt(const Hyperparams& hp, const int32_t* tokens, size_t count, int64_t position, int64_t max_context) {
  for (size_t i = 0; i < count; ++i) check_token(hp, tokens[i]);
  if (uint64_t(count) > uint64_t(kMaxPosition - position)) position_overflow();
  if (max_context >= 0 && position + int64_t(count) > max_context) cache_full(max_context);
  if (count > 0) check_learned_position(hp, position + int64_t(count) - 1);
}

}  // namespace t2r
