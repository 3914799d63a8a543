// The BPE merge loop shared by every BPE tokenizer: symbols in a linked list over their
// positions and a min-heap of candidate merges, lowest rank first and leftmost on ties, as
// Hugging Face's Word::merge_all and SentencePiece's bpe::Model both order them. Linear in
// the number of merges times log of the word length: no rescans.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <unordered_map>
#include <vector>

#include "tokenizer.h"

namespace t2r::bpe {

struct Symbol {
  int32_t id;     // token id, or -1 (a character that is no token)
  int32_t start;  // byte offset of the symbol in the word
  int32_t len;    // bytes; 0 once merged into its left neighbour
  int32_t prev, next;
  bool frozen;    // never merged (SentencePiece's user-defined pieces)
};

struct Merge {
  int32_t rank;  // lower merges first; -1: no merge
  int32_t merged;
};

struct Candidate {
  int32_t rank, pos;  // the pair (symbol at pos, its next)
  bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
};

// Merges `sym` (linked by prev/next from index 0) until no pair of neighbours has a merge.
// find(left, right, pushing) gives the merge of two symbols; `pushing` is true when the pair
// has just formed (SentencePiece records unused pieces' splits then). An entry goes stale when a neighbour
// merged first; the pair's current rank tells (a different pair of equal rank at the same
// position is merged just as its own entry would be).
template <typename FindMerge>
void merge_all(std::vector<Symbol>& sym, std::vector<Candidate>& heap, FindMerge find) {
  heap.clear();
  const std::greater<Candidate> later;  // makes std::*_heap a min-heap
  auto push = [&](int32_t pos) {
    const Symbol& l = sym[size_t(pos)];
    const Symbol& r = sym[size_t(l.next)];
    if (l.frozen || r.frozen) return;
    const Merge m = find(l, r, true);
    if (m.rank < 0) return;
    heap.push_back({m.rank, pos});
    std::push_heap(heap.begin(), heap.end(), later);
  };
  for (int32_t k = 0; k >= 0 && sym[size_t(k)].next >= 0; k = sym[size_t(k)].next) push(k);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), later);
    const Candidate top = heap.back();
    heap.pop_back();
    Symbol& left = sym[size_t(top.pos)];
    if (left.len == 0 || left.next < 0) continue;
    Symbol& right = sym[size_t(left.next)];
    const Merge m = find(left, right, false);
    if (m.rank != top.rank) continue;
    left.id = m.merged;
    left.len += right.len;
    right.len = 0;
    left.next = right.next;
    if (left.next >= 0) sym[size_t(left.next)].prev = top.pos;
    if (left.prev >= 0) push(left.prev);
    if (left.next >= 0) push(top.pos);
  }
}

// The merges of TokenizerData (pairs of token ids by rank) as a lookup, checked against the
// token texts: each merged text must be a token, and no pair may repeat.
class MergeTable {
 public:
  explicit MergeTable(const TokenizerData& data);
  Merge find(int32_t left, int32_t right) const {
    const auto it = map_.find(uint64_t(uint32_t(left)) << 32 | uint32_t(right));
    return it == map_.end() ? Merge{-1, -1} : it->second;
  }

 private:
  std::unordered_map<uint64_t, Merge> map_;
};

}  // namespace t2r::bpe
