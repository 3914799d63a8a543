#include "utf8.h"

namespace t2r::utf8 {

Lead lead_info(uint8_t b) {
  if (b < 0x80) return {1, 0, 0};
  if (b < 0xC2) return {0, 0, 0};
  if (b < 0xE0) return {2, 0x80, 0xBF};
  if (b == 0xE0) return {3, 0xA0, 0xBF};
  if (b == 0xED) return {3, 0x80, 0x9F};
  if (b < 0xF0) return {3, 0x80, 0xBF};
  if (b == 0xF0) return {4, 0x90, 0xBF};
  if (b < 0xF4) return {4, 0x80, 0xBF};
  if (b == 0xF4) return {4, 0x80, 0x8F};
  return {0, 0, 0};
}

size_t sequence_at(std::string_view s, size_t i, char32_t* cp) {
  const uint8_t b = uint8_t(s[i]);
  if (b < 0x80) {
    *cp = b;
    return 1;
  }
  const Lead lead = lead_info(b);
  if (lead.len == 0 || i + size_t(lead.len) > s.size()) return 0;
  const uint8_t b1 = uint8_t(s[i + 1]);
  if (b1 < lead.lo || b1 > lead.hi) return 0;
  char32_t c = char32_t(b & (0x7F >> lead.len)) << 6 | (b1 & 0x3F);
  for (int k = 2; k < lead.len; ++k) {
    const uint8_t t = uint8_t(s[i + size_t(k)]);
    if ((t & 0xC0) != 0x80) return 0;
    c = c << 6 | (t & 0x3F);
  }
  *cp = c;
  return size_t(lead.len);
}

}  // namespace t2r::utf8
