// Byte-level BPE tokenizer (GPT-2 style), identical to Hugging Face `tokenizers` on the
// models t2r packs. Text -> BPE ids -> model ids (an optional map: fairseq dictionaries
// renumber BPE ids); model ids -> raw bytes for decoding.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace t2r {

// What the model file stores about the tokenizer (see format/SPEC.md, keys tokenizer.*).
struct TokenizerData {
  std::vector<std::string> bpe_tokens;  // raw bytes of each BPE token, indexed by BPE id
  std::vector<int32_t> merges;          // pairs (left BPE id, right BPE id), by rank
  std::vector<std::string> special_texts;  // literal texts matched before pre-tokenization
  std::vector<int32_t> special_ids;        // model id of each special text
  std::vector<int32_t> bpe_to_model;    // model id of each BPE id; empty means identity
  int32_t vocab_size = 0;               // number of model ids (rows of the output layer)
  int32_t eos_id = 0;                   // model id that ends a document
  int32_t unk_id = -1;                  // model id for BPE ids the model lacks; -1 if none
};

class Tokenizer {
 public:
  // Validates every id and size (throws t2r::Error naming the problem) and builds lookups.
  explicit Tokenizer(TokenizerData data);

  // Appends the model ids of `text` to `out`. Any bytes are accepted: invalid UTF-8 is
  // tokenized byte by byte, as the byte-level BPE allows.
  void encode(std::string_view text, std::vector<int32_t>& out) const;
  std::vector<int32_t> encode(std::string_view text) const;

  // Raw bytes of a model id; may be part of a UTF-8 sequence. Control ids (such as fairseq's
  // <s>, <pad>, </s>, <unk>) decode to nothing. Out-of-range ids decode to nothing.
  std::string_view token_bytes(int32_t model_id) const;
  std::string decode(const std::vector<int32_t>& ids) const;  // lossless bytes, not validated

  int32_t vocab_size() const { return data_.vocab_size; }
  int32_t eos_id() const { return data_.eos_id; }
  const TokenizerData& data() const { return data_; }

 private:
  struct Merge {
    int32_t rank;    // position in TokenizerData::merges; lower merges first
    int32_t merged;  // BPE id of the concatenation
  };
  struct Scratch;  // per-call buffers of the merge loop

  void encode_plain(std::string_view text, Scratch& scratch, std::vector<int32_t>& out) const;
  void encode_word(std::string_view word, Scratch& scratch, std::vector<int32_t>& out) const;
  const Merge* find_merge(int32_t left, int32_t right) const;

  TokenizerData data_;
  int32_t byte_ids_[256] = {};                      // BPE id of each single-byte token
  std::unordered_map<uint64_t, Merge> merge_map_;  // key: left << 32 | right
  std::vector<int32_t> model_to_bpe_;              // -1 where a model id has no BPE token
  std::vector<int32_t> model_to_special_;          // index into special_texts, or -1
};

// The GPT-2 pre-tokens of `text` (special texts are not looked for): the matches of
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// BPE merges never cross their boundaries. Exposed for tests and diagnostics.
std::vector<std::string_view> pretokenize(std::string_view text);

// Turns a stream of token bytes into valid UTF-8 text: complete sequences pass through,
// an incomplete trailing sequence waits for the next token, and bytes that can never form
// a valid sequence become U+FFFD. Allocation-free after construction.
class Utf8Stream {
 public:
  // Appends the printable part of `bytes` to `out` (cleared first); returns out.size().
  size_t push(std::string_view bytes, std::string& out);
  // Emits whatever is pending (an unfinished sequence becomes U+FFFD).
  size_t finish(std::string& out);

 private:
  char pending_[4] = {};
  int pending_len_ = 0;
};

}  // namespace t2r
