// A strict JSON (RFC 8259) reader for config.json, tokenizer.json, encoder.json and the
// safetensors header. Also serves as the generic value type for pickled `args`.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace t2r::json {

class Value {
 public:
  enum class Type { Null, Bool, Number, String, Array, Object };
  using Array = std::vector<Value>;
  using Object = std::vector<std::pair<std::string, Value>>;  // keeps file order

  Value() = default;  // null
  static Value boolean(bool b);
  static Value number(double d);
  static Value string(std::string s);
  static Value array(Array items);
  static Value object(Object members);

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::Null; }

  // Each accessor throws t2r::Error naming the expected and the actual type.
  bool as_bool() const;
  double as_number() const;
  int64_t as_int() const;  // also refuses non-integral numbers and numbers beyond +-2^53
  const std::string& as_string() const;
  const Array& as_array() const;
  const Object& as_object() const;

  const Value* find(std::string_view key) const;  // nullptr when absent or not an object
  const Value& at(std::string_view key) const;     // throws t2r::Error naming the missing key

 private:
  Type type_ = Type::Null;
  bool bool_ = false;
  double number_ = 0;
  std::string string_;
  Array array_;
  Object object_;
};

// Throws t2r::Error("JSON: <what> at line L, column C") on any deviation from RFC 8259
// (trailing commas, comments, lone surrogates, control characters in strings, invalid UTF-8,
// nesting deeper than 512, duplicate keys are allowed and the last one wins in find()).
Value parse(std::string_view text);

std::string_view type_name(Value::Type t);

}  // namespace t2r::json
