#include "bleu.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <vector>

#include "error.h"
#include "utf8.h"

namespace t2r {
namespace {

// Python's str.isspace(): sacreBLEU splits and strips with str.split() / str.rstrip().
bool is_python_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

void check_utf8(std::string_view text, const char* what) {
  char32_t cp = 0;
  for (size_t i = 0; i < text.size();) {
    const size_t len = utf8::sequence_at(text, i, &cp);
    if (len == 0) throw Error(std::string(what) + ": invalid UTF-8 at byte " + std::to_string(i));
    i += len;
  }
}

// The words of valid UTF-8 text between runs of Python whitespace (str.split()).
std::vector<std::string_view> python_split(std::string_view text) {
  std::vector<std::string_view> words;
  size_t start = 0;
  bool in_word = false;
  for (size_t i = 0; i < text.size();) {
    char32_t cp = 0;
    const size_t len = utf8::sequence_at(text, i, &cp);
    if (is_python_space(cp)) {
      if (in_word) words.push_back(text.substr(start, i - start));
      in_word = false;
    } else if (!in_word) {
      start = i;
      in_word = true;
    }
    i += len;
  }
  if (in_word) words.push_back(text.substr(start));
  return words;
}

// Valid UTF-8 text without its trailing Python whitespace (str.rstrip()).
std::string_view python_rstrip(std::string_view text) {
  size_t end = 0;
  for (size_t i = 0; i < text.size();) {
    char32_t cp = 0;
    const size_t len = utf8::sequence_at(text, i, &cp);
    i += len;
    if (!is_python_space(cp)) end = i;
  }
  return text.substr(0, end);
}

// One left-to-right pass of non-overlapping replacements, as Python's str.replace.
std::string replace_all(std::string_view text, std::string_view from, std::string_view to) {
  std::string out;
  size_t i = 0;
  for (size_t hit; (hit = text.find(from, i)) != std::string_view::npos; i = hit + from.size()) {
    out.append(text, i, hit - i);
    out.append(to);
  }
  out.append(text, i);
  return out;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_period_or_comma(char c) { return c == '.' || c == ','; }

// The characters 13a's first substitution surrounds by spaces: ASCII punctuation and the space,
// except ' , - . (the classes {-~ [-` space-& (-+ :-@ /).
bool is_split_symbol(char c) {
  return (c >= '{' && c <= '~') || (c >= '[' && c <= '`') || (c >= ' ' && c <= '&') || (c >= '(' && c <= '+') ||
         (c >= ':' && c <= '@') || c == '/';
}

// A substitution of a character pair (x)(y), scanned as Python's re.sub scans: left to right,
// resuming after each match. Bytes give what code points give: one side of each pair is ASCII,
// so a longer sequence on the other side matches by its byte next to it and stays whole.
template <typename Match, typename Emit>
std::string substitute_pairs(const std::string& s, Match match, Emit emit) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    if (i + 1 < s.size() && match(s[i], s[i + 1])) {
      emit(out, s[i], s[i + 1]);
      i += 2;
    } else {
      out += s[i++];
    }
  }
  return out;
}

// The n-grams of `words`, each as its words joined by spaces (words hold none), counted.
std::map<std::string, int64_t> ngram_counts(const std::vector<std::string_view>& words, size_t n) {
  std::map<std::string, int64_t> counts;
  for (size_t i = 0; i + n <= words.size(); ++i) {
    std::string key(words[i]);
    for (size_t k = 1; k < n; ++k) key.append(" ").append(words[i + k]);
    ++counts[key];
  }
  return counts;
}

}  // namespace

std::string tokenize_13a(std::string_view line) {
  check_utf8(line, "13a tokenizer");
  std::string s = replace_all(line, "<skipped>", "");
  s = replace_all(s, "-\n", "");
  s = replace_all(s, "\n", " ");
  s = replace_all(s, "&quot;", "\"");
  s = replace_all(s, "&amp;", "&");
  s = replace_all(s, "&lt;", "<");
  s = replace_all(s, "&gt;", ">");

  std::string spaced = " ";
  for (char c : s) {
    if (is_split_symbol(c)) {
      spaced.append(1, ' ').append(1, c).append(1, ' ');
    } else {
      spaced += c;
    }
  }
  spaced += ' ';

  // Period and comma: split after a non-digit, then before a non-digit; dash after a digit.
  s = substitute_pairs(
      spaced, [](char a, char b) { return !is_digit(a) && is_period_or_comma(b); },
      [](std::string& out, char a, char b) { out.append(1, a).append(1, ' ').append(1, b).append(1, ' '); });
  s = substitute_pairs(
      s, [](char a, char b) { return is_period_or_comma(a) && !is_digit(b); },
      [](std::string& out, char a, char b) { out.append(1, ' ').append(1, a).append(1, ' ').append(1, b); });
  s = substitute_pairs(
      s, [](char a, char b) { return is_digit(a) && b == '-'; },
      [](std::string& out, char a, char b) { out.append(1, a).append(1, ' ').append(1, b).append(1, ' '); });

  std::string joined;
  for (std::string_view word : python_split(s)) {
    if (!joined.empty()) joined += ' ';
    joined.append(word);
  }
  return joined;
}

void BleuStats::add(std::string_view hypothesis, std::string_view reference) {
  check_utf8(hypothesis, "BLEU hypothesis");
  check_utf8(reference, "BLEU reference");
  const std::string hyp_text = tokenize_13a(python_rstrip(hypothesis));
  const std::string ref_text = tokenize_13a(python_rstrip(reference));
  const std::vector<std::string_view> hyp = python_split(hyp_text);
  const std::vector<std::string_view> ref = python_split(ref_text);
  sys_len += int64_t(hyp.size());
  ref_len += int64_t(ref.size());
  for (size_t n = 1; n <= 4; ++n) {
    const std::map<std::string, int64_t> ref_counts = ngram_counts(ref, n);
    for (const auto& [ngram, count] : ngram_counts(hyp, n)) {
      total[n - 1] += count;
      const auto it = ref_counts.find(ngram);
      if (it != ref_counts.end()) correct[n - 1] += std::min(count, it->second);
    }
  }
}

BleuScore bleu_score(const BleuStats& stats) {
  BleuScore result{0.0, {0.0, 0.0, 0.0, 0.0}, 1.0};
  if (stats.sys_len < stats.ref_len) {
    result.brevity_penalty =
        stats.sys_len > 0 ? std::exp(1.0 - double(stats.ref_len) / double(stats.sys_len)) : 0.0;
  }
  bool any_correct = false;
  for (int64_t c : stats.correct) any_correct = any_correct || c > 0;
  if (!any_correct) return result;

  // 'exp' smoothing (mteval's): the k-th order without a match counts 1 / 2^k matches.
  double smoothing = 1.0;
  for (int n = 0; n < 4 && stats.total[n] > 0; ++n) {
    if (stats.correct[n] == 0) {
      smoothing *= 2;
      result.precisions[n] = 100.0 / (smoothing * double(stats.total[n]));
    } else {
      result.precisions[n] = 100.0 * double(stats.correct[n]) / double(stats.total[n]);
    }
  }
  // An order without n-grams keeps precision 0, which sacreBLEU's log floors at -9999999999:
  // the score underflows to 0. Summed in order, as Python's sum, for the same last digit.
  double log_sum = 0.0;
  for (double p : result.precisions) log_sum += p == 0.0 ? -9999999999.0 : std::log(p);
  result.score = result.brevity_penalty * std::exp(log_sum / 4);
  return result;
}

}  // namespace t2r
