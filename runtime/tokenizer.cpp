#include "tokenizer.h"

#include <algorithm>
#include <functional>
#include <unordered_set>

#include "error.h"
#include "unicode_tables.h"

namespace t2r {
namespace {

using unicode::CharClass;

// What a UTF-8 lead byte promises: the sequence length (0: not a lead byte) and the range of
// the second byte, narrowed so that overlong forms, surrogates and code points above
// U+10FFFF are invalid (Unicode Table 3-7).
struct Lead {
  int len;
  uint8_t lo, hi;
};

Lead lead_info(uint8_t b) {
  if (b < 0x80) return {1, 0, 0};
  if (b < 0xC2) return {0, 0, 0};
  if (b < 0xE0) return {2, 0x80, 0xBF};
  if (b == 0xE0) return {3, 0xA0, 0xBF};
  if (b == 0xED) return {3, 0x80, 0x9F};
  if (b < 0xF0) return {3, 0x80, 0xBF};
  if (b == 0xF0) return {4, 0x90, 0xBF};
  if (b < 0xF4) return {4, 0x80, 0xBF};
  if (b == 0xF4) return {4, 0x80, 0x8F};
  return {0, 0, 0};
}

CharClass ascii_class(uint8_t b) {
  uint8_t lower = b | 0x20;
  if (lower >= 'a' && lower <= 'z') return CharClass::Letter;
  if (b >= '0' && b <= '9') return CharClass::Number;
  if (b == ' ' || (b >= '\t' && b <= '\r')) return CharClass::Space;
  return CharClass::Other;
}

struct Char {
  CharClass cls;
  size_t len;  // bytes
};

// The character at byte i. A byte that does not start a valid UTF-8 sequence counts as one
// character of class Other, so any input scans deterministically.
Char char_at(std::string_view s, size_t i) {
  uint8_t b = uint8_t(s[i]);
  if (b < 0x80) return {ascii_class(b), 1};
  const Lead lead = lead_info(b);
  const Char invalid{CharClass::Other, 1};
  if (lead.len == 0 || i + size_t(lead.len) > s.size()) return invalid;
  uint8_t b1 = uint8_t(s[i + 1]);
  if (b1 < lead.lo || b1 > lead.hi) return invalid;
  char32_t cp = (b & (0x7F >> lead.len)) << 6 | (b1 & 0x3F);
  for (int k = 2; k < lead.len; ++k) {
    uint8_t c = uint8_t(s[i + size_t(k)]);
    if ((c & 0xC0) != 0x80) return invalid;
    cp = cp << 6 | (c & 0x3F);
  }
  return {unicode::char_class(cp), size_t(lead.len)};
}

// End of the pre-token starting at byte i: the match of the GPT-2 regex
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// that a backtracking engine (Oniguruma, in HF tokenizers) finds: the first alternative that
// matches at i.
size_t pretoken_end(std::string_view s, size_t i) {
  const size_t n = s.size();
  if (s[i] == '\'' && i + 1 < n) {  // contractions: lower case only
    char a = s[i + 1];
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
    std::string_view two = s.substr(i + 1, 2);
    if (two == "re" || two == "ve" || two == "ll") return i + 3;
  }
  // ` ?X+` for X = letters, numbers, others: an optional space, then a run of one class.
  size_t j = i;
  Char c = char_at(s, i);
  if (s[i] == ' ' && i + 1 < n) {
    Char next = char_at(s, i + 1);
    if (next.cls != CharClass::Space) {
      j = i + 1;
      c = next;
    }
  }
  if (c.cls != CharClass::Space) {
    for (j += c.len; j < n;) {
      Char d = char_at(s, j);
      if (d.cls != c.cls) break;
      j += d.len;
    }
    return j;
  }
  // A whitespace run. Before a non-space, `\s+(?!\S)` backtracks one character, leaving it
  // to lead the next pre-token (" word"); a lone whitespace character there falls to `\s+`.
  size_t last = i;  // start of the run's last character
  for (j = i; j < n;) {
    Char d = char_at(s, j);
    if (d.cls != CharClass::Space) break;
    last = j;
    j += d.len;
  }
  return j < n && last > i ? last : j;
}

uint64_t pair_key(int32_t left, int32_t right) {
  return uint64_t(uint32_t(left)) << 32 | uint32_t(right);
}

}  // namespace

// Symbols of the word being merged, as a linked list over their starting byte positions, and
// a min-heap of candidate merges, as in HF tokenizers' Word::merge_all. Plus the BPE ids of
// the words seen in this call: natural text repeats words so often that this cache makes
// encoding several times faster (HF keeps one too).
struct Tokenizer::Scratch {
  struct Symbol {
    int32_t id;  // -1 once merged into its left neighbour
    int32_t prev, next;
  };
  struct Candidate {
    int32_t rank, pos;  // the pair (symbol at pos, its next); lowest rank, then leftmost, first
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::vector<Symbol> symbols;
  std::vector<Candidate> heap;
  std::unordered_map<std::string_view, std::pair<size_t, size_t>> cache;  // -> range in ids
  std::vector<int32_t> cached_ids;
};

Tokenizer::Tokenizer(TokenizerData data) : data_(std::move(data)) {
  auto fail = [](const std::string& what) { throw Error("tokenizer: " + what); };
  const auto& tokens = data_.bpe_tokens;
  const int32_t vocab = data_.vocab_size;
  if (vocab <= 0) fail("vocab_size " + std::to_string(vocab) + " is not positive");
  if (tokens.size() > size_t(INT32_MAX)) fail("too many BPE tokens");
  const int32_t n_bpe = int32_t(tokens.size());

  std::unordered_map<std::string_view, int32_t> token_ids;
  std::fill(std::begin(byte_ids_), std::end(byte_ids_), -1);
  for (int32_t id = 0; id < n_bpe; ++id) {
    const std::string& t = tokens[size_t(id)];
    if (t.empty()) fail("BPE token " + std::to_string(id) + " is empty");
    if (!token_ids.emplace(t, id).second) {
      fail("BPE tokens " + std::to_string(token_ids[t]) + " and " + std::to_string(id) +
           " have the same bytes");
    }
    if (t.size() == 1) byte_ids_[uint8_t(t[0])] = id;
  }
  for (int b = 0; b < 256; ++b) {
    if (byte_ids_[b] < 0) fail("no BPE token for the single byte " + std::to_string(b));
  }

  if (data_.merges.size() % 2 != 0) fail("merges has an odd number of ids");
  for (size_t r = 0; r < data_.merges.size() / 2; ++r) {
    const int32_t left = data_.merges[2 * r], right = data_.merges[2 * r + 1];
    const std::string where = "merge " + std::to_string(r);
    if (left < 0 || left >= n_bpe || right < 0 || right >= n_bpe) {
      fail(where + " has a BPE id out of range [0, " + std::to_string(n_bpe) + ")");
    }
    auto merged = token_ids.find(tokens[size_t(left)] + tokens[size_t(right)]);
    if (merged == token_ids.end()) fail(where + ": the merged token is not a BPE token");
    if (!merge_map_.emplace(pair_key(left, right), Merge{int32_t(r), merged->second}).second) {
      fail(where + " repeats an earlier merge");
    }
  }

  auto check_id = [&](int32_t id, const std::string& what) {
    if (id < 0 || id >= vocab) {
      fail(what + " " + std::to_string(id) + " is out of range [0, " + std::to_string(vocab) +
           ")");
    }
  };
  check_id(data_.eos_id, "eos_id");
  if (data_.unk_id != -1) check_id(data_.unk_id, "unk_id");

  // Decoding inverts bpe_to_model, so two BPE ids may share a model id only when it is unk.
  model_to_bpe_.assign(size_t(vocab), -1);
  if (data_.bpe_to_model.empty()) {
    if (n_bpe > vocab) {
      fail(std::to_string(n_bpe) + " BPE tokens do not fit vocab_size " + std::to_string(vocab));
    }
    for (int32_t id = 0; id < n_bpe; ++id) model_to_bpe_[size_t(id)] = id;
  } else {
    if (data_.bpe_to_model.size() != tokens.size()) {
      fail("bpe_to_model has " + std::to_string(data_.bpe_to_model.size()) + " entries for " +
           std::to_string(n_bpe) + " BPE tokens");
    }
    for (int32_t id = 0; id < n_bpe; ++id) {
      const int32_t m = data_.bpe_to_model[size_t(id)];
      check_id(m, "bpe_to_model[" + std::to_string(id) + "]");
      if (m == data_.unk_id) continue;
      int32_t& slot = model_to_bpe_[size_t(m)];
      if (slot >= 0) {
        fail("BPE ids " + std::to_string(slot) + " and " + std::to_string(id) +
             " both map to model id " + std::to_string(m));
      }
      slot = id;
    }
  }

  if (data_.special_texts.size() != data_.special_ids.size()) {
    fail(std::to_string(data_.special_texts.size()) + " special texts but " +
         std::to_string(data_.special_ids.size()) + " special ids");
  }
  model_to_special_.assign(size_t(vocab), -1);
  std::unordered_set<std::string_view> special_seen;
  for (size_t k = 0; k < data_.special_texts.size(); ++k) {
    const std::string& text = data_.special_texts[k];
    const std::string where = "special text " + std::to_string(k);
    if (text.empty()) fail(where + " is empty");
    if (!special_seen.insert(text).second) fail(where + " repeats an earlier one");
    check_id(data_.special_ids[k], where + ": id");
    if (model_to_special_[size_t(data_.special_ids[k])] < 0) {
      model_to_special_[size_t(data_.special_ids[k])] = int32_t(k);
    }
  }
}

const Tokenizer::Merge* Tokenizer::find_merge(int32_t left, int32_t right) const {
  auto it = merge_map_.find(pair_key(left, right));
  return it == merge_map_.end() ? nullptr : &it->second;
}

void Tokenizer::encode_word(std::string_view word, Scratch& scratch,
                            std::vector<int32_t>& out) const {
  auto emit = [&](int32_t bpe_id) {
    out.push_back(data_.bpe_to_model.empty() ? bpe_id : data_.bpe_to_model[size_t(bpe_id)]);
  };
  if (word.size() == 1) return emit(byte_ids_[uint8_t(word[0])]);
  auto& ids = scratch.cached_ids;
  const auto [entry, added] = scratch.cache.try_emplace(word, ids.size(), 0);
  if (!added) {
    for (size_t k = 0; k < entry->second.second; ++k) emit(ids[entry->second.first + k]);
    return;
  }

  auto& sym = scratch.symbols;
  auto& heap = scratch.heap;
  const int32_t n = int32_t(word.size());  // encode() refuses 2 GiB
  sym.resize(size_t(n));
  heap.clear();
  const std::greater<Scratch::Candidate> later;  // makes std::*_heap a min-heap
  auto push = [&](int32_t pos) {
    if (const Merge* m = find_merge(sym[size_t(pos)].id, sym[size_t(sym[size_t(pos)].next)].id)) {
      heap.push_back({m->rank, pos});
      std::push_heap(heap.begin(), heap.end(), later);
    }
  };
  for (int32_t k = 0; k < n; ++k) {
    sym[size_t(k)] = {byte_ids_[uint8_t(word[size_t(k)])], k - 1, k + 1 < n ? k + 1 : -1};
  }
  for (int32_t k = 0; k + 1 < n; ++k) push(k);

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), later);
    const Scratch::Candidate top = heap.back();
    heap.pop_back();
    auto& left = sym[size_t(top.pos)];
    if (left.id < 0 || left.next < 0) continue;
    auto& right = sym[size_t(left.next)];
    // Entries go stale when a neighbour merged first; the pair's rank tells.
    const Merge* m = find_merge(left.id, right.id);
    if (!m || m->rank != top.rank) continue;
    left.id = m->merged;
    right.id = -1;
    left.next = right.next;
    if (left.next >= 0) sym[size_t(left.next)].prev = top.pos;
    if (left.prev >= 0) push(left.prev);
    if (left.next >= 0) push(top.pos);
  }
  for (int32_t k = 0; k >= 0; k = sym[size_t(k)].next) {
    ids.push_back(sym[size_t(k)].id);
    emit(ids.back());
  }
  entry->second.second = ids.size() - entry->second.first;
}

void Tokenizer::encode_plain(std::string_view text, Scratch& scratch,
                             std::vector<int32_t>& out) const {
  for (size_t i = 0; i < text.size();) {
    const size_t end = pretoken_end(text, i);
    encode_word(text.substr(i, end - i), scratch, out);
    i = end;
  }
}

void Tokenizer::encode(std::string_view text, std::vector<int32_t>& out) const {
  // Symbol positions are int32_t (half the memory of size_t in the merge loop).
  if (text.size() > size_t(INT32_MAX)) throw Error("tokenizer: input of 2 GiB or more");
  Scratch scratch;
  const auto& specials = data_.special_texts;
  // Special texts are cut out first, leftmost and then longest, as HF's added-token matcher
  // does; the text between them is pre-tokenized on its own. next_at caches each special
  // text's next occurrence so that the scan stays linear.
  std::vector<size_t> next_at(specials.size());
  for (size_t k = 0; k < specials.size(); ++k) next_at[k] = text.find(specials[k]);
  size_t pos = 0;
  while (true) {
    size_t best_at = std::string_view::npos, best = 0;
    for (size_t k = 0; k < specials.size(); ++k) {
      if (next_at[k] != std::string_view::npos && next_at[k] < pos) {
        next_at[k] = text.find(specials[k], pos);
      }
      if (next_at[k] < best_at ||
          (next_at[k] == best_at && specials[k].size() > specials[best].size())) {
        best_at = next_at[k];
        best = k;
      }
    }
    if (best_at == std::string_view::npos) break;
    encode_plain(text.substr(pos, best_at - pos), scratch, out);
    out.push_back(data_.special_ids[best]);
    pos = best_at + specials[best].size();
  }
  encode_plain(text.substr(pos), scratch, out);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  std::vector<int32_t> out;
  encode(text, out);
  return out;
}

std::vector<std::string_view> pretokenize(std::string_view text) {
  std::vector<std::string_view> out;
  for (size_t i = 0; i < text.size();) {
    const size_t end = pretoken_end(text, i);
    out.push_back(text.substr(i, end - i));
    i = end;
  }
  return out;
}

std::string_view Tokenizer::token_bytes(int32_t model_id) const {
  if (model_id < 0 || model_id >= data_.vocab_size) return {};
  const int32_t special = model_to_special_[size_t(model_id)];
  if (special >= 0) return data_.special_texts[size_t(special)];
  const int32_t bpe = model_to_bpe_[size_t(model_id)];
  return bpe >= 0 ? std::string_view(data_.bpe_tokens[size_t(bpe)]) : std::string_view();
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  for (int32_t id : ids) out += token_bytes(id);
  return out;
}

size_t Utf8Stream::push(std::string_view bytes, std::string& out) {
  out.clear();
  static const char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD
  for (size_t i = 0; i < bytes.size();) {
    const uint8_t b = uint8_t(bytes[i]);
    if (pending_len_ == 0) {
      const Lead lead = lead_info(b);
      if (lead.len == 1) {
        out += char(b);
      } else if (lead.len == 0) {
        out += kReplacement;
      } else {
        pending_[pending_len_++] = char(b);
      }
      ++i;
      continue;
    }
    const Lead lead = lead_info(uint8_t(pending_[0]));
    const bool fits = pending_len_ == 1 ? b >= lead.lo && b <= lead.hi : (b & 0xC0) == 0x80;
    if (!fits) {
      // The pending bytes are a maximal invalid subpart: one U+FFFD, as Python's
      // bytes.decode("utf-8", "replace") writes; b is looked at again as a fresh start.
      out += kReplacement;
      pending_len_ = 0;
      continue;
    }
    pending_[pending_len_++] = char(b);
    ++i;
    if (pending_len_ == lead.len) {
      out.append(pending_, size_t(pending_len_));
      pending_len_ = 0;
    }
  }
  return out.size();
}

size_t Utf8Stream::finish(std::string& out) {
  out.clear();
  if (pending_len_ > 0) out += "\xEF\xBF\xBD";
  pending_len_ = 0;
  return out.size();
}

}  // namespace t2r
