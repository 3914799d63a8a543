// UTF-8 validity, as Unicode's Table 3-7 defines it: what the pre-tokenizers, the normalizers
// and the streaming decoder agree on, so that any bytes scan the same way everywhere.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace t2r::utf8 {

// What a lead byte promises: the sequence length (0: not a lead byte) and the range of the
// second byte, narrowed so that overlong forms, surrogates and code points above U+10FFFF
// are invalid.
struct Lead {
  int len;
  uint8_t lo, hi;
};
Lead lead_info(uint8_t b);

// The length of the valid sequence starting at s[i] (1..4) and its code point, or 0 when the
// bytes there do not form one (then *cp is untouched).
size_t sequence_at(std::string_view s, size_t i, char32_t* cp);

}  // namespace t2r::utf8
