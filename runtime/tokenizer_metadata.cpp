#include "tokenizer_metadata.h"

#include <cstring>

#include "error.h"

namespace t2r {
namespace {

const char* kKinds[] = {"byte_bpe", "bpe", "sentencepiece_bpe", "sentencepiece_unigram"};
const char* kPretokenizers[] = {"gpt2", "llama3"};

template <size_t N>
int index_of(const char* (&names)[N], const std::string& value, const char* key) {
  for (size_t i = 0; i < N; ++i) {
    if (value == names[i]) return int(i);
  }
  std::string allowed;
  for (size_t i = 0; i < N; ++i) allowed += std::string(i ? ", " : "") + names[i];
  throw Error(std::string(key) + " is \"" + value + "\", not one of " + allowed);
}

}  // namespace

const char* tokenizer_kind_name(TokenizerKind kind) { return kKinds[int(kind)]; }

void write_tokenizer_metadata(const TokenizerData& d, Metadata& m) {
  const bool sentencepiece = d.kind == TokenizerKind::SentencePieceBpe ||
                             d.kind == TokenizerKind::SentencePieceUnigram;
  // Old readers know only byte_bpe, so its files keep exactly the old keys unless they
  // need a new one.
  if (d.kind != TokenizerKind::ByteBpe) m.set("tokenizer.kind", std::string(tokenizer_kind_name(d.kind)));
  m.set("tokenizer.bpe_tokens", d.bpe_tokens);
  if (!sentencepiece) m.set("tokenizer.merges", d.merges);
  if (!d.special_texts.empty()) {
    m.set("tokenizer.special_texts", d.special_texts);
    m.set("tokenizer.special_ids", d.special_ids);
  }
  if (!d.bpe_to_model.empty()) m.set("tokenizer.bpe_to_model", d.bpe_to_model);
  m.set("tokenizer.eos_id", int64_t(d.eos_id));
  m.set("tokenizer.unk_id", int64_t(d.unk_id));
  if (d.bos_id >= 0) m.set("tokenizer.bos_id", int64_t(d.bos_id));
  if (d.add_bos) m.set("tokenizer.add_bos", int64_t(1));
  if (d.add_eos) m.set("tokenizer.add_eos", int64_t(1));
  if (d.pretokenizer != Pretokenizer::Gpt2) {
    m.set("tokenizer.pretokenizer", std::string(kPretokenizers[int(d.pretokenizer)]));
  }
  if (d.ignore_merges) m.set("tokenizer.ignore_merges", int64_t(1));
  if (d.kind == TokenizerKind::ByteBpe) return;
  m.set("tokenizer.byte_fallback", int64_t(d.byte_fallback));
  m.set("tokenizer.add_dummy_prefix", int64_t(d.add_dummy_prefix));
  if (!sentencepiece) {
    m.set("tokenizer.fuse_unk", int64_t(d.fuse_unk));
    return;
  }
  m.set("tokenizer.remove_extra_whitespaces", int64_t(d.remove_extra_whitespaces));
  m.set("tokenizer.charsmap", d.charsmap);
  // Scores as the bit patterns of their float32 values: exact, in the int32 array type.
  std::vector<int32_t> bits(d.scores.size()), types(d.piece_types.size());
  for (size_t i = 0; i < d.scores.size(); ++i) std::memcpy(&bits[i], &d.scores[i], 4);
  for (size_t i = 0; i < d.piece_types.size(); ++i) types[i] = int32_t(d.piece_types[i]);
  m.set("tokenizer.scores", bits);
  m.set("tokenizer.piece_types", types);
}

TokenizerData read_tokenizer_metadata(const Metadata& m, int32_t vocab_size) {
  TokenizerData d;
  if (m.has("tokenizer.kind")) {
    d.kind = TokenizerKind(index_of(kKinds, m.get_string("tokenizer.kind"), "tokenizer.kind"));
  }
  const bool sentencepiece = d.kind == TokenizerKind::SentencePieceBpe ||
                             d.kind == TokenizerKind::SentencePieceUnigram;
  d.bpe_tokens = m.get_string_array("tokenizer.bpe_tokens");
  if (!sentencepiece) d.merges = m.get_int_array("tokenizer.merges");
  if (m.has("tokenizer.special_texts")) {
    d.special_texts = m.get_string_array("tokenizer.special_texts");
    d.special_ids = m.get_int_array("tokenizer.special_ids");
  }
  if (m.has("tokenizer.bpe_to_model")) d.bpe_to_model = m.get_int_array("tokenizer.bpe_to_model");
  d.vocab_size = vocab_size;
  auto id = [&](const char* key, int64_t fallback) {
    const int64_t v = fallback == -2 ? m.get_int(key) : m.get_int(key, fallback);
    if (v < -1 || v >= int64_t(vocab_size)) {
      throw Error(std::string(key) + " " + std::to_string(v) + " is outside the vocabulary");
    }
    return int32_t(v);
  };
  auto flag = [&](const char* key) {
    const int64_t v = m.get_int(key, 0);
    if (v != 0 && v != 1) throw Error(std::string(key) + " is " + std::to_string(v) + ", not 0 or 1");
    return v == 1;
  };
  d.eos_id = id("tokenizer.eos_id", -2);
  if (d.eos_id < 0) throw Error("tokenizer.eos_id -1 is outside the vocabulary");
  d.unk_id = id("tokenizer.unk_id", -1);
  d.bos_id = id("tokenizer.bos_id", -1);
  d.add_bos = flag("tokenizer.add_bos");
  d.add_eos = flag("tokenizer.add_eos");
  if (m.has("tokenizer.pretokenizer")) {
    d.pretokenizer = Pretokenizer(
        index_of(kPretokenizers, m.get_string("tokenizer.pretokenizer"), "tokenizer.pretokenizer"));
  }
  d.ignore_merges = flag("tokenizer.ignore_merges");
  d.byte_fallback = flag("tokenizer.byte_fallback");
  d.fuse_unk = flag("tokenizer.fuse_unk");
  d.add_dummy_prefix = flag("tokenizer.add_dummy_prefix");
  if (!sentencepiece) return d;
  d.remove_extra_whitespaces = flag("tokenizer.remove_extra_whitespaces");
  d.charsmap = m.get_string("tokenizer.charsmap");
  const auto& bits = m.get_int_array("tokenizer.scores");
  const auto& types = m.get_int_array("tokenizer.piece_types");
  d.scores.resize(bits.size());
  for (size_t i = 0; i < bits.size(); ++i) std::memcpy(&d.scores[i], &bits[i], 4);
  for (int32_t t : types) {
    if (t < 1 || t > 6) throw Error("tokenizer.piece_types holds " + std::to_string(t) + ", not 1..6");
    d.piece_types.push_back(PieceType(t));
  }
  return d;
}

}  // namespace t2r
