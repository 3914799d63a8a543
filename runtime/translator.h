// Translation with an encoder-decoder model: beam search with fairseq's SequenceGenerator
// semantics (beam size, length penalty, max_len_a / max_len_b, min length, n-best with scores),
// greedy as beam 1, and sampling. Many sentences run at once: each step is one batched decode over
// every live beam of every sentence, beams are sequences of one Context, and reordering them moves
// fixed-size states. Everything is planned when the translator is made; translating a batch
// allocates only its results.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "context.h"
#include "model.h"
#include "sampler.h"

namespace t2r {

struct TranslatorOptions {
  int beam = 5;                  // 1: greedy (or sampling, with sampler.temperature > 0)
  int nbest = 1;                 // hypotheses kept per sentence, at most beam
  float length_penalty = 1.0f;   // score = sum of log-probs / length^length_penalty
  float max_len_a = 0.0f;        // at most max_len_a * source length + max_len_b target tokens
  int max_len_b = 200;           //   (and the model's max_positions - 1), then </s>
  int min_len = 1;               // </s> is not allowed before this many tokens
  int max_sentences = 8;         // sentences decoded at once
  int64_t max_source_length = 0; // longest source in tokens, </s> included (0: the encoder's max_positions)
  int threads = 0;               // 0: one per physical core
  uint64_t memory_budget = 0;    // the most bytes the translator's context may allocate (0: no limit)
  SamplerOptions sampler;        // beam 1 with temperature > 0: sample instead of the argmax
};

struct Hypothesis {
  std::vector<int32_t> ids;               // target ids, ending in </s>
  float score = 0;                        // sum of positional_scores / ids.size()^length_penalty
  std::vector<float> positional_scores;   // log-prob of each id
};

// Text in, text out with a translation model's tokenizers (Model::tokenizer() throws for an ids-only
// model): the source ids of a line (its pieces, then </s>), and the text of target ids (fairseq's
// detokenization: </s> and <s> dropped, <unk> spelled out, U+2581 as spaces, stripped).
std::vector<int32_t> translation_source_ids(const Model& model, std::string_view text);
std::string translation_text(const Model& model, const std::vector<int32_t>& ids);

class Translator {
 public:
  // Throws t2r::Error for a model without an encoder or options out of range.
  Translator(const Model& model, TranslatorOptions options);
  ~Translator();
  Translator(const Translator&) = delete;
  Translator& operator=(const Translator&) = delete;

  // Translates the sources (source ids, each ending in </s>), at most max_sentences per call; out[i]
  // gets sentence i's n-best, best first. Throws t2r::Error for a source that is empty, too long or
  // holds an id outside the source vocabulary (before any decoding).
  void translate(const std::vector<std::vector<int32_t>>& sources, std::vector<std::vector<Hypothesis>>& out);

  // Any number of sentences, sorted by length into batches of max_sentences (as CTranslate2 and
  // Marian do); results in input order.
  std::vector<std::vector<Hypothesis>> translate_all(const std::vector<std::vector<int32_t>>& sources);

  const Context& context() const { return *context_; }
  const TranslatorOptions& options() const { return options_; }
  int max_len(size_t source_length) const;  // target tokens before the forced </s>

 private:
  struct Beam;  // one live hypothesis (translator.cpp)
  struct Sentence;
  void step(size_t step, size_t n_sentences);

  const Model& model_;
  TranslatorOptions options_;
  std::unique_ptr<Context> context_;
  std::vector<Sentence> sentences_;
  std::vector<Sampler> samplers_;
  std::vector<BatchRow> rows_;
  std::vector<float> lprobs_;  // one beam's log-probs
  int32_t eos_ = 2;
  static constexpr int32_t kPad = 1;  // fairseq's Dictionary: <s> 0, <pad> 1, </s> 2, <unk> 3
};

}  // namespace t2r
