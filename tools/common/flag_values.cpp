#include "flag_values.h"

#include <charconv>
#include <cstdlib>

namespace t2r::flags {

int64_t integer(const std::string& flag, const std::string& text, int64_t min, int64_t max) {
  int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < min || value > max) {
    throw BadFlagValue(flag + " needs an integer in [" + std::to_string(min) + ", " + std::to_string(max) +
                       "], got '" + text + "'");
  }
  return value;
}

double number(const std::string& flag, const std::string& text, double min, double max) {
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !(value >= min && value <= max)) {
    throw BadFlagValue(flag + " needs a number in [" + std::to_string(min) + ", " + std::to_string(max) + "], got '" +
                       text + "'");
  }
  return value;
}

uint64_t size(const std::string& flag, const std::string& text) {
  uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  const std::string suffix(end, text.data() + text.size());
  int shift = -1;
  if (suffix.empty()) shift = 0;
  else if (suffix == "K" || suffix == "k") shift = 10;
  else if (suffix == "M" || suffix == "m") shift = 20;
  else if (suffix == "G" || suffix == "g") shift = 30;
  if (ec != std::errc() || shift < 0 || value < 1 || value > (uint64_t(1) << (62 - shift))) {
    throw BadFlagValue(flag + " needs a size in bytes, optionally with a K, M or G suffix (e.g. 512M), from 1 to "
                              "2^62; got '" + text + "'");
  }
  return value << shift;
}

}  // namespace t2r::flags
