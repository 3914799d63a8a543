// Bpe: Hugging Face's BPE model over characters, as Llama 2 and Mistral use it: the text gets
// the normalizer's U+2581 prefix and spaces as U+2581, each character is its token or, with
// byte fallback, its "<0xNN>" byte pieces (else unk, fused when fuse_unk), then merges by
// rank. Invalid UTF-8 bytes are byte pieces too (HF itself only takes valid UTF-8).
#include <unordered_map>

#include "bpe_merge.h"
#include "error.h"
#include "piece_spelling.h"
#include "token_encoder.h"
#include "utf8.h"

namespace t2r {
namespace {

class CharBpeEncoder final : public TokenEncoder {
 public:
  explicit CharBpeEncoder(const TokenizerData& data) : data_(data), merges_(data) {
    if (!data.bpe_to_model.empty()) throw Error("tokenizer: kind bpe takes no bpe_to_model");
    std::fill(std::begin(byte_ids_), std::end(byte_ids_), -1);
    // Words (piece_spelling.h) are merged one by one, and cached, where the vocabulary allows
    // (SentencePiece-trained ones do).
    splittable_ = false;
    for (int32_t id = 0; id < int32_t(data.bpe_tokens.size()); ++id) {
      const std::string& t = data.bpe_tokens[size_t(id)];
      ids_.emplace(t, id);
      const int b = byte_of_piece(t);
      if (b >= 0) byte_ids_[b] = id;
      if (t == kSpacePiece) splittable_ = true;
    }
    for (const std::string& t : data.bpe_tokens) {
      if (has_inner_space(t)) splittable_ = false;
    }
  }

  void encode(std::string_view text, const std::vector<Segment>& segments,
              std::vector<int32_t>& out) const override {
    Scratch scratch;
    std::string& norm = scratch.normalized;
    for (const Segment& s : segments) {
      if (s.special >= 0) {
        out.push_back(s.special);
        continue;
      }
      if (s.begin == s.end) continue;
      // Prepend(U+2581) and Replace(" ", U+2581), applied to each segment as HF does.
      norm.clear();
      scratch.cache.clear();  // its keys point into `norm`
      scratch.ids.clear();
      if (data_.add_dummy_prefix) norm += kSpacePiece;
      for (size_t i = s.begin; i < s.end; ++i) {
        if (text[i] == ' ') {
          norm += kSpacePiece;
        } else {
          norm += text[i];
        }
      }
      const std::string_view all(norm);
      for_each_space_word(all, splittable_, [&](size_t begin, size_t end) {
        encode_word(all.substr(begin, end - begin), scratch, out);
      });
    }
  }

 private:
  struct Scratch {
    std::string normalized;
    std::vector<bpe::Symbol> symbols;
    std::vector<bpe::Candidate> heap;
    std::unordered_map<std::string_view, std::pair<size_t, size_t>> cache;  // -> range in ids
    std::vector<int32_t> ids;
  };

  void encode_word(std::string_view word, Scratch& scratch, std::vector<int32_t>& out) const {
    auto& ids = scratch.ids;
    const auto cached = scratch.cache.find(word);
    if (cached != scratch.cache.end()) {
      out.insert(out.end(), ids.begin() + ptrdiff_t(cached->second.first),
                 ids.begin() + ptrdiff_t(cached->second.first + cached->second.second));
      return;
    }
    auto& sym = scratch.symbols;
    sym.clear();
    bool last_unk = false;
    auto add = [&](int32_t id, size_t start, size_t len) {
      const int32_t k = int32_t(sym.size());
      sym.push_back({id, int32_t(start), int32_t(len), k - 1, -1, false});
      if (k > 0) sym[size_t(k - 1)].next = k;
    };
    for (size_t i = 0; i < word.size();) {
      char32_t cp = 0;
      size_t len = utf8::sequence_at(word, i, &cp);
      if (len == 0) len = 1;
      const auto it = ids_.find(word.substr(i, len));
      bool unknown = it == ids_.end();
      if (!unknown) {
        add(it->second, i, len);
      } else if (data_.byte_fallback && has_bytes(word.substr(i, len))) {
        for (size_t k = 0; k < len; ++k) add(byte_ids_[uint8_t(word[i + k])], i + k, 1);
        unknown = false;
      } else if (data_.unk_id >= 0) {
        if (last_unk && data_.fuse_unk) {
          sym.back().len += int32_t(len);
        } else {
          add(data_.unk_id, i, len);
        }
      }  // no unk token: HF drops the character
      last_unk = unknown;
      i += len;
    }
    const size_t first = ids.size();
    if (!sym.empty()) {
      bpe::merge_all(sym, scratch.heap, [&](const bpe::Symbol& l, const bpe::Symbol& r, bool) {
        return merges_.find(l.id, r.id);
      });
      for (int32_t k = 0; k >= 0; k = sym[size_t(k)].next) ids.push_back(sym[size_t(k)].id);
    }
    out.insert(out.end(), ids.begin() + ptrdiff_t(first), ids.end());
    scratch.cache.emplace(word, std::make_pair(first, ids.size() - first));
  }

  bool has_bytes(std::string_view c) const {
    for (char b : c) {
      if (byte_ids_[uint8_t(b)] < 0) return false;
    }
    return true;
  }

  const TokenizerData& data_;
  bpe::MergeTable merges_;
  std::unordered_map<std::string_view, int32_t> ids_;  // token text -> id
  int32_t byte_ids_[256];                              // "<0xNN>" piece of each byte, or -1
  bool splittable_;
};

}  // namespace

std::unique_ptr<const TokenEncoder> make_char_bpe_encoder(const TokenizerData& data) {
  return std::make_unique<CharBpeEncoder>(data);
}

}  // namespace t2r
