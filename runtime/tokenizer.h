// Tokenizers of the models t2r packs, each identical to its reference implementation:
//   ByteBpe               GPT-2 and Llama 3 byte-level BPE (Hugging Face tokenizers)
//   Bpe                   Hugging Face BPE over characters with byte fallback (Llama 2, Mistral)
//   SentencePieceBpe      SentencePiece .model files, BPE (merges by piece score)
//   SentencePieceUnigram  SentencePiece .model files, unigram (Viterbi over piece scores)
// Text -> token ids -> model ids (an optional map: fairseq dictionaries renumber them);
// model ids -> raw bytes for decoding.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "piece_trie.h"
#include "pretokenizer.h"

namespace t2r {

enum class TokenizerKind : uint8_t { ByteBpe, Bpe, SentencePieceBpe, SentencePieceUnigram };

// SentencePiece's ModelProto.SentencePiece.Type, with its numbers.
enum class PieceType : uint8_t {
  Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6
};

// What the model file stores about the tokenizer (see format/SPEC.md, keys tokenizer.*).
struct TokenizerData {
  TokenizerKind kind = TokenizerKind::ByteBpe;
  // The text of each token, by token id: raw bytes for ByteBpe; for the others UTF-8 as the
  // tokenizer file spells it, with U+2581 for a space and "<0xNN>" for byte pieces.
  std::vector<std::string> bpe_tokens;
  std::vector<int32_t> merges;             // ByteBpe, Bpe: pairs (left id, right id), by rank
  std::vector<std::string> special_texts;  // literal texts matched before anything else
  std::vector<int32_t> special_ids;        // model id of each special text
  std::vector<int32_t> bpe_to_model;       // model id of each token id; empty means identity
  int32_t vocab_size = 0;                  // number of model ids (rows of the output layer)
  int32_t eos_id = 0;                      // model id that ends a document
  int32_t unk_id = -1;   // model id for tokens the model lacks (Bpe: also its unknown token)
  int32_t bos_id = -1;   // model id that starts a document; -1 if none
  bool add_bos = false;  // whether the model expects bos_id before each text
  bool add_eos = false;  // ... and eos_id after it
  // ByteBpe.
  Pretokenizer pretokenizer = Pretokenizer::Gpt2;
  bool ignore_merges = false;  // a pre-token that is itself a token is not merged (Llama 3)
  // Bpe and SentencePiece.
  bool byte_fallback = false;     // unknown characters become their "<0xNN>" byte pieces
  bool fuse_unk = false;          // Bpe: consecutive unknown characters become one unk
  bool add_dummy_prefix = false;  // a U+2581 before each text (HF's Prepend normalizer)
  // SentencePiece.
  bool remove_extra_whitespaces = false;
  std::string charsmap;               // the normalizer's precompiled_charsmap; empty: identity
  std::vector<float> scores;          // by token id
  std::vector<PieceType> piece_types; // by token id
};

struct EncodeOptions {
  bool add_bos_eos = false;    // prepend bos_id / append eos_id where the data asks for it
  bool parse_special = true;   // match special texts in the input (Hugging Face's default)
};

class TokenEncoder;  // the kind's algorithm (token_encoder.h)

class Tokenizer {
 public:
  // Validates every id and size (throws t2r::Error naming the problem) and builds lookups.
  explicit Tokenizer(TokenizerData data);
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // Appends the model ids of `text` to `out`. Any bytes are accepted: invalid UTF-8 is
  // tokenized byte by byte (ByteBpe), as byte pieces (byte fallback) or as SentencePiece
  // does (U+FFFD per invalid byte).
  void encode(std::string_view text, std::vector<int32_t>& out, EncodeOptions options = {}) const;
  std::vector<int32_t> encode(std::string_view text, EncodeOptions options = {}) const;

  // Raw bytes of a model id; may be part of a UTF-8 sequence (byte pieces are one byte).
  // Control ids (such as <s>, <pad>, </s>) decode to nothing, and so do out-of-range ids.
  std::string_view token_bytes(int32_t model_id) const;
  // Lossless bytes, not validated; the dummy prefix's space is removed from the start.
  std::string decode(const std::vector<int32_t>& ids) const;

  int32_t vocab_size() const { return data_.vocab_size; }
  int32_t eos_id() const { return data_.eos_id; }
  int32_t bos_id() const { return data_.bos_id; }
  const TokenizerData& data() const { return data_; }

 private:
  TokenizerData data_;
  std::unique_ptr<const TokenEncoder> encoder_;
  std::vector<std::string> model_bytes_;     // decoded bytes of each model id
  PieceTrie specials_;                       // special texts -> their index
};

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
