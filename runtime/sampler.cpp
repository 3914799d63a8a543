#include "sampler.h"

#include <algorithm>
#include <cmath>

#include "error.h"

namespace t2r {

Sampler::Sampler(int32_t vocab_size, SamplerOptions options) : vocab_size_(vocab_size), options_(options) {
  if (vocab_size < 1) throw Error("sampler: vocabulary is empty");
  if (!(options.temperature >= 0 && options.temperature <= 100)) throw Error("sampler: temperature must be in [0, 100]");
  if (options.top_k < 0) throw Error("sampler: top-k must be >= 0");
  if (!(options.top_p > 0 && options.top_p <= 1)) throw Error("sampler: top-p must be in (0, 1]");
  if (!(options.repetition_penalty > 0 && options.repetition_penalty <= 100)) {
    throw Error("sampler: repetition penalty must be in (0, 100]");
  }
  if (options.penalty_window < 0 || options.penalty_window > 1 << 20) {
    throw Error("sampler: penalty window must be in [0, 1048576]");
  }
  probs_.resize(size_t(vocab_size));
  order_.resize(size_t(vocab_size));
  history_.resize(size_t(options.penalty_window));
  reset();
}

void Sampler::reset() {
  rng_state_ = options_.seed;
  history_count_ = history_next_ = 0;
}

// splitmix64: tiny, fast, and good enough to draw one uniform number per token.
float Sampler::next_uniform() {
  uint64_t z = (rng_state_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return float(z >> 40) / float(1ull << 24);
}

void Sampler::accept(int32_t token) {
  if (history_.empty()) return;
  history_[history_next_] = token;
  history_next_ = (history_next_ + 1) % history_.size();
  history_count_ = std::min(history_count_ + 1, history_.size());
}

int32_t Sampler::sample(const float* logits) {
  const size_t n = size_t(vocab_size_);
  // A broken model can emit NaN or infinite logits; the choice must stay defined (sorting NaN
  // breaks std::sort's ordering). NaN never wins: it counts as -inf.
  for (size_t i = 0; i < n; ++i) probs_[i] = std::isnan(logits[i]) ? -INFINITY : logits[i];
  // CTRL-style penalty (Keskar et al. 2019): shrink the logit of each recent token once.
  if (options_.repetition_penalty != 1.0f) {
    for (size_t i = 0; i < history_count_; ++i) {
      const int32_t t = history_[i];
      if (t < 0 || t >= vocab_size_) continue;
      float& l = probs_[size_t(t)];
      bool seen = false;  // a token repeated in the window is penalized once
      for (size_t j = 0; j < i && !seen; ++j) seen = history_[j] == t;
      if (!seen) l = l > 0 ? l / options_.repetition_penalty : l * options_.repetition_penalty;
    }
  }

  int32_t chosen = 0;
  for (size_t i = 1; i < n; ++i) {
    if (probs_[i] > probs_[size_t(chosen)]) chosen = int32_t(i);
  }
  const float max = probs_[size_t(chosen)];
  // Sampling needs a finite maximum (an infinite one would make exp() NaN): else stay greedy.
  if (options_.temperature != 0.0f && std::isfinite(max)) {
    double sum = 0;
    for (size_t i = 0; i < n; ++i) {
      probs_[i] = std::exp((probs_[i] - max) / options_.temperature);
      sum += probs_[i];
    }
    for (size_t i = 0; i < n; ++i) probs_[i] = float(probs_[i] / sum);

    // Candidates: all tokens, cut to the top k, then to the smallest set holding top_p of the mass.
    for (size_t i = 0; i < n; ++i) order_[i] = int32_t(i);
    const auto more_likely = [&](int32_t a, int32_t b) {
      return probs_[size_t(a)] != probs_[size_t(b)] ? probs_[size_t(a)] > probs_[size_t(b)] : a < b;
    };
    size_t candidates = n;
    if (options_.top_k > 0 && size_t(options_.top_k) < n) {
      candidates = size_t(options_.top_k);
      std::nth_element(order_.begin(), order_.begin() + long(candidates), order_.end(), more_likely);
    }
    if (options_.top_p < 1.0f) {
      // A token other than the most likely one is in the nucleus only if it and the tokens after
      // it hold more than 1 - p, so tokens below (1 - p) / (n - 1) can be dropped before the sort.
      // The most likely token always stays: for p < 1 / n the cutoff can exceed its probability.
      const int32_t most_likely = chosen;
      const float cutoff = (1.0f - options_.top_p) / float(n - 1);
      candidates = size_t(std::partition(order_.begin(), order_.begin() + long(candidates),
                                         [&](int32_t t) { return t == most_likely || probs_[size_t(t)] >= cutoff; }) -
                          order_.begin());
    }
    std::sort(order_.begin(), order_.begin() + long(candidates), more_likely);
    double mass = 0;
    size_t kept = 0;
    while (kept < candidates) {
      mass += probs_[size_t(order_[kept++])];
      if (mass >= options_.top_p) break;
    }
    const double r = next_uniform() * mass;
    double cumulative = 0;
    chosen = order_[kept - 1];
    for (size_t i = 0; i < kept; ++i) {
      cumulative += probs_[size_t(order_[i])];
      if (r < cumulative) {
        chosen = order_[i];
        break;
      }
    }
  }
  accept(chosen);
  return chosen;
}

}  // namespace t2r
