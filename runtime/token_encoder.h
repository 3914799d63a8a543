// The interface between Tokenizer (special texts, ids, decoding) and the algorithm of each
// tokenizer kind, which turns text into model ids.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "tokenizer.h"

namespace t2r {

// A part of the input: text to tokenize, or a special text already matched.
struct Segment {
  size_t begin, end;  // bytes of the input
  int32_t special;    // its model id, or -1 for text
};

class TokenEncoder {
 public:
  virtual ~TokenEncoder() = default;
  // Appends the model ids of the segments of `text` to `out`, special segments as their ids.
  virtual void encode(std::string_view text, const std::vector<Segment>& segments,
                      std::vector<int32_t>& out) const = 0;
};

// Each validates the parts of `data` its kind uses (throws t2r::Error naming the problem).
// `data` must outlive the encoder.
std::unique_ptr<const TokenEncoder> make_byte_bpe_encoder(const TokenizerData& data);
std::unique_ptr<const TokenEncoder> make_char_bpe_encoder(const TokenizerData& data);
std::unique_ptr<const TokenEncoder> make_sentencepiece_encoder(const TokenizerData& data);

}  // namespace t2r
