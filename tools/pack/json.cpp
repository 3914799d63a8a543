#include "json.h"

#include <charconv>
#include <cmath>

#include "error.h"

namespace t2r::json {

Value Value::boolean(bool b) {
  Value v;
  v.type_ = Type::Bool;
  v.bool_ = b;
  return v;
}

Value Value::number(double d) {
  Value v;
  v.type_ = Type::Number;
  v.number_ = d;
  return v;
}

Value Value::string(std::string s) {
  Value v;
  v.type_ = Type::String;
  v.string_ = std::move(s);
  return v;
}

Value Value::array(Array items) {
  Value v;
  v.type_ = Type::Array;
  v.array_ = std::move(items);
  return v;
}

Value Value::object(Object members) {
  Value v;
  v.type_ = Type::Object;
  v.object_ = std::move(members);
  return v;
}

std::string_view type_name(Value::Type t) {
  switch (t) {
    case Value::Type::Null: return "null";
    case Value::Type::Bool: return "bool";
    case Value::Type::Number: return "number";
    case Value::Type::String: return "string";
    case Value::Type::Array: return "array";
    case Value::Type::Object: return "object";
  }
  return "?";
}

namespace {

[[noreturn]] void wrong_type(Value::Type want, Value::Type got) {
  throw Error("JSON: expected " + std::string(type_name(want)) + ", got " + std::string(type_name(got)));
}

}  // namespace

bool Value::as_bool() const {
  if (type_ != Type::Bool) wrong_type(Type::Bool, type_);
  return bool_;
}

double Value::as_number() const {
  if (type_ != Type::Number) wrong_type(Type::Number, type_);
  return number_;
}

int64_t Value::as_int() const {
  double d = as_number();
  // Beyond 2^53 a double no longer holds every integer, so the value may already be wrong.
  constexpr double kMaxExact = 9007199254740992.0;
  if (!(std::fabs(d) <= kMaxExact))
    throw Error("JSON: number " + std::to_string(d) + " is beyond the exact integer range +-2^53");
  if (d != std::trunc(d)) throw Error("JSON: expected an integer, got " + std::to_string(d));
  return static_cast<int64_t>(d);
}

const std::string& Value::as_string() const {
  if (type_ != Type::String) wrong_type(Type::String, type_);
  return string_;
}

const Value::Array& Value::as_array() const {
  if (type_ != Type::Array) wrong_type(Type::Array, type_);
  return array_;
}

const Value::Object& Value::as_object() const {
  if (type_ != Type::Object) wrong_type(Type::Object, type_);
  return object_;
}

const Value* Value::find(std::string_view key) const {
  if (type_ != Type::Object) return nullptr;
  // Searched from the back so that the last of duplicate keys wins.
  for (auto it = object_.rbegin(); it != object_.rend(); ++it)
    if (it->first == key) return &it->second;
  return nullptr;
}

const Value& Value::at(std::string_view key) const {
  as_object();
  const Value* v = find(key);
  if (!v) throw Error("JSON: missing key '" + std::string(key) + "'");
  return *v;
}

namespace {

constexpr int kMaxDepth = 512;

class Parser {
 public:
  explicit Parser(std::string_view text) : s_(text) {}

  Value parse_document() {
    skip_ws();
    Value v = parse_value(0);
    skip_ws();
    if (pos_ != s_.size()) fail("unexpected data after the top-level value");
    return v;
  }

 private:
  std::string_view s_;
  size_t pos_ = 0;

  [[noreturn]] void fail(const std::string& what) const { fail_at(what, pos_); }

  [[noreturn]] void fail_at(const std::string& what, size_t at) const {
    size_t line = 1, column = 1;
    for (size_t i = 0; i < at && i < s_.size(); ++i) {
      if (s_[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    throw Error("JSON: " + what + " at line " + std::to_string(line) + ", column " + std::to_string(column));
  }

  bool at_end() const { return pos_ >= s_.size(); }
  unsigned char peek() const { return static_cast<unsigned char>(s_[pos_]); }

  void skip_ws() {
    while (!at_end()) {
      char c = s_[pos_];
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
      ++pos_;
    }
  }

  void expect_literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) fail("invalid literal");
    pos_ += word.size();
  }

  Value parse_value(int depth) {
    if (at_end()) fail("unexpected end of input");
    switch (peek()) {
      case '{': return parse_object(depth + 1);
      case '[': return parse_array(depth + 1);
      case '"': return Value::string(parse_string());
      case 't': expect_literal("true"); return Value::boolean(true);
      case 'f': expect_literal("false"); return Value::boolean(false);
      case 'n': expect_literal("null"); return Value();
      default:
        if (peek() == '-' || (peek() >= '0' && peek() <= '9')) return parse_number();
        fail("unexpected character");
    }
  }

  void check_depth(int depth) const {
    if (depth > kMaxDepth) fail("nesting deeper than " + std::to_string(kMaxDepth));
  }

  Value parse_object(int depth) {
    check_depth(depth);
    ++pos_;  // '{'
    Value::Object members;
    skip_ws();
    if (!at_end() && peek() == '}') {
      ++pos_;
      return Value::object(std::move(members));
    }
    for (;;) {
      skip_ws();
      if (at_end()) fail("unexpected end of input in object");
      if (peek() != '"') fail("expected a string key");
      std::string key = parse_string();
      skip_ws();
      if (at_end() || peek() != ':') fail("expected ':' after object key");
      ++pos_;
      skip_ws();
      Value v = parse_value(depth);
      members.emplace_back(std::move(key), std::move(v));
      skip_ws();
      if (at_end()) fail("unexpected end of input in object");
      if (peek() == '}') {
        ++pos_;
        return Value::object(std::move(members));
      }
      if (peek() != ',') fail("expected ',' or '}' in object");
      ++pos_;
    }
  }

  Value parse_array(int depth) {
    check_depth(depth);
    ++pos_;  // '['
    Value::Array items;
    skip_ws();
    if (!at_end() && peek() == ']') {
      ++pos_;
      return Value::array(std::move(items));
    }
    for (;;) {
      skip_ws();
      items.push_back(parse_value(depth));
      skip_ws();
      if (at_end()) fail("unexpected end of input in array");
      if (peek() == ']') {
        ++pos_;
        return Value::array(std::move(items));
      }
      if (peek() != ',') fail("expected ',' or ']' in array");
      ++pos_;
    }
  }

  Value parse_number() {
    size_t start = pos_;
    auto digits = [&] {
      size_t n = 0;
      while (!at_end() && peek() >= '0' && peek() <= '9') ++pos_, ++n;
      return n;
    };
    if (peek() == '-') ++pos_;
    if (at_end()) fail("invalid number");
    if (peek() == '0') {
      ++pos_;
      if (!at_end() && peek() >= '0' && peek() <= '9') fail_at("leading zero in number", start);
    } else if (digits() == 0) {
      fail("invalid number");
    }
    if (!at_end() && peek() == '.') {
      ++pos_;
      if (digits() == 0) fail("expected a digit after the decimal point");
    }
    if (!at_end() && (peek() == 'e' || peek() == 'E')) {
      ++pos_;
      if (!at_end() && (peek() == '+' || peek() == '-')) ++pos_;
      if (digits() == 0) fail("expected a digit in the exponent");
    }
    // The grammar is checked above; from_chars is locale-independent and correctly rounded.
    double d = 0;
    auto [end, ec] = std::from_chars(s_.data() + start, s_.data() + pos_, d);
    if (ec == std::errc::result_out_of_range) fail_at("number out of double range", start);
    if (ec != std::errc() || end != s_.data() + pos_) fail_at("invalid number", start);
    return Value::number(d);
  }

  unsigned hex4() {
    if (s_.size() - pos_ < 4) fail("truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; ++i) {
      unsigned char c = peek();
      unsigned d;
      if (c >= '0' && c <= '9')
        d = c - '0';
      else if (c >= 'a' && c <= 'f')
        d = c - 'a' + 10;
      else if (c >= 'A' && c <= 'F')
        d = c - 'A' + 10;
      else
        fail("invalid hex digit in \\u escape");
      v = v * 16 + d;
      ++pos_;
    }
    return v;
  }

  static void append_utf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
      out += char(cp);
    } else if (cp < 0x800) {
      out += char(0xC0 | (cp >> 6));
      out += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += char(0xE0 | (cp >> 12));
      out += char(0x80 | ((cp >> 6) & 0x3F));
      out += char(0x80 | (cp & 0x3F));
    } else {
      out += char(0xF0 | (cp >> 18));
      out += char(0x80 | ((cp >> 12) & 0x3F));
      out += char(0x80 | ((cp >> 6) & 0x3F));
      out += char(0x80 | (cp & 0x3F));
    }
  }

  // Length of the well-formed UTF-8 sequence at pos_ (RFC 3629: no overlongs, no
  // surrogates, nothing above U+10FFFF), or a failure.
  size_t utf8_length() const {
    unsigned char c = peek();
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF)
      n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
      n = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      fail("invalid UTF-8");
    }
    if (s_.size() - pos_ < n) fail("truncated UTF-8 sequence");
    for (size_t i = 1; i < n; ++i) {
      unsigned char b = static_cast<unsigned char>(s_[pos_ + i]);
      if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) fail("invalid UTF-8");
    }
    return n;
  }

  std::string parse_string() {
    ++pos_;  // opening quote
    std::string out;
    for (;;) {
      // Copy the run of plain ASCII in one go; this is most of tokenizer.json.
      size_t run = pos_;
      while (run < s_.size()) {
        unsigned char c = static_cast<unsigned char>(s_[run]);
        if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80) break;
        ++run;
      }
      out.append(s_.data() + pos_, run - pos_);
      pos_ = run;
      if (at_end()) fail("unterminated string");
      unsigned char c = peek();
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (c < 0x20) fail("control character in string");
      if (c >= 0x80) {
        size_t n = utf8_length();
        out.append(s_.data() + pos_, n);
        pos_ += n;
        continue;
      }
      size_t escape_at = pos_;
      ++pos_;  // backslash
      if (at_end()) fail("unterminated string");
      char e = s_[pos_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          unsigned cp = hex4();
          if (cp >= 0xDC00 && cp <= 0xDFFF) fail_at("lone low surrogate in \\u escape", escape_at);
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (s_.substr(pos_, 2) != "\\u") fail_at("lone high surrogate in \\u escape", escape_at);
            pos_ += 2;
            unsigned low = hex4();
            if (low < 0xDC00 || low > 0xDFFF) fail_at("lone high surrogate in \\u escape", escape_at);
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          append_utf8(out, cp);
          break;
        }
        default: fail_at("invalid escape", escape_at);
      }
    }
  }
};

}  // namespace

Value parse(std::string_view text) { return Parser(text).parse_document(); }

}  // namespace t2r::json
