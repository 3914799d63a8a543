// Importers of GPT-2 style byte-level BPE tokenizers into TokenizerData. Both refuse, with a
// t2r::Error naming the file and the problem, anything the runtime tokenizer would not
// reproduce exactly.
#pragma once

#include <cstdint>
#include <string>

#include "tokenizer.h"

namespace t2r {

// Hugging Face tokenizer.json: model BPE with a ByteLevel pre-tokenizer (GPT-2 regex, no
// prefix space) and decoder; added tokens become special texts. Model ids are the BPE ids;
// vocab_size is the model's (config.json), at least the BPE vocabulary. eos_id is the added
// token "<|endoftext|>" (callers with a config eos_token_id may override it); no unk.
TokenizerData import_hf_tokenizer(const std::string& tokenizer_json_path, int32_t vocab_size);

// fairseq GPT-2 BPE: encoder.json and vocab.bpe give the BPE, dict.txt renumbers BPE ids to
// fairseq indices (line i -> i + 4 after <s> <pad> </s> <unk>; absent BPE ids -> <unk>).
// eos_id is </s> = 2. No special texts: fairseq's GPT-2 encoder matches none.
TokenizerData import_fairseq_tokenizer(const std::string& checkpoint_dir);

}  // namespace t2r
