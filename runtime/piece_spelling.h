// How SentencePiece-style vocabularies spell text: U+2581 for a space, "<0xNN>" for a byte
// piece; and the words of such a text, each a run of U+2581 and what follows up to the next
// run. When no token has a U+2581 after another character, no token spans two words, so a
// tokenizer may work word by word (and cache words) with exactly the result of working on
// the whole text.
#pragma once

#include <string>
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

// "<0xNN>" (upper-case hex) -> NN, or -1.
inline int byte_of_piece(std::string_view t) {
  if (t.size() != 6 || t.substr(0, 3) != "<0x" || t[5] != '>') return -1;
  auto digit = [](char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
  };
  const int hi = digit(t[3]), lo = digit(t[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

// The byte piece of b: "<0xNN>".
inline std::string byte_piece(int b) {
  static const char hex[] = "0123456789ABCDEF";
  return std::string("<0x") + hex[b >> 4] + hex[b & 15] + ">";
}

}  // namespace t2r
