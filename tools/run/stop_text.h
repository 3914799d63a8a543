// Stop strings for generated text (t2r-run --stop): text passes through as it is generated, and
// generation ends before the first stop string, which is never printed, even when it arrives split
// across tokens: text that could be the start of a stop string is held back until it is not.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace t2r::run {

class StopText {
 public:
  explicit StopText(std::vector<std::string> stops);  // none empty

  // Takes the next generated text; returns what can be printed now. Once a stop string has
  // appeared, returns the text before it, and nothing after that.
  std::string push(std::string_view text);
  // The text held back, at the end of the generation (nothing after a stop).
  std::string finish();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string pending_;
  bool stopped_ = false;
};

}  // namespace t2r::run
