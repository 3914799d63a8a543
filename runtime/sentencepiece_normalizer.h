// SentencePiece's normalizer (normalizer.cc), byte for byte: the precompiled character map
// (a Darts-clone double array of rewrite rules, e.g. nmt_nfkc's; identity when empty),
// user-defined pieces copied unnormalized, add_dummy_prefix, remove_extra_whitespaces, and
// spaces escaped as U+2581. Invalid UTF-8 becomes U+FFFD, one per byte, as SentencePiece does.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "piece_trie.h"

namespace t2r {

class SentencePieceNormalizer {
 public:
  // Throws t2r::Error when `charsmap` is not a well-formed precompiled map.
  SentencePieceNormalizer(std::string_view charsmap, bool add_dummy_prefix,
                          bool remove_extra_whitespaces, const PieceTrie* user_defined);

  // Replaces `out` with the normalized form of `text`.
  void normalize(std::string_view text, std::string& out) const;

 private:
  // The normalized text of the longest rule or character at the start of `s`, and how many
  // bytes of `s` it consumes.
  std::pair<std::string_view, size_t> normalize_prefix(std::string_view s) const;
  uint32_t unit(uint32_t id) const;
  static uint32_t offset(uint32_t unit);  // Darts-clone: where a unit's children start

  std::string_view trie_;        // double-array units, 4 bytes each (little-endian)
  std::string_view normalized_;  // NUL-separated replacement texts the units point into
  bool add_dummy_prefix_, remove_extra_whitespaces_;
  const PieceTrie* user_defined_;
  // ASCII bytes other than space that start no rule and no user-defined piece: copied as
  // they are, a run at a time (most text).
  bool plain_[256] = {};
};

}  // namespace t2r
