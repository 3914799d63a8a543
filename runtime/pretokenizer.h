// The regex pre-tokenizers of byte-level BPE tokenizers, written as hand scanners that find
// exactly the matches a backtracking engine (Oniguruma, in Hugging Face tokenizers) finds.
// BPE merges never cross a pre-token's boundaries.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace t2r {

enum class Pretokenizer : uint8_t {
  // GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  Gpt2,
  // Llama 3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
  //          ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
  Llama3,
};

// End of the pre-token that starts at byte i < text.size(). A byte that starts no valid UTF-8
// sequence counts as one character that is neither letter, number nor space.
size_t pretoken_end(Pretokenizer kind, std::string_view text, size_t i);

// All pre-tokens of `text` (special texts are not looked for). For tests and diagnostics.
std::vector<std::string_view> pretokenize(std::string_view text,
                                          Pretokenizer kind = Pretokenizer::Gpt2);

}  // namespace t2r
