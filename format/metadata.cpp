#include "metadata.h"

#include "error.h"

namespace t2r {

void Metadata::set(std::string key, Value value) {
  const auto [it, added] = index_.try_emplace(key, entries_.size());
  if (!added) {
    entries_[it->second].second = std::move(value);
    return;
  }
  entries_.emplace_back(std::move(key), std::move(value));
}

const Metadata::Value* Metadata::find(std::string_view key) const {
  const auto it = index_.find(key);
  return it == index_.end() ? nullptr : &entries_[it->second].second;
}

template <typename T>
const T& Metadata::get(std::string_view key, const char* type_name) const {
  const Value* v = find(key);
  if (!v) throw Error("model metadata: missing key '" + std::string(key) + "'");
  const T* typed = std::get_if<T>(v);
  if (!typed) {
    throw Error("model metadata: key '" + std::string(key) + "' is not " + type_name);
  }
  return *typed;
}

int64_t Metadata::get_int(std::string_view key) const { return get<int64_t>(key, "an int"); }

int64_t Metadata::get_int(std::string_view key, int64_t fallback) const {
  return has(key) ? get_int(key) : fallback;
}

double Metadata::get_float(std::string_view key) const {
  const Value* v = find(key);
  if (v && std::holds_alternative<int64_t>(*v)) return double(std::get<int64_t>(*v));
  return get<double>(key, "a float");
}

double Metadata::get_float(std::string_view key, double fallback) const {
  return has(key) ? get_float(key) : fallback;
}

const std::string& Metadata::get_string(std::string_view key) const {
  return get<std::string>(key, "a string");
}

const std::vector<int32_t>& Metadata::get_int_array(std::string_view key) const {
  return get<std::vector<int32_t>>(key, "an int32 array");
}

const std::vector<std::string>& Metadata::get_string_array(std::string_view key) const {
  return get<std::vector<std::string>>(key, "a string array");
}

}  // namespace t2r
