// Typed key/value metadata of a model file (format/SPEC.md, "Metadata").
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace t2r {

class Metadata {
 public:
  // Index = value type in the file minus one.
  using Value = std::variant<int64_t, double, std::string, std::vector<int32_t>,
                             std::vector<std::string>>;

  void set(std::string key, Value value);  // replaces an existing key
  const Value* find(std::string_view key) const;
  bool has(std::string_view key) const { return find(key) != nullptr; }
  const std::vector<std::pair<std::string, Value>>& entries() const { return entries_; }

  // Each getter throws t2r::Error naming the key when it is missing or has another type.
  int64_t get_int(std::string_view key) const;
  int64_t get_int(std::string_view key, int64_t fallback) const;
  double get_float(std::string_view key) const;  // an int value is accepted too
  double get_float(std::string_view key, double fallback) const;
  const std::string& get_string(std::string_view key) const;
  const std::vector<int32_t>& get_int_array(std::string_view key) const;
  const std::vector<std::string>& get_string_array(std::string_view key) const;

 private:
  template <typename T>
  const T& get(std::string_view key, const char* type_name) const;
  std::vector<std::pair<std::string, Value>> entries_;  // in insertion (file) order
  // key -> position in entries_: a file may hold millions of entries, so lookups and the
  // duplicate check while reading must not be linear.
  std::map<std::string, size_t, std::less<>> index_;
};

}  // namespace t2r
