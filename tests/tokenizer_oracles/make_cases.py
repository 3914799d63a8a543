#!/usr/bin/env python3
"""Writes cases.json: the texts every tokenizer oracle encodes (tests/test_tokenizer_kinds.cpp
compares t2r with the ids the oracles wrote). Each case has its text as hex, since some are
not valid UTF-8. Usage: tests/tokenizer_oracles/make_cases.py > tests/tokenizer_oracles/cases.json"""
import json

texts = [
    ("plain", "The quick brown fox jumps over the lazy dog."),
    ("hello", "Hello world"),
    ("leading_spaces", "  leading spaces"),
    ("trailing_spaces", "trailing spaces   "),
    ("double_space", "a  b"),
    ("newlines", "a\n\nb"),
    ("crlf", "x\r\ny\r\n"),
    ("tabs", "\ttab\t\tx\t"),
    ("contractions", "I'm you're we've she'll he'd it's don't"),
    ("contractions_upper", "YOU'LL HE'S I'M WE'VE THEY'RE DON'T SHE'D"),
    ("quotes", "'''s ' s 's's"),
    ("contraction_case", "x'\u017f y x'S x'\u212a x'Ll X'RE 'VE'M"),
    ("digits", "123abc456 abc123 3.14159 1,000,000"),
    ("long_digits", "1234567890123456789 and 31415926535897932384626433832795"),
    ("emoji_zwj", "emoji \U0001F600\U0001F44D\U0001F3FD! family \U0001F468\u200D\U0001F469\u200D\U0001F467\u200D\U0001F466 ok"),
    ("cjk", "\u4e2d\u6587\u5b57\u7b26 and \u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8 \ud55c\uad6d\uc5b4"),
    ("combining", "cafe\u0301 caf\u00e9 n\u0303 a\u0308\u0304"),
    ("nbsp", "nbsp\u00a0here x \u00a0y"),
    ("ideographic_space", "ideographic\u3000space"),
    ("separators", "line\u2028sep NEL\u0085x"),
    ("indented", "multiple\n\n\n  indented\n    code"),
    ("spaces_only", "   "),
    ("one_space", " "),
    ("newlines_only", "\n\n\n"),
    ("whitespace_mix", " \t \n \r\n  \n\n   "),
    ("empty", ""),
    ("punctuation", "$$$ ?!  !!! <tag/>"),
    ("numbers_unicode", "\u216b \u00bd \u0663 x\u00b2 10km"),
    ("control_chars", "a\x1cb\x1f c"),
    ("code", "    def f(x):\n        return x**2  # comment\n\nfor (int i = 0; i < n; ++i) { s += a[i]; }\n"),
    ("json", '{"key": [1, 2.5e-3, null], "s": "\\u00e9\\n"}'),
    ("special_literals", "<s>Hello</s> <|begin_of_text|>x<|eot_id|> <unk> <|end_of_text|>"),
    ("long_word", "a" * 1500 + " " + "xyz" * 400),
    ("long_digit_run", "9" * 1200),
    ("mixed_scripts", "Ελληνικά русский עברית العربية हिन्दी ไทย"),
    ("upper_words", "HELLO World ALLCAPS CamelCase snake_case"),
]
invalid = [
    ("invalid_utf8", b"ab\xffcd \xfe\x80 x \xe2\x82 tail\xc3"),
    ("invalid_surrogate", b"\xed\xa0\x80\xc0\xafz ok"),
]
cases = [{"name": n, "hex": t.encode("utf-8").hex()} for n, t in texts]
cases += [{"name": n, "hex": b.hex(), "invalid_utf8": True} for n, b in invalid]
print(json.dumps(cases, indent=1))
