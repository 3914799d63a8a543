// The tokenizer's keys in a model file (format/SPEC.md, "tokenizer.*"), written by the packer
// and read by the runtime from this one place. Files written before tokenizer.kind existed
// hold a GPT-2 byte-level BPE and read as one.
#pragma once

#include <cstdint>

#include "metadata.h"
#include "tokenizer.h"

namespace t2r {

// The value of tokenizer.kind: "byte_bpe", "bpe", "sentencepiece_bpe", "sentencepiece_unigram".
const char* tokenizer_kind_name(TokenizerKind kind);

// A translation model's source side, when its dictionary numbers the pieces differently from the
// target's: the bpe_to_model of the source tokenizer, which is otherwise the target's.
inline constexpr const char* kSourceTokenMap = "tokenizer.source_bpe_to_model";

void write_tokenizer_metadata(const TokenizerData& data, Metadata& metadata);

// Throws t2r::Error naming the key that is missing, mistyped or has an unknown value.
TokenizerData read_tokenizer_metadata(const Metadata& metadata, int32_t vocab_size);

}  // namespace t2r
