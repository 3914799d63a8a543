// Importers of tokenizer files into TokenizerData. Each refuses, with a t2r::Error naming the
// file and the problem, anything the runtime tokenizer would not reproduce exactly.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "tokenizer.h"

namespace t2r {

// Hugging Face tokenizer.json, model BPE, either
//  - byte-level: a ByteLevel pre-tokenizer (GPT-2 regex), or Split with Llama 3's regex then
//    ByteLevel, optionally ignore_merges; ByteLevel decoder; or
//  - SentencePiece-style (Llama 2, Mistral): normalizer [Prepend(U+2581)] + Replace(' ',
//    U+2581), no pre-tokenizer, byte_fallback and fuse_unk as given, decoder Replace +
//    ByteFallback + Fuse [+ Strip].
// Added tokens (special or not) become special texts. BOS/EOS come from a TemplateProcessing
// post-processor, overridden by add_bos_token / add_eos_token of a tokenizer_config.json
// beside it; eos_id is its eos_token, else "<|endoftext|>" or "</s>" (callers with a config
// eos_token_id may override it). Model ids are the token ids; vocab_size is the model's
// (config.json), at least the vocabulary; 0 means the tokenizer's own (its largest id + 1).
TokenizerData import_hf_tokenizer(const std::string& tokenizer_json_path, int32_t vocab_size);

// SentencePiece .model (ModelProto), unigram or BPE: pieces, scores and types, byte fallback,
// the normalizer (precompiled charsmap, add_dummy_prefix, remove_extra_whitespaces). eos_id
// and bos_id are its control pieces </s> and <s> (bos not added by default); unk_id its
// unknown piece. vocab_size 0 means the number of pieces. parse_* reads the bytes of one.
TokenizerData import_sentencepiece_tokenizer(const std::string& model_path, int32_t vocab_size);
TokenizerData parse_sentencepiece_model(std::string_view bytes, int32_t vocab_size);

// fairseq GPT-2 BPE: encoder.json and vocab.bpe give the BPE, dict.txt renumbers BPE ids to
// fairseq indices (line i -> i + 4 after <s> <pad> </s> <unk>; absent BPE ids -> <unk>).
// eos_id is </s> = 2. No special texts: fairseq's GPT-2 encoder matches none.
TokenizerData import_fairseq_tokenizer(const std::string& checkpoint_dir);

// A fairseq translation model's SentencePiece model and dictionary (dict.XX.txt, "PIECE COUNT"
// per line): the model segments, the dictionary numbers the pieces (line i -> i + 4 after
// <s> <pad> </s> <unk>; a piece it lacks -> <unk> = 3), and </s> = 2 ends every source.
TokenizerData import_fairseq_sentencepiece_tokenizer(const std::string& model_path, const std::string& dict_path);
// The same for a SentencePiece model already read and the dictionary's text.
TokenizerData fairseq_sentencepiece_tokenizer(TokenizerData sentencepiece, std::string_view dictionary);

}  // namespace t2r
