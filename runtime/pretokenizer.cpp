#include "pretokenizer.h"

#include "unicode_tables.h"
#include "utf8.h"

namespace t2r {
namespace {

using unicode::CharClass;

CharClass ascii_class(uint8_t b) {
  const uint8_t lower = b | 0x20;
  if (lower >= 'a' && lower <= 'z') return CharClass::Letter;
  if (b >= '0' && b <= '9') return CharClass::Number;
  if (b == ' ' || (b >= '\t' && b <= '\r')) return CharClass::Space;
  return CharClass::Other;
}

struct Char {
  CharClass cls;
  size_t len;  // bytes
};

Char char_at(std::string_view s, size_t i) {
  const uint8_t b = uint8_t(s[i]);
  if (b < 0x80) return {ascii_class(b), 1};
  char32_t cp = 0;
  const size_t len = utf8::sequence_at(s, i, &cp);
  if (len == 0) return {CharClass::Other, 1};
  return {unicode::char_class(cp), len};
}

bool is_newline(std::string_view s, size_t i) { return s[i] == '\r' || s[i] == '\n'; }

// End of the run of characters of class `cls` from j.
size_t run_end(std::string_view s, size_t j, CharClass cls) {
  while (j < s.size()) {
    const Char d = char_at(s, j);
    if (d.cls != cls) break;
    j += d.len;
  }
  return j;
}

// The contraction at i ('s 't 're 've 'm 'll 'd), 0 when there is none. Llama 3's pattern
// matches them in any case, GPT-2's in lower case only.
size_t contraction_end(std::string_view s, size_t i, bool any_case) {
  if (s[i] != '\'' || i + 1 >= s.size()) return 0;
  auto lower = [&](size_t k) { return any_case && s[k] >= 'A' && s[k] <= 'Z' ? char(s[k] | 0x20) : s[k]; };
  const char a = lower(i + 1);
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
  if (i + 2 >= s.size()) return 0;
  const char b = lower(i + 2);
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
  return 0;
}

// `\s+(?!\S)|\s+` at i, a whitespace character: before a non-space, the run gives back its
// last character to lead the next pre-token (" word"); a lone one falls to `\s+`.
size_t whitespace_end(std::string_view s, size_t i) {
  size_t last = i, j = i;  // start of the run's last character
  while (j < s.size()) {
    const Char d = char_at(s, j);
    if (d.cls != CharClass::Space) break;
    last = j;
    j += d.len;
  }
  return j < s.size() && last > i ? last : j;
}

size_t gpt2_end(std::string_view s, size_t i) {
  if (const size_t end = contraction_end(s, i, false)) return end;
  // ` ?X+` for X = letters, numbers, others: an optional space, then a run of one class.
  size_t j = i;
  Char c = char_at(s, i);
  if (s[i] == ' ' && i + 1 < s.size()) {
    const Char next = char_at(s, i + 1);
    if (next.cls != CharClass::Space) {
      j = i + 1;
      c = next;
    }
  }
  if (c.cls != CharClass::Space) return run_end(s, j + c.len, c.cls);
  return whitespace_end(s, i);
}

size_t llama3_end(std::string_view s, size_t i) {
  const size_t n = s.size();
  if (const size_t end = contraction_end(s, i, true)) return end;
  const Char c = char_at(s, i);
  // [^\r\n\p{L}\p{N}]?\p{L}+
  if (c.cls == CharClass::Letter) return run_end(s, i + c.len, CharClass::Letter);
  if (c.cls != CharClass::Number && !is_newline(s, i) && i + c.len < n &&
      char_at(s, i + c.len).cls == CharClass::Letter) {
    return run_end(s, i + c.len, CharClass::Letter);
  }
  // \p{N}{1,3}
  if (c.cls == CharClass::Number) {
    size_t j = i + c.len;
    for (int k = 1; k < 3 && j < n; ++k) {
      const Char d = char_at(s, j);
      if (d.cls != CharClass::Number) break;
      j += d.len;
    }
    return j;
  }
  //  ?[^\s\p{L}\p{N}]+[\r\n]*
  size_t j = i;
  if (s[i] == ' ' && i + 1 < n && char_at(s, i + 1).cls == CharClass::Other) j = i + 1;
  if (char_at(s, j).cls == CharClass::Other) {
    j = run_end(s, j, CharClass::Other);
    while (j < n && is_newline(s, j)) ++j;
    return j;
  }
  // c is whitespace. \s*[\r\n]+: the run up to and including its last CR or LF.
  size_t end = i, after_newline = 0;
  while (end < n) {
    const Char d = char_at(s, end);
    if (d.cls != CharClass::Space) break;
    if (is_newline(s, end)) after_newline = end + 1;
    end += d.len;
  }
  if (after_newline) return after_newline;
  return whitespace_end(s, i);
}

}  // namespace

size_t pretoken_end(Pretokenizer kind, std::string_view text, size_t i) {
  return kind == Pretokenizer::Llama3 ? llama3_end(text, i) : gpt2_end(text, i);
}

std::vector<std::string_view> pretokenize(std::string_view text, Pretokenizer kind) {
  std::vector<std::string_view> out;
  for (size_t i = 0; i < text.size();) {
    const size_t end = pretoken_end(kind, text, i);
    out.push_back(text.substr(i, end - i));
    i = end;
  }
  return out;
}

}  // namespace t2r
