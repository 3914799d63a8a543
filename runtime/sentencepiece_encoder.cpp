// SentencePiece .model tokenizers, ported from sentencepiece's normalizer, bpe::Model,
// unigram::Model::EncodeOptimized and SentencePieceProcessor (byte fallback, unknown runs),
// so that the ids are the library's to the bit: the unigram lattice adds float scores in its
// order, and BPE merges by piece score, leftmost on ties.
#include <algorithm>
#include <cfloat>
#include <functional>
#include <unordered_map>

#include "bpe_merge.h"
#include "error.h"
#include "piece_trie.h"
#include "sentencepiece_normalizer.h"
#include "piece_spelling.h"
#include "token_encoder.h"

namespace t2r {
namespace {

constexpr float kUnkPenalty = 10.0f;   // unigram: unk scores min_score - 10
constexpr int32_t kUserDefinedBit = 1 << 30;  // in the unigram trie's values

// sentencepiece's string_util::OneCharLen: the length a lead byte announces.
size_t one_char_len(char c) { return size_t("\1\1\1\1\1\1\1\1\1\1\1\1\2\2\3\4"[uint8_t(c) >> 4]); }

class SentencePieceEncoder final : public TokenEncoder {
 public:
  explicit SentencePieceEncoder(const TokenizerData& data)
      : data_(data), unigram_(data.kind == TokenizerKind::SentencePieceUnigram) {
    auto fail = [](const std::string& what) { throw Error("tokenizer: " + what); };
    const size_t n = data.bpe_tokens.size();
    if (data.scores.size() != n || data.piece_types.size() != n) {
      fail(std::to_string(n) + " pieces but " + std::to_string(data.scores.size()) +
           " scores and " + std::to_string(data.piece_types.size()) + " piece types");
    }
    std::fill(std::begin(byte_ids_), std::end(byte_ids_), -1);
    std::vector<std::string_view> user_texts, piece_texts;
    std::vector<int32_t> user_ids, piece_ids;
    bool has_unused = false;
    for (int32_t id = 0; id < int32_t(n); ++id) {
      const std::string& t = data.bpe_tokens[size_t(id)];
      const PieceType type = data.piece_types[size_t(id)];
      const std::string where = "piece " + std::to_string(id);
      if (t.find('\0') != std::string::npos) fail(where + " contains a NUL byte");
      switch (type) {
        case PieceType::Normal:
          min_score_ = std::min(min_score_, data.scores[size_t(id)]);
          max_score_ = std::max(max_score_, data.scores[size_t(id)]);
          break;
        case PieceType::UserDefined:
          user_texts.push_back(t);
          user_ids.push_back(id);
          break;
        case PieceType::Unused: has_unused = true; break;
        case PieceType::Unknown:
          if (unk_ >= 0) fail(where + " is a second unknown piece");
          unk_ = id;
          break;
        case PieceType::Control: break;
        case PieceType::Byte: {
          if (!data.byte_fallback) fail(where + " is a byte piece but byte_fallback is off");
          const int b = byte_of_piece(t);
          if (b < 0) fail(where + " \"" + t + "\" is not a byte piece <0xNN>");
          byte_ids_[b] = id;
          break;
        }
        default: fail(where + " has type " + std::to_string(int(type)) + ", not 1..6");
      }
      const bool in_model = type == PieceType::Normal || type == PieceType::UserDefined ||
                            type == PieceType::Unused;
      if (in_model) {
        piece_texts.push_back(t);
        piece_ids.push_back(id);
        model_pieces_.emplace(t, id);
      } else {
        reserved_.emplace(t, id);
      }
    }
    if (unk_ < 0) fail("no unknown piece");
    if (data.byte_fallback) {
      for (int b = 0; b < 256; ++b) {
        if (byte_ids_[b] < 0) fail("byte_fallback is on but there is no piece " + byte_piece(b));
      }
    }
    user_defined_ = PieceTrie(user_texts, user_ids);
    normalizer_ = std::make_unique<SentencePieceNormalizer>(
        data.charsmap, data.add_dummy_prefix, data.remove_extra_whitespaces,
        user_defined_.empty() ? nullptr : &user_defined_);
    // Words (piece_spelling.h) are tokenized one by one where the pieces allow. Unused pieces
    // are resegmented with the splits BPE recorded over the whole text, so they keep it whole.
    splittable_ = model_pieces_.count(kSpacePiece) > 0 && !(has_unused && !unigram_);
    for (std::string_view t : piece_texts) {
      if (has_inner_space(t)) splittable_ = false;
    }
    if (unigram_) {
      // The lattice skips unused pieces, so the trie leaves them out; a user-defined piece is
      // marked in its value.
      std::vector<std::string_view> texts;
      std::vector<int32_t> values;
      for (size_t k = 0; k < piece_ids.size(); ++k) {
        const PieceType type = data.piece_types[size_t(piece_ids[k])];
        if (type == PieceType::Unused) continue;
        texts.push_back(piece_texts[k]);
        values.push_back(piece_ids[k] | (type == PieceType::UserDefined ? kUserDefinedBit : 0));
      }
      pieces_ = PieceTrie(texts, values);
      return;
    }
    // BPE: a merge's priority is its piece's score; equal scores share a rank.
    std::vector<float> distinct;
    for (int32_t id : piece_ids) distinct.push_back(data.scores[size_t(id)]);
    std::sort(distinct.begin(), distinct.end(), std::greater<float>());
    distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
    rank_.assign(n, -1);
    for (int32_t id : piece_ids) {
      rank_[size_t(id)] = int32_t(std::lower_bound(distinct.begin(), distinct.end(),
                                                   data.scores[size_t(id)], std::greater<float>()) -
                                  distinct.begin());
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
      normalizer_->normalize(text.substr(s.begin, s.end - s.begin), scratch.normalized);
      const std::string_view norm(scratch.normalized);
      bool prev_unk = false;
      if (unigram_) {
        // The lattice of each word starts from the best score so far: the same float sums
        // as one lattice over the whole text (no path crosses a word's start), in a buffer
        // that stays in cache.
        float score = 0;
        for_each_space_word(norm, splittable_, [&](size_t begin, size_t end) {
          score = viterbi(norm, begin, end, score, scratch);
          for (const Piece& p : scratch.pieces) {
            emit(norm.substr(size_t(p.start), size_t(p.len)), p.id, prev_unk, out);
          }
        });
        continue;
      }
      scratch.cache.clear();  // its keys point into the normalized text
      scratch.cached.clear();
      for_each_space_word(norm, splittable_, [&](size_t begin, size_t end) {
        bpe_word(norm.substr(begin, end - begin), scratch, prev_unk, out);
      });
    }
  }

 private:
  struct Piece {
    int32_t start, len, id;
  };
  struct Scratch {
    std::string normalized;
    std::vector<Piece> pieces;
    std::vector<bpe::Symbol> symbols;
    std::vector<bpe::Candidate> heap;
    std::unordered_map<std::string_view, std::pair<std::string_view, std::string_view>> rev_merge;
    std::unordered_map<std::string_view, std::pair<size_t, size_t>> cache;  // -> range in cached
    std::vector<Piece> cached;
    struct Node {
      int32_t id = -1;
      float score = 0;
      int32_t starts_at = -1;
    };
    std::vector<Node> lattice;
  };

  bool is(int32_t id, PieceType type) const { return data_.piece_types[size_t(id)] == type; }

  int32_t piece_to_id(std::string_view text) const {
    if (const auto it = reserved_.find(text); it != reserved_.end()) return it->second;
    if (const auto it = model_pieces_.find(text); it != model_pieces_.end()) return it->second;
    return unk_;
  }

  // SentencePieceProcessor::PopulateSentencePieceText: an unknown piece becomes its bytes'
  // pieces with byte fallback, else a run of unknown pieces is one unk.
  void emit(std::string_view text, int32_t id, bool& prev_unk, std::vector<int32_t>& out) const {
    const bool unk = id == unk_;
    auto push = [&](int32_t token) {
      out.push_back(data_.bpe_to_model.empty() ? token : data_.bpe_to_model[size_t(token)]);
    };
    if (unk && data_.byte_fallback) {
      for (char b : text) push(byte_ids_[uint8_t(b)]);
    } else if (!(unk && prev_unk)) {
      push(id);
    }
    prev_unk = unk;
  }

  // unigram::Model::EncodeOptimized over s[begin, end), the best path to `begin` scoring
  // `score`: leaves the best path's pieces in scratch.pieces and returns its score.
  float viterbi(std::string_view s, size_t begin, size_t end, float score, Scratch& scratch) const {
    auto& best = scratch.lattice;  // by position - begin
    best.assign(end - begin + 1, Scratch::Node{});
    best[0].score = score;
    const float unk_score = min_score_ - kUnkPenalty;
    const std::string_view word = s.substr(0, end);
    const float* scores = data_.scores.data();
    for (size_t starts_at = begin; starts_at < end;) {
      const float base = best[starts_at - begin].score;
      const size_t mblen = std::min(one_char_len(s[starts_at]), end - starts_at);
      bool has_single_node = false;
      pieces_.for_each_prefix(word, starts_at, [&](size_t len, int32_t value) {
        const int32_t id = value & ~kUserDefinedBit;
        Scratch::Node& target = best[starts_at - begin + len];
        // As the library computes it: a user-defined piece's bonus is a double.
        const double candidate = value & kUserDefinedBit
                                     ? double(float(len) * max_score_) - 0.1 + double(base)
                                     : double(scores[size_t(id)] + base);
        if (target.starts_at == -1 || candidate > double(target.score)) {
          target = {id, float(candidate), int32_t(starts_at)};
        }
        if (len == mblen) has_single_node = true;
      });
      if (!has_single_node) {
        Scratch::Node& target = best[starts_at - begin + mblen];
        const float candidate = unk_score + base;
        if (target.starts_at == -1 || candidate > target.score) {
          target = {unk_, candidate, int32_t(starts_at)};
        }
      }
      starts_at += mblen;
    }
    auto& pieces = scratch.pieces;
    pieces.clear();
    for (size_t at = end; at > begin;) {
      const Scratch::Node& node = best[at - begin];
      pieces.push_back({node.starts_at, int32_t(at) - node.starts_at, node.id});
      at = size_t(node.starts_at);
    }
    std::reverse(pieces.begin(), pieces.end());
    return best[end - begin].score;
  }

  // bpe::Model::SampleEncode without dropout, for one word (or the whole text).
  void bpe_word(std::string_view w, Scratch& scratch, bool& prev_unk, std::vector<int32_t>& out) const {
    if (w.empty()) return;
    auto& cached = scratch.cached;
    if (const auto hit = scratch.cache.find(w); hit != scratch.cache.end()) {
      for (size_t k = hit->second.first; k < hit->second.first + hit->second.second; ++k) {
        emit(w.substr(size_t(cached[k].start), size_t(cached[k].len)), cached[k].id, prev_unk, out);
      }
      return;
    }
    auto& sym = scratch.symbols;
    sym.clear();
    for (size_t i = 0; i < w.size();) {
      auto [len, id] = user_defined_.longest_prefix(w, i);
      const bool frozen = len > 0;
      if (!frozen) {
        len = std::min(one_char_len(w[i]), w.size() - i);
        const auto it = model_pieces_.find(w.substr(i, len));
        id = it == model_pieces_.end() ? -1 : it->second;
      }
      const int32_t k = int32_t(sym.size());
      sym.push_back({id, int32_t(i), int32_t(len), k - 1, -1, frozen});
      if (k > 0) sym[size_t(k - 1)].next = k;
      i += len;
    }
    auto& rev_merge = scratch.rev_merge;
    rev_merge.clear();
    bpe::merge_all(sym, scratch.heap, [&](const bpe::Symbol& l, const bpe::Symbol& r, bool pushing) {
      const std::string_view joined = w.substr(size_t(l.start), size_t(l.len + r.len));
      const auto it = model_pieces_.find(joined);
      if (it == model_pieces_.end()) return bpe::Merge{-1, -1};
      if (pushing && is(it->second, PieceType::Unused)) {
        rev_merge[joined] = {w.substr(size_t(l.start), size_t(l.len)),
                             w.substr(size_t(r.start), size_t(r.len))};
      }
      return bpe::Merge{rank_[size_t(it->second)], it->second};
    });
    const size_t first = cached.size();
    std::function<void(std::string_view)> resegment = [&](std::string_view piece) {
      const int32_t id = piece_to_id(piece);
      const auto split = is(id, PieceType::Unused) ? rev_merge.find(piece) : rev_merge.end();
      if (split == rev_merge.end()) {
        cached.push_back({int32_t(piece.data() - w.data()), int32_t(piece.size()), id});
        return;
      }
      resegment(split->second.first);
      resegment(split->second.second);
    };
    for (int32_t k = 0; k >= 0; k = sym[size_t(k)].next) {
      resegment(w.substr(size_t(sym[size_t(k)].start), size_t(sym[size_t(k)].len)));
    }
    for (size_t k = first; k < cached.size(); ++k) {
      emit(w.substr(size_t(cached[k].start), size_t(cached[k].len)), cached[k].id, prev_unk, out);
    }
    if (splittable_) scratch.cache.emplace(w, std::make_pair(first, cached.size() - first));
  }

  const TokenizerData& data_;
  const bool unigram_;
  int32_t unk_ = -1;
  int32_t byte_ids_[256];
  float min_score_ = FLT_MAX, max_score_ = FLT_MIN;  // over normal pieces, as the library
  std::unordered_map<std::string_view, int32_t> model_pieces_;  // normal, user-defined, unused
  std::unordered_map<std::string_view, int32_t> reserved_;      // control, unknown, byte
  PieceTrie user_defined_, pieces_;
  std::unique_ptr<SentencePieceNormalizer> normalizer_;
  std::vector<int32_t> rank_;  // BPE: merge rank of each piece
  bool splittable_ = false;
};

}  // namespace

std::unique_ptr<const TokenEncoder> make_sentencepiece_encoder(const TokenizerData& data) {
  return std::make_unique<SentencePieceEncoder>(data);
}

}  // namespace t2r
