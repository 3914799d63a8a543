// The values of command-line flags, parsed strictly for every tool: the whole text must be the
// value and the value must lie in its range, else BadFlagValue says which flag wanted what and
// what it got. Each tool catches it around its option parsing and prints its usage.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace t2r::flags {

struct BadFlagValue : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

int64_t integer(const std::string& flag, const std::string& text, int64_t min, int64_t max);
double number(const std::string& flag, const std::string& text, double min, double max);
// Bytes, optionally with a K, M or G suffix (powers of 1024), from 1 to 2^62.
uint64_t size(const std::string& flag, const std::string& text);

}  // namespace t2r::flags
