// Corpus BLEU with sacreBLEU's defaults (corpus_bleu(hyps, [refs])): the 13a tokenizer, case
// kept, n-gram counts clipped per sentence and summed over the corpus, BLEU-4 geometric mean
// with 'exp' smoothing and the brevity penalty, so that scores compare with published ones.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace t2r {

// sacreBLEU's Tokenizer13a (mteval-v13a): drops `<skipped>`, joins `-\n` hyphenations,
// unescapes &quot; &amp; &lt; &gt;, splits off punctuation (period and comma only away from
// digits, dash after a digit) and leaves one space between tokens. Throws t2r::Error on
// invalid UTF-8.
std::string tokenize_13a(std::string_view line);

// Sufficient statistics of a corpus: summing them over sentences is how corpus BLEU differs
// from an average of sentence scores.
struct BleuStats {
  int64_t correct[4] = {};  // clipped matches of the hypotheses' n-grams, n = 1..4
  int64_t total[4] = {};    // the hypotheses' n-grams
  int64_t sys_len = 0;      // hypothesis tokens
  int64_t ref_len = 0;      // reference tokens

  // Adds one sentence pair (trailing whitespace stripped, then 13a-tokenized, as sacreBLEU
  // does). Throws t2r::Error naming the hypothesis or the reference when it is not UTF-8.
  void add(std::string_view hypothesis, std::string_view reference);
};

struct BleuScore {
  double score;          // 0..100, unrounded, as sacreBLEU's BLEUScore.score
  double precisions[4];  // percent, smoothed where no n-gram matched
  double brevity_penalty;
};

BleuScore bleu_score(const BleuStats& stats);

}  // namespace t2r
