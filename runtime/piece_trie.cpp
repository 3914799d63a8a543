#include "piece_trie.h"

#include <algorithm>
#include <map>

namespace t2r {

PieceTrie::PieceTrie(const std::vector<std::string_view>& texts,
                     const std::vector<int32_t>& values) {
  // Built with ordered child maps, then flattened into edge ranges (and tables for nodes
  // with many children).
  std::vector<std::map<uint8_t, uint32_t>> children(1);
  nodes_.assign(1, Node{});
  for (size_t k = 0; k < texts.size(); ++k) {
    uint32_t node = 0;
    for (char c : texts[k]) {
      auto [it, added] = children[node].try_emplace(uint8_t(c), uint32_t(nodes_.size()));
      if (added) {
        nodes_.push_back(Node{});
        children.emplace_back();
      }
      node = it->second;
    }
    nodes_[node].value = values[k];
  }
  for (uint32_t n = 0; n < nodes_.size(); ++n) {
    nodes_[n].first_edge = uint32_t(edges_.size());
    nodes_[n].n_edges = uint32_t(children[n].size());
    if (n > 0 && children[n].size() >= kDenseFrom) {
      nodes_[n].dense = int32_t(dense_.size() / 256);
      dense_.resize(dense_.size() + 256, 0);
    }
    for (const auto& [b, to] : children[n]) {
      edges_.push_back({b, to});
      if (n == 0) root_[b] = to;
      if (nodes_[n].dense >= 0) dense_[size_t(nodes_[n].dense) * 256 + b] = to;
    }
  }
}

std::pair<size_t, int32_t> PieceTrie::longest_prefix(std::string_view s, size_t i) const {
  std::pair<size_t, int32_t> best{0, -1};
  for_each_prefix(s, i, [&](size_t len, int32_t value) { best = {len, value}; });
  return best;
}

}  // namespace t2r
