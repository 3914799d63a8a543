// SentencePiece .model files (a protobuf ModelProto) into TokenizerData, read field by field
// with the strict protobuf reader. Only what changes ids is kept; anything this runtime
// would not reproduce (word/char models, whitespace as suffix, unescaped spaces, a
// denormalizer) is refused by name.
#include "error.h"
#include "mapped_file.h"
#include "protobuf_reader.h"
#include "tokenizer_import.h"

namespace t2r {

TokenizerData parse_sentencepiece_model(std::string_view bytes, int32_t vocab_size) {
  using protobuf::Reader;
  using protobuf::WireType;
  TokenizerData d;
  int32_t model_type = 1;  // TrainerSpec.ModelType: UNIGRAM 1, BPE 2, WORD 3, CHAR 4
  std::string bos_piece = "<s>", eos_piece = "</s>";
  d.add_dummy_prefix = true;
  d.remove_extra_whitespaces = true;
  bool escape_whitespaces = true, whitespace_as_suffix = false;

  Reader model(bytes, "ModelProto");
  while (model.next()) {
    switch (model.field()) {
      case 1: {  // pieces
        Reader piece(model.bytes(), "SentencePiece " + std::to_string(d.bpe_tokens.size()));
        std::string text;
        float score = 0;
        int32_t type = 1;
        while (piece.next()) {
          switch (piece.field()) {
            case 1: text = std::string(piece.bytes()); break;
            case 2: score = piece.fixed32_float(); break;
            case 3: type = piece.int32(); break;
            default: piece.skip();
          }
        }
        if (type < 1 || type > 6) piece.fail("type " + std::to_string(type) + " is not 1..6");
        d.bpe_tokens.push_back(std::move(text));
        d.scores.push_back(score);
        d.piece_types.push_back(PieceType(type));
        break;
      }
      case 2: {  // trainer_spec
        Reader spec(model.bytes(), "TrainerSpec");
        while (spec.next()) {
          switch (spec.field()) {
            case 3: model_type = spec.int32(); break;
            case 24: whitespace_as_suffix = spec.boolean(); break;
            case 35: d.byte_fallback = spec.boolean(); break;
            case 46: bos_piece = std::string(spec.bytes()); break;
            case 47: eos_piece = std::string(spec.bytes()); break;
            default: spec.skip();
          }
        }
        break;
      }
      case 3: {  // normalizer_spec
        Reader spec(model.bytes(), "NormalizerSpec");
        while (spec.next()) {
          switch (spec.field()) {
            case 2: d.charsmap = std::string(spec.bytes()); break;
            case 3: d.add_dummy_prefix = spec.boolean(); break;
            case 4: d.remove_extra_whitespaces = spec.boolean(); break;
            case 5: escape_whitespaces = spec.boolean(); break;
            default: spec.skip();  // name, and the rules the charsmap was compiled from
          }
        }
        break;
      }
      case 5: {  // denormalizer_spec
        Reader spec(model.bytes(), "denormalizer NormalizerSpec");
        while (spec.next()) {
          if (spec.field() == 2 && !spec.bytes().empty()) {
            throw Error("unsupported: a denormalizer (denormalizer_spec.precompiled_charsmap)");
          }
          if (spec.field() != 2) spec.skip();
        }
        break;
      }
      default: model.skip();  // self_test_data
    }
  }
  if (model_type == 1) {
    d.kind = TokenizerKind::SentencePieceUnigram;
  } else if (model_type == 2) {
    d.kind = TokenizerKind::SentencePieceBpe;
  } else {
    throw Error("unsupported: model_type " + std::to_string(model_type) +
                " (only unigram 1 and BPE 2; word and char models are not supported)");
  }
  if (whitespace_as_suffix) throw Error("unsupported: treat_whitespace_as_suffix");
  if (!escape_whitespaces) throw Error("unsupported: escape_whitespaces = false");
  if (d.bpe_tokens.empty()) throw Error("the model has no pieces");
  const int32_t n = int32_t(d.bpe_tokens.size());
  d.vocab_size = vocab_size > 0 ? vocab_size : n;
  if (n > d.vocab_size) {
    throw Error(std::to_string(n) + " pieces do not fit vocab_size " + std::to_string(d.vocab_size));
  }
  d.eos_id = -1;
  for (int32_t id = 0; id < n; ++id) {
    const PieceType type = d.piece_types[size_t(id)];
    const std::string& text = d.bpe_tokens[size_t(id)];
    if (type == PieceType::Unknown) d.unk_id = id;
    if (type == PieceType::Control && text == bos_piece) d.bos_id = id;
    if (type == PieceType::Control && text == eos_piece) d.eos_id = id;
  }
  if (d.eos_id < 0) throw Error("no control piece \"" + eos_piece + "\" to end documents with");
  return d;
}

TokenizerData import_sentencepiece_tokenizer(const std::string& model_path, int32_t vocab_size) {
  const MappedFile file(model_path);
  try {
    return parse_sentencepiece_model(file.bytes(), vocab_size);
  } catch (const Error& e) {
    throw Error(model_path + ": " + e.what());
  }
}

}  // namespace t2r
