#include "translator.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "error.h"

namespace t2r {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// lprobs = log_softmax(logits) in float, as fairseq computes it.
void log_softmax(const float* logits, size_t n, float* lprobs) {
  const float max = *std::max_element(logits, logits + n);
  float sum = 0;
  for (size_t i = 0; i < n; ++i) sum += std::exp(logits[i] - max);
  const float log_sum = std::log(sum) + max;
  for (size_t i = 0; i < n; ++i) lprobs[i] = logits[i] - log_sum;
}

}  // namespace

// A (beam, token) candidate of one step and the cumulative score it would have.
struct Candidate {
  int beam;
  int32_t token;
  float score;
};

// A sentence being decoded: its live beams (each in one of 2 * beam sequences of the context, so a
// reordering copies a state only where one beam continues in several), their histories, and the
// hypotheses finalized so far. Sized at construction for the longest target.
struct Translator::Sentence {
  int max_len = 0;
  bool done = true;
  int live = 0;  // beams decoded this step: 1 at step 0 (all beams are the same), then beam
  std::vector<int> slot, next_slot;                  // [beam]: each beam's sequence, from first_sequence
  std::vector<char> claimed, used;                   // [beam], [2 beam]: scratch of a reordering
  std::vector<int32_t> tokens, next_tokens;          // [beam, cap]: each beam's target so far
  std::vector<float> positional, next_positional;    // [beam, cap]: their log-probs
  std::vector<float> score, next_score;              // [beam]: cumulative
  std::vector<int> from;                             // [beam]: the old beam each new one continues
  std::vector<Candidate> candidates;                 // [2 beam], best first
  size_t n_candidates = 0;
  std::vector<Hypothesis> finalized;                 // [beam], each reserved for cap ids
  size_t n_finalized = 0;
  int first_sequence = 0;
};

Translator::Translator(const Model& model, TranslatorOptions options) : model_(model), options_(options) {
  const Hyperparams& hp = model.hparams();
  if (!hp.has_encoder()) throw Error("this model has no encoder: it is a language model, not a translation model");
  const TranslatorOptions& o = options_;
  if (o.beam < 1 || o.beam > 64) throw Error("beam must be in [1, 64]");
  if (o.nbest < 1 || o.nbest > o.beam) throw Error("nbest must be in [1, beam]");
  if (o.max_sentences < 1 || o.max_sentences > 1024) throw Error("max sentences must be in [1, 1024]");
  if (!(o.max_len_a >= 0 && o.max_len_a < 1e6f)) throw Error("max_len_a must be in [0, 1e6)");
  if (o.max_len_b < 0) throw Error("max_len_b must be >= 0");
  if (o.min_len < 0) throw Error("min_len must be >= 0");
  if (!std::isfinite(o.length_penalty)) throw Error("length penalty must be a finite number");
  if (o.sampler.temperature > 0 && o.beam != 1) throw Error("sampling (temperature > 0) needs beam 1");
  if (o.max_source_length < 0 || o.max_source_length > (int64_t(1) << 20)) {
    throw Error("max source length must be in [0, 1048576]");
  }
  const int64_t longest = o.max_source_length > 0 ? o.max_source_length : hp.encoder.max_positions;
  const size_t beam = size_t(o.beam), cap = size_t(max_len(size_t(longest))) + 1;  // targets end in </s>

  ContextOptions c;
  c.max_sequences = o.max_sentences * 2 * o.beam;
  c.max_batch = o.max_sentences * o.beam;
  c.max_outputs = c.max_batch;
  c.max_context = int64_t(cap);
  c.threads = o.threads;
  c.memory_budget = o.memory_budget;
  c.max_sources = o.max_sentences;
  c.max_source_length = longest;
  context_ = std::make_unique<Context>(model, c);

  eos_ = model.eos_id() >= 0 ? model.eos_id() : 2;
  sentences_.resize(size_t(o.max_sentences));
  for (Sentence& s : sentences_) {
    s.slot.resize(beam);
    s.next_slot.resize(beam);
    s.claimed.resize(beam);
    s.used.resize(2 * beam);
    s.tokens.resize(beam * cap);
    s.next_tokens.resize(beam * cap);
    s.positional.resize(beam * cap);
    s.next_positional.resize(beam * cap);
    s.score.resize(beam);
    s.next_score.resize(beam);
    s.from.resize(beam);
    s.candidates.resize(2 * beam);
    s.finalized.resize(beam);
    for (Hypothesis& h : s.finalized) {
      h.ids.reserve(cap);
      h.positional_scores.reserve(cap);
    }
  }
  if (o.sampler.temperature > 0) {
    for (int i = 0; i < o.max_sentences; ++i) {
      SamplerOptions so = o.sampler;
      so.seed = o.sampler.seed + uint64_t(i);
      samplers_.emplace_back(int32_t(hp.vocab_size), so);
    }
  }
  rows_.resize(size_t(c.max_batch));
  lprobs_.resize(size_t(hp.vocab_size));
}

Translator::~Translator() = default;

std::vector<int32_t> translation_source_ids(const Model& model, std::string_view text) {
  EncodeOptions options;
  options.add_bos_eos = true;     // the pieces, then </s>
  options.parse_special = false;  // fairseq encodes "<unk>" in a text as the pieces of its characters
  return model.source_tokenizer().encode(text, options);
}

std::string translation_text(const Model& model, const std::vector<int32_t>& ids) {
  const Tokenizer& tokenizer = model.tokenizer();
  std::string text;
  for (int32_t id : ids) {
    if (id == tokenizer.eos_id() || id == tokenizer.bos_id()) continue;
    text += id == tokenizer.data().unk_id ? std::string_view("<unk>") : tokenizer.token_bytes(id);
  }
  const auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; };
  size_t begin = 0, end = text.size();
  while (begin < end && space(text[begin])) ++begin;
  while (end > begin && space(text[end - 1])) --end;
  return text.substr(begin, end - begin);
}

std::vector<std::vector<Hypothesis>> Translator::translate_all(const std::vector<std::vector<int32_t>>& sources) {
  std::vector<size_t> order(sources.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return sources[a].size() > sources[b].size(); });
  std::vector<std::vector<Hypothesis>> out(sources.size()), batch_out;
  std::vector<std::vector<int32_t>> batch;
  for (size_t first = 0; first < order.size(); first += sentences_.size()) {
    batch.clear();
    for (size_t k = first; k < order.size() && k < first + sentences_.size(); ++k) batch.push_back(sources[order[k]]);
    translate(batch, batch_out);
    for (size_t k = 0; k < batch.size(); ++k) out[order[first + k]] = std::move(batch_out[k]);
  }
  return out;
}

int Translator::max_len(size_t source_length) const {
  const double wanted = double(options_.max_len_a) * double(source_length) + double(options_.max_len_b);
  return int(std::min(wanted, double(model_.hparams().max_positions - 1)));
}

void Translator::translate(const std::vector<std::vector<int32_t>>& sources, std::vector<std::vector<Hypothesis>>& out) {
  if (sources.size() > sentences_.size()) {
    throw Error(std::to_string(sources.size()) + " sentences is more than this translator's max sentences (" +
                std::to_string(sentences_.size()) + ")");
  }
  const int64_t V = model_.hparams().encoder.vocab_size;
  for (size_t i = 0; i < sources.size(); ++i) {
    const std::vector<int32_t>& src = sources[i];
    if (src.empty() || src.size() > context_->max_source_length()) {
      throw Error("sentence " + std::to_string(i) + ": a source of " + std::to_string(src.size()) +
                  " tokens (this translator takes 1 to " + std::to_string(context_->max_source_length()) + ")");
    }
    for (int32_t id : src) {
      if (id < 0 || id >= V) throw Error("sentence " + std::to_string(i) + ": source id " + std::to_string(id) + " is outside the source vocabulary");
    }
  }
  const int beam = options_.beam;
  for (size_t i = 0; i < sources.size(); ++i) {
    Sentence& s = sentences_[i];
    s.max_len = max_len(sources[i].size());
    s.done = false;
    s.live = 1;
    s.n_finalized = 0;
    s.first_sequence = int(i) * 2 * beam;
    std::fill(s.score.begin(), s.score.end(), 0.0f);
    context_->encode(int(i), sources[i].data(), sources[i].size());
    for (int b = 0; b < beam; ++b) s.slot[size_t(b)] = b;
    for (int q = 0; q < 2 * beam; ++q) {
      context_->clear(s.first_sequence + q);
      context_->attach(s.first_sequence + q, int(i));
    }
    if (!samplers_.empty()) samplers_[i].reset();
  }
  for (size_t step = 0;; ++step) {
    bool any = false;
    for (size_t i = 0; i < sources.size(); ++i) any = any || !sentences_[i].done;
    if (!any) break;
    this->step(step, sources.size());
  }
  out.resize(sources.size());
  for (size_t i = 0; i < sources.size(); ++i) {
    Sentence& s = sentences_[i];
    std::vector<size_t> order(s.n_finalized);
    std::iota(order.begin(), order.end(), size_t(0));
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return s.finalized[a].score > s.finalized[b].score; });
    out[i].clear();
    for (size_t k = 0; k < order.size() && k < size_t(options_.nbest); ++k) out[i].push_back(s.finalized[order[k]]);
  }
}

void Translator::step(size_t step, size_t n_sentences) {
  const size_t V = size_t(model_.hparams().vocab_size), beam = size_t(options_.beam);
  const size_t cap = sentences_[0].tokens.size() / beam;
  size_t n_rows = 0;
  for (size_t i = 0; i < n_sentences; ++i) {
    const Sentence& s = sentences_[i];
    if (s.done) continue;
    for (int b = 0; b < s.live; ++b) {
      const int32_t token = step == 0 ? eos_ : s.tokens[size_t(b) * cap + step - 1];
      rows_[n_rows++] = BatchRow{token, s.first_sequence + s.slot[size_t(b)], int64_t(step), true};
    }
  }
  const float* logits = context_->decode(rows_.data(), n_rows);

  size_t row = 0;
  for (size_t i = 0; i < n_sentences; ++i) {
    Sentence& s = sentences_[i];
    if (s.done) continue;
    // The best 2 * beam candidates over every live beam's tokens, as fairseq's topk picks them.
    const size_t K = 2 * beam;
    s.n_candidates = 0;
    for (int b = 0; b < s.live; ++b, ++row) {
      log_softmax(logits + row * V, V, lprobs_.data());
      float* lp = lprobs_.data();
      if (size_t(kPad) < V) lp[kPad] = kNegInf;
      if (int(step) < options_.min_len) lp[eos_] = kNegInf;
      if (int(step) >= s.max_len) {
        for (size_t w = 0; w < V; ++w) {
          if (int32_t(w) != eos_) lp[w] = kNegInf;
        }
      }
      const float base = s.score[size_t(b)];
      if (!samplers_.empty()) {  // beam 1: one candidate, drawn
        const int32_t w = samplers_[i].sample(lp);
        s.candidates[0] = Candidate{b, w, base + lp[w]};
        s.n_candidates = 1;
        continue;
      }
      for (size_t w = 0; w < V; ++w) {
        const float score = base + lp[w];
        if (s.n_candidates == K && !(score > s.candidates[K - 1].score)) continue;
        size_t at = s.n_candidates < K ? s.n_candidates++ : K - 1;
        while (at > 0 && score > s.candidates[at - 1].score) {
          s.candidates[at] = s.candidates[at - 1];
          --at;
        }
        s.candidates[at] = Candidate{b, int32_t(w), score};
      }
    }

    // Candidates ending in </s> among the first `beam` are finished hypotheses.
    const auto history = [&](const Candidate& c, size_t k) { return s.tokens[size_t(c.beam) * cap + k]; };
    for (size_t k = 0; k < std::min(beam, s.n_candidates); ++k) {
      const Candidate& c = s.candidates[k];
      if (c.token != eos_ || !(c.score > kNegInf) || s.n_finalized >= beam) continue;
      Hypothesis& h = s.finalized[s.n_finalized++];
      h.ids.clear();
      h.positional_scores.clear();
      for (size_t t = 0; t < step; ++t) {
        h.ids.push_back(history(c, t));
        h.positional_scores.push_back(s.positional[size_t(c.beam) * cap + t]);
      }
      h.ids.push_back(eos_);
      h.positional_scores.push_back(c.score - s.score[size_t(c.beam)]);
      h.score = c.score / std::pow(float(step + 1), options_.length_penalty);
    }
    if (s.n_finalized >= beam || int(step) >= s.max_len) {
      s.done = true;
      continue;
    }

    // The next beams: the first `beam` candidates that do not end in </s>, in score order.
    const size_t want = samplers_.empty() ? beam : 1;
    size_t next = 0;
    for (size_t k = 0; k < s.n_candidates && next < want; ++k) {
      const Candidate& c = s.candidates[k];
      if (c.token == eos_) continue;
      const size_t j = size_t(c.beam);
      std::copy_n(s.tokens.begin() + j * cap, step, s.next_tokens.begin() + next * cap);
      std::copy_n(s.positional.begin() + j * cap, step, s.next_positional.begin() + next * cap);
      s.next_tokens[next * cap + step] = c.token;
      s.next_positional[next * cap + step] = c.score - s.score[j];
      s.next_score[next] = c.score;
      s.from[next] = c.beam;
      ++next;
    }
    // Their states: the first new beam from an old one keeps its sequence; any other gets a copy in a
    // sequence no old beam of this step still needs.
    std::fill(s.claimed.begin(), s.claimed.end(), 0);
    std::fill(s.used.begin(), s.used.end(), 0);
    for (size_t n = 0; n < next; ++n) {
      const size_t j = size_t(s.from[n]);
      s.next_slot[n] = s.claimed[j] ? -1 : s.slot[j];
      if (!s.claimed[j]) s.used[size_t(s.slot[j])] = 1;
      s.claimed[j] = 1;
    }
    for (size_t n = 0; n < next; ++n) {
      if (s.next_slot[n] >= 0) continue;
      const size_t free = size_t(std::find(s.used.begin(), s.used.end(), 0) - s.used.begin());
      s.used[free] = 1;
      context_->copy(s.first_sequence + s.slot[size_t(s.from[n])], s.first_sequence + int(free));
      s.next_slot[n] = int(free);
    }
    s.slot.swap(s.next_slot);
    s.tokens.swap(s.next_tokens);
    s.positional.swap(s.next_positional);
    s.score.swap(s.next_score);
    s.live = int(next);
  }
}

}  // namespace t2r
