// A byte trie over token texts, for the prefix searches of SentencePiece: every piece that
// starts at a position (unigram's lattice) and the longest one (user-defined pieces).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace t2r {

class PieceTrie {
 public:
  PieceTrie() = default;
  // values[k] >= 0 is stored for texts[k]; texts are distinct and non-empty.
  PieceTrie(const std::vector<std::string_view>& texts, const std::vector<int32_t>& values);

  bool empty() const { return nodes_.size() <= 1; }
  bool has_text_starting_with(uint8_t b) const { return root_[b] != 0; }

  // Calls f(length, value) for each stored text that is a prefix of s[i..], shortest first.
  template <typename F>
  void for_each_prefix(std::string_view s, size_t i, F f) const {
    if (nodes_.empty()) return;
    uint32_t node = 0;
    for (size_t j = i; j < s.size(); ++j) {
      node = child(node, uint8_t(s[j]));
      if (node == 0) return;
      if (nodes_[node].value >= 0) f(j + 1 - i, nodes_[node].value);
    }
  }

  // Length and value of the longest stored prefix of s[i..]; length 0 when there is none.
  std::pair<size_t, int32_t> longest_prefix(std::string_view s, size_t i) const;

 private:
  struct Node {
    int32_t value = -1;
    uint32_t first_edge = 0;  // edges_[first_edge, first_edge + n_edges), sorted by byte
    uint32_t n_edges = 0;
    int32_t dense = -1;       // nodes with many children: their table in dense_ (256 each)
  };
  static constexpr uint32_t kDenseFrom = 8;  // children from which a node gets a table
  struct Edge {
    uint8_t byte;
    uint32_t to;
  };
  uint32_t child(uint32_t node, uint8_t b) const {
    if (node == 0) return root_[b];
    const Node& n = nodes_[node];
    if (n.dense >= 0) return dense_[size_t(n.dense) * 256 + b];
    for (uint32_t e = n.first_edge, end = e + n.n_edges; e < end; ++e) {
      if (edges_[e].byte == b) return edges_[e].to;
    }
    return 0;
  }

  std::vector<Node> nodes_;  // node 0 is the root; child 0 means none
  std::vector<Edge> edges_;
  std::vector<uint32_t> dense_;
  uint32_t root_[256] = {};  // the root's children, looked up directly: most searches end there
};

}  // namespace t2r
