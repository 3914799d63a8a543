// ByteBpe: GPT-2 / Llama 3 byte-level BPE. Pre-tokens of the kind's regex, each merged from
// its single bytes; with ignore_merges, a pre-token that is a token is taken whole.
#include <unordered_map>

#include "bpe_merge.h"
#include "error.h"
#include "token_encoder.h"

namespace t2r {
namespace {

class ByteBpeEncoder final : public TokenEncoder {
 public:
  explicit ByteBpeEncoder(const TokenizerData& data) : data_(data), merges_(data) {
    std::fill(std::begin(byte_ids_), std::end(byte_ids_), -1);
    for (int32_t id = 0; id < int32_t(data.bpe_tokens.size()); ++id) {
      const std::string& t = data.bpe_tokens[size_t(id)];
      if (t.size() == 1) byte_ids_[uint8_t(t[0])] = id;
      if (data.ignore_merges) whole_.emplace(t, id);
    }
    for (int b = 0; b < 256; ++b) {
      if (byte_ids_[b] < 0) {
        throw Error("tokenizer: no BPE token for the single byte " + std::to_string(b));
      }
    }
  }

  void encode(std::string_view text, const std::vector<Segment>& segments,
              std::vector<int32_t>& out) const override {
    Scratch scratch;
    for (const Segment& s : segments) {
      if (s.special >= 0) {
        out.push_back(s.special);
        continue;
      }
      for (size_t i = s.begin; i < s.end;) {
        const std::string_view part = text.substr(0, s.end);
        const size_t end = pretoken_end(data_.pretokenizer, part, i);
        encode_word(part.substr(i, end - i), scratch, out);
        i = end;
      }
    }
  }

 private:
  // Per-call buffers of the merge loop, and the ids of the words seen in this call: natural
  // text repeats words so often that this cache makes encoding several times faster (HF
  // keeps one too).
  struct Scratch {
    std::vector<bpe::Symbol> symbols;
    std::vector<bpe::Candidate> heap;
    std::unordered_map<std::string_view, std::pair<size_t, size_t>> cache;  // -> range in ids
    std::vector<int32_t> ids;
  };

  int32_t model_id(int32_t token) const {
    return data_.bpe_to_model.empty() ? token : data_.bpe_to_model[size_t(token)];
  }

  void encode_word(std::string_view word, Scratch& scratch, std::vector<int32_t>& out) const {
    if (word.size() == 1) return out.push_back(model_id(byte_ids_[uint8_t(word[0])]));
    if (!whole_.empty()) {
      const auto it = whole_.find(word);
      if (it != whole_.end()) return out.push_back(model_id(it->second));
    }
    auto& ids = scratch.ids;
    const auto [entry, added] = scratch.cache.try_emplace(word, ids.size(), 0);
    if (!added) {
      for (size_t k = 0; k < entry->second.second; ++k) {
        out.push_back(model_id(ids[entry->second.first + k]));
      }
      return;
    }
    auto& sym = scratch.symbols;
    const int32_t n = int32_t(word.size());  // Tokenizer::encode refuses 2 GiB
    sym.resize(size_t(n));
    for (int32_t k = 0; k < n; ++k) {
      sym[size_t(k)] = {byte_ids_[uint8_t(word[size_t(k)])], k, 1, k - 1, k + 1 < n ? k + 1 : -1,
                        false};
    }
    bpe::merge_all(sym, scratch.heap, [&](const bpe::Symbol& l, const bpe::Symbol& r, bool) {
      return merges_.find(l.id, r.id);
    });
    for (int32_t k = 0; k >= 0; k = sym[size_t(k)].next) {
      ids.push_back(sym[size_t(k)].id);
      out.push_back(model_id(ids.back()));
    }
    entry->second.second = ids.size() - entry->second.first;
  }

  const TokenizerData& data_;
  bpe::MergeTable merges_;
  int32_t byte_ids_[256];
  std::unordered_map<std::string_view, int32_t> whole_;  // ignore_merges: token text -> id
};

}  // namespace

std::unique_ptr<const TokenEncoder> make_byte_bpe_encoder(const TokenizerData& data) {
  return std::make_unique<ByteBpeEncoder>(data);
}

}  // namespace t2r
