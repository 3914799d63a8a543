// Words of a SentencePiece-style text, where U+2581 stands for a space: each word is a run of
// U+2581 and what follows up to the next run. When no token has a U+2581 after another
// character, no token spans two words, so a tokenizer may work word by word (and cache
// words) with exactly the result of working on the whole text.
#pragma once

#include <string_view>

namespace t2r {

constexpr std::string_view kSpacePiece = "\xe2\x96\x81";  // U+2581

// Whether a U+2581 follows another character in `token` (then words may not be split).
inline bool has_inner_space(std::string_view token) {
  size_t k = 0;
  while (token.compare(k, kSpacePiece.size(), kSpacePiece) == 0) k += kSpacePiece.size();
  return token.find(kSpacePiece, k) != std::string_view::npos;
}

// Calls f(begin, end) for each word of `s` in order (once for all of `s` when !split).
template <typename F>
void for_each_space_word(std::string_view s, bool split, F f) {
  size_t start = 0;
  const size_t n = kSpacePiece.size();
  for (size_t i = 1; split && i + n <= s.size(); ++i) {
    if (s[i] != kSpacePiece[0]) continue;  // most bytes: one compare
    if (s.compare(i, n, kSpacePiece) == 0 && !(i >= n && s.compare(i - n, n, kSpacePiece) == 0)) {
      f(start, i);
      start = i;
    }
  }
  if (start < s.size()) f(start, s.size());
}

}  // namespace t2r
