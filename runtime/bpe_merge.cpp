#include "bpe_merge.h"

#include <string>

#include "error.h"

namespace t2r::bpe {

MergeTable::MergeTable(const TokenizerData& data) {
  auto fail = [](const std::string& what) { throw Error("tokenizer: " + what); };
  const auto& tokens = data.bpe_tokens;
  const int32_t n = int32_t(tokens.size());
  std::unordered_map<std::string_view, int32_t> ids;
  for (int32_t id = 0; id < n; ++id) ids.emplace(tokens[size_t(id)], id);
  if (data.merges.size() % 2 != 0) fail("merges has an odd number of ids");
  map_.reserve(data.merges.size() / 2);
  std::string joined;
  for (size_t r = 0; r < data.merges.size() / 2; ++r) {
    const int32_t left = data.merges[2 * r], right = data.merges[2 * r + 1];
    const std::string where = "merge " + std::to_string(r);
    if (left < 0 || left >= n || right < 0 || right >= n) {
      fail(where + " has a token id out of range [0, " + std::to_string(n) + ")");
    }
    joined = tokens[size_t(left)];
    joined += tokens[size_t(right)];
    const auto merged = ids.find(joined);
    if (merged == ids.end()) fail(where + ": the merged token is not a token");
    const uint64_t key = uint64_t(uint32_t(left)) << 32 | uint32_t(right);
    if (!map_.emplace(key, Merge{int32_t(r), merged->second}).second) {
      fail(where + " repeats an earlier merge");
    }
  }
}

}  // namespace t2r::bpe
