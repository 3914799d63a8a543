// The one exception type t2r throws. Every message names what is wrong and where,
// so that a user holding a bad file or flag knows what to fix.
#pragma once

#include <stdexcept>
#include <string>

namespace t2r {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace t2r
