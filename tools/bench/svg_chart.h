// A small line chart written as SVG, for benchmark results (no plotting library needed).
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace t2r::bench {

struct Series {
  std::string label;
  std::string color;  // any SVG color
  std::vector<std::pair<double, double>> points;
  bool line = true;  // false: the points alone (a scatter)
};

// x ticks at the data's x values, or five evenly spaced when there are more than ten of them.
// Both axes logarithmic (base 2 for x, 10 for y) when asked; points must be positive then.
std::string line_chart_svg(const std::string& title, const std::string& x_label, const std::string& y_label,
                           const std::vector<Series>& series, bool log_x, bool log_y);

}  // namespace t2r::bench
