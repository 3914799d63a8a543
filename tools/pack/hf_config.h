// A Hugging Face config.json as a set of keys that must each be accounted for: read by the importer,
// ignored on purpose (the one list of keys that only describe training, generation defaults or
// bookkeeping is in hf_config.cpp), or refused by name with its value. A key the importer does not
// know may change what the model computes, so it is never replaced by a default.
#pragma once

#include <set>
#include <string>

#include "json.h"

namespace t2r {

class HfConfig {
 public:
  // Parses `path`; throws t2r::Error naming the file for invalid JSON or a non-object.
  explicit HfConfig(const std::string& path);

  // Marks `key` as read and returns it; nullptr when absent or null (both mean "the default").
  const json::Value* find(const std::string& key);
  const json::Value& at(const std::string& key);  // throws naming the missing key
  int64_t integer(const std::string& key, int64_t fallback);
  double number(const std::string& key, double fallback);
  bool flag(const std::string& key, bool fallback);

  // Throws "<path>: unsupported model: <what>".
  [[noreturn]] void unsupported(const std::string& what) const;
  // Refuses `key` with its value unless its value is absent, null or `allowed`.
  void require_absent_or(const std::string& key, const json::Value& allowed);
  // Throws naming the first key that was neither read nor on the ignored list.
  void check_all_read() const;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  json::Value root_;
  std::set<std::string> read_;
};

// A JSON value as it would be written in the file, shortened, for error messages.
std::string json_text(const json::Value& value);

}  // namespace t2r
