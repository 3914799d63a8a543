#include "tokenizer.h"

#include <unordered_map>
#include <unordered_set>

#include "error.h"
#include "piece_spelling.h"
#include "token_encoder.h"
#include "utf8.h"

namespace t2r {
namespace {

// What a token of a SentencePiece-style vocabulary decodes to: spaces for U+2581, a byte
// for a byte piece (Hugging Face's ByteFallback decoder, SentencePiece's byte pieces),
// nothing for control pieces, SentencePiece's " \u2047 " for its unknown piece.
std::string piece_bytes(const TokenizerData& d, int32_t token) {
  const std::string& t = d.bpe_tokens[size_t(token)];
  const bool sp = d.kind == TokenizerKind::SentencePieceBpe ||
                  d.kind == TokenizerKind::SentencePieceUnigram;
  const PieceType type = sp ? d.piece_types[size_t(token)] : PieceType::Normal;
  if (type == PieceType::Control) return "";
  if (type == PieceType::Unknown) return " \xE2\x81\x87 ";
  const int b = byte_of_piece(t);
  if (b >= 0 && (!sp || type == PieceType::Byte)) return std::string(1, char(b));
  std::string out;
  for (size_t i = 0; i < t.size();) {
    if (t.compare(i, 3, kSpacePiece) == 0) {
      out += ' ';
      i += 3;
    } else {
      out += t[i++];
    }
  }
  return out;
}

}  // namespace

Tokenizer::Tokenizer(TokenizerData data) : data_(std::move(data)) {
  auto fail = [](const std::string& what) { throw Error("tokenizer: " + what); };
  const auto& tokens = data_.bpe_tokens;
  const int32_t vocab = data_.vocab_size;
  if (vocab <= 0) fail("vocab_size " + std::to_string(vocab) + " is not positive");
  if (tokens.size() > size_t(INT32_MAX)) fail("too many tokens");
  const int32_t n_tokens = int32_t(tokens.size());
  {
    std::unordered_map<std::string_view, int32_t> seen;
    for (int32_t id = 0; id < n_tokens; ++id) {
      const std::string& t = tokens[size_t(id)];
      if (t.empty()) fail("token " + std::to_string(id) + " is empty");
      const auto [it, added] = seen.emplace(t, id);
      if (!added) {
        fail("tokens " + std::to_string(it->second) + " and " + std::to_string(id) +
             " have the same bytes");
      }
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
  if (data_.bos_id != -1) check_id(data_.bos_id, "bos_id");
  if (data_.add_bos && data_.bos_id < 0) fail("add_bos is set but there is no bos_id");

  // Decoding inverts bpe_to_model, so two tokens may share a model id only when it is unk.
  std::vector<int32_t> model_to_token(size_t(vocab), -1);
  if (data_.bpe_to_model.empty()) {
    if (n_tokens > vocab) {
      fail(std::to_string(n_tokens) + " tokens do not fit vocab_size " + std::to_string(vocab));
    }
    for (int32_t id = 0; id < n_tokens; ++id) model_to_token[size_t(id)] = id;
  } else {
    if (data_.bpe_to_model.size() != tokens.size()) {
      fail("bpe_to_model has " + std::to_string(data_.bpe_to_model.size()) + " entries for " +
           std::to_string(n_tokens) + " tokens");
    }
    for (int32_t id = 0; id < n_tokens; ++id) {
      const int32_t m = data_.bpe_to_model[size_t(id)];
      check_id(m, "bpe_to_model[" + std::to_string(id) + "]");
      if (m == data_.unk_id) continue;
      int32_t& slot = model_to_token[size_t(m)];
      if (slot >= 0) {
        fail("tokens " + std::to_string(slot) + " and " + std::to_string(id) +
             " both map to model id " + std::to_string(m));
      }
      slot = id;
    }
  }

  if (data_.special_texts.size() != data_.special_ids.size()) {
    fail(std::to_string(data_.special_texts.size()) + " special texts but " +
         std::to_string(data_.special_ids.size()) + " special ids");
  }
  std::unordered_set<std::string_view> special_seen;
  for (size_t k = 0; k < data_.special_texts.size(); ++k) {
    const std::string& text = data_.special_texts[k];
    const std::string where = "special text " + std::to_string(k);
    if (text.empty()) fail(where + " is empty");
    if (!special_seen.insert(text).second) fail(where + " repeats an earlier one");
    check_id(data_.special_ids[k], where + ": id");
  }
  std::vector<std::string_view> special_texts(data_.special_texts.begin(), data_.special_texts.end());
  std::vector<int32_t> special_index(special_texts.size());
  for (size_t k = 0; k < special_index.size(); ++k) special_index[k] = int32_t(k);
  specials_ = PieceTrie(special_texts, special_index);

  switch (data_.kind) {
    case TokenizerKind::ByteBpe: encoder_ = make_byte_bpe_encoder(data_); break;
    case TokenizerKind::Bpe: encoder_ = make_char_bpe_encoder(data_); break;
    case TokenizerKind::SentencePieceBpe:
    case TokenizerKind::SentencePieceUnigram: encoder_ = make_sentencepiece_encoder(data_); break;
    default: fail("unknown kind " + std::to_string(int(data_.kind)));
  }

  model_bytes_.resize(size_t(vocab));
  for (int32_t m = 0; m < vocab; ++m) {
    const int32_t t = model_to_token[size_t(m)];
    if (t < 0) continue;
    model_bytes_[size_t(m)] = data_.kind == TokenizerKind::ByteBpe ? tokens[size_t(t)]
                                                                   : piece_bytes(data_, t);
  }
  // A special text decodes to itself (the first one, where several share an id).
  for (size_t k = data_.special_texts.size(); k-- > 0;) {
    model_bytes_[size_t(data_.special_ids[k])] = data_.special_texts[k];
  }
}

Tokenizer::~Tokenizer() = default;

void Tokenizer::encode(std::string_view text, std::vector<int32_t>& out,
                       EncodeOptions options) const {
  // Token positions are int32_t (half the memory of size_t in the merge loops).
  if (text.size() > size_t(INT32_MAX)) throw Error("tokenizer: input of 2 GiB or more");
  if (options.add_bos_eos && data_.add_bos) out.push_back(data_.bos_id);
  // Special texts are cut out first, leftmost and then longest, as HF's added-token matcher
  // does; the text between them is tokenized on its own.
  std::vector<Segment> segments;
  size_t pos = 0;
  if (options.parse_special && !data_.special_texts.empty()) {
    for (size_t i = 0; i < text.size();) {
      const auto [len, k] = specials_.longest_prefix(text, i);
      if (len == 0) {
        ++i;
        continue;
      }
      if (i > pos) segments.push_back({pos, i, -1});
      segments.push_back({i, i, data_.special_ids[size_t(k)]});
      i += len;
      pos = i;
    }
  }
  if (pos < text.size() || segments.empty()) segments.push_back({pos, text.size(), -1});
  encoder_->encode(text, segments, out);
  if (options.add_bos_eos && data_.add_eos) out.push_back(data_.eos_id);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, EncodeOptions options) const {
  std::vector<int32_t> out;
  encode(text, out, options);
  return out;
}

std::string_view Tokenizer::token_bytes(int32_t model_id) const {
  if (model_id < 0 || model_id >= data_.vocab_size) return {};
  return model_bytes_[size_t(model_id)];
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  for (int32_t id : ids) out += token_bytes(id);
  // The space the normalizer put before the text (Hugging Face's Strip decoder,
  // SentencePiece's dummy prefix).
  const bool prefixed = data_.kind != TokenizerKind::ByteBpe &&
                        (data_.add_dummy_prefix || data_.remove_extra_whitespaces);
  if (prefixed && !out.empty() && out[0] == ' ') out.erase(0, 1);
  return out;
}

size_t Utf8Stream::push(std::string_view bytes, std::string& out) {
  out.clear();
  static const char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD
  for (size_t i = 0; i < bytes.size();) {
    const uint8_t b = uint8_t(bytes[i]);
    if (pending_len_ == 0) {
      const utf8::Lead lead = utf8::lead_info(b);
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
    const utf8::Lead lead = utf8::lead_info(uint8_t(pending_[0]));
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
