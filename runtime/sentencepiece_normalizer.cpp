#include "sentencepiece_normalizer.h"

#include <cstring>

#include "error.h"
#include "piece_spelling.h"
#include "utf8.h"

namespace t2r {
namespace {

bool ends_with(const std::string& s, std::string_view tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

}  // namespace

SentencePieceNormalizer::SentencePieceNormalizer(std::string_view charsmap, bool add_dummy_prefix,
                                                 bool remove_extra_whitespaces,
                                                 const PieceTrie* user_defined)
    : add_dummy_prefix_(add_dummy_prefix),
      remove_extra_whitespaces_(remove_extra_whitespaces),
      user_defined_(user_defined) {
  for (int b = 0; b < 0x80; ++b) plain_[b] = b != ' ' && !(user_defined && user_defined->has_text_starting_with(uint8_t(b)));
  if (charsmap.empty()) return;
  // <trie size: uint32><trie units><normalized texts>
  uint32_t trie_size = 0;
  if (charsmap.size() <= 4) throw Error("tokenizer: the normalizer's character map is truncated");
  std::memcpy(&trie_size, charsmap.data(), 4);
  if (trie_size >= charsmap.size() - 4 + 1 || trie_size % 4 != 0 || trie_size == 0) {
    throw Error("tokenizer: the normalizer's character map has a trie of " +
                std::to_string(trie_size) + " bytes in a map of " +
                std::to_string(charsmap.size()) + " bytes");
  }
  trie_ = charsmap.substr(4, trie_size);
  normalized_ = charsmap.substr(4 + trie_size);
  const uint32_t n_units = uint32_t(trie_.size() / 4);
  for (int b = 0; b < 0x80; ++b) {  // does the double array have a transition for b?
    const uint32_t id = offset(unit(0)) ^ uint32_t(b);
    if (id < n_units && (unit(id) & ((1u << 31) | 0xFF)) == uint32_t(b)) plain_[b] = false;
  }
}

uint32_t SentencePieceNormalizer::offset(uint32_t unit) {
  return (unit >> 10) << ((unit & (1u << 9)) >> 6);
}

uint32_t SentencePieceNormalizer::unit(uint32_t id) const {
  uint32_t u = 0;
  std::memcpy(&u, trie_.data() + size_t(id) * 4, 4);
  return u;
}

std::pair<std::string_view, size_t> SentencePieceNormalizer::normalize_prefix(
    std::string_view s) const {
  if (user_defined_) {
    const auto [len, id] = user_defined_->longest_prefix(s, 0);
    if (len > 0) return {s.substr(0, len), len};
  }
  // Darts-clone's commonPrefixSearch, keeping the longest match. A unit: bit 8 has_leaf,
  // label = bits 0-7 and 31, offset = (unit >> 10) << ((unit & 512) >> 6), value = bits 0-30.
  // Ids outside the array or values outside the texts end the search (a corrupt map
  // normalizes less, it never reads out of bounds).
  size_t longest = 0;
  uint32_t longest_value = 0;
  const uint32_t n_units = uint32_t(trie_.size() / 4);
  if (n_units > 0) {
    uint32_t id = offset(unit(0));
    for (size_t i = 0; i < s.size(); ++i) {
      const uint8_t c = uint8_t(s[i]);
      id ^= c;
      if (id >= n_units) break;
      const uint32_t u = unit(id);
      if ((u & ((1u << 31) | 0xFF)) != c) break;
      id ^= offset(u);
      if (id >= n_units) break;
      if ((u >> 8) & 1) {
        longest = i + 1;
        longest_value = unit(id) & ((1u << 31) - 1);
      }
    }
  }
  if (longest > 0 && longest_value < normalized_.size()) {
    std::string_view text = normalized_.substr(longest_value);
    return {text.substr(0, text.find('\0')), longest};
  }
  char32_t cp = 0;
  const size_t len = utf8::sequence_at(s, 0, &cp);
  if (len == 0) return {"\xEF\xBF\xBD", 1};
  return {s.substr(0, len), len};
}

void SentencePieceNormalizer::normalize(std::string_view input, std::string& out) const {
  out.clear();
  if (remove_extra_whitespaces_) {
    while (!input.empty()) {
      const auto [text, consumed] = normalize_prefix(input);
      if (text != " ") break;
      input.remove_prefix(consumed);
    }
  }
  if (input.empty()) return;
  if (add_dummy_prefix_) out += kSpacePiece;
  bool is_prev_space = remove_extra_whitespaces_;
  while (!input.empty()) {
    if (plain_[uint8_t(input[0])]) {
      size_t k = 1;
      while (k < input.size() && plain_[uint8_t(input[k])]) ++k;
      out.append(input.data(), k);
      input.remove_prefix(k);
      is_prev_space = false;
      continue;
    }
    auto [text, consumed] = normalize_prefix(input);
    while (is_prev_space && !text.empty() && text[0] == ' ') text.remove_prefix(1);
    if (!text.empty()) {
      for (char c : text) {
        if (c == ' ') {
          out += kSpacePiece;
        } else {
          out += c;
        }
      }
      is_prev_space = text.back() == ' ';
    }
    input.remove_prefix(consumed);
    if (!remove_extra_whitespaces_) is_prev_space = false;
  }
  if (remove_extra_whitespaces_) {
    while (ends_with(out, kSpacePiece)) out.resize(out.size() - kSpacePiece.size());
  }
}

}  // namespace t2r
