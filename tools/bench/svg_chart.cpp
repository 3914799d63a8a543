#include "svg_chart.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace t2r::bench {
namespace {

std::string number(double v) {
  char buffer[32];
  if (std::fabs(v) >= 1e6 || (std::fabs(v) < 1e-2 && v != 0)) {
    std::snprintf(buffer, sizeof buffer, "%.3g", v);
  } else {
    std::snprintf(buffer, sizeof buffer, "%.4g", v);
  }
  return buffer;
}

}  // namespace

std::string line_chart_svg(const std::string& title, const std::string& x_label, const std::string& y_label,
                           const std::vector<Series>& series, bool log_x, bool log_y) {
  const double width = 640, height = 400, left = 80, right = 160, top = 40, bottom = 60;
  auto tx = [&](double x) { return log_x ? std::log2(x) : x; };
  auto ty = [&](double y) { return log_y ? std::log10(y) : y; };
  double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
  for (const auto& s : series) {
    for (const auto& [x, y] : s.points) {
      x0 = std::min(x0, tx(x));
      x1 = std::max(x1, tx(x));
      y0 = std::min(y0, ty(y));
      y1 = std::max(y1, ty(y));
    }
  }
  if (x0 > x1) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
  if (!log_y) y0 = std::min(y0, 0.0);
  if (y1 - y0 < 1e-12) y1 = y0 + 1;
  if (x1 - x0 < 1e-12) x1 = x0 + 1;
  const double pad = (y1 - y0) * 0.08;
  y1 += pad;
  if (log_y) y0 -= pad;
  auto px = [&](double x) { return left + (tx(x) - x0) / (x1 - x0) * (width - left - right); };
  auto py = [&](double y) { return height - bottom - (ty(y) - y0) / (y1 - y0) * (height - top - bottom); };

  std::string svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + number(width) + "\" height=\"" +
                    number(height) + "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  svg += "<text x=\"" + number(width / 2) + "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">" + title + "</text>\n";
  // Axes with ticks at the data's x values and at five evenly spaced y values.
  svg += "<line x1=\"" + number(left) + "\" y1=\"" + number(height - bottom) + "\" x2=\"" + number(width - right) +
         "\" y2=\"" + number(height - bottom) + "\" stroke=\"black\"/>\n";
  svg += "<line x1=\"" + number(left) + "\" y1=\"" + number(top) + "\" x2=\"" + number(left) + "\" y2=\"" +
         number(height - bottom) + "\" stroke=\"black\"/>\n";
  std::vector<double> xs;
  for (const auto& s : series) {
    for (const auto& point : s.points) xs.push_back(point.first);
  }
  std::sort(xs.begin(), xs.end());
  xs.erase(std::unique(xs.begin(), xs.end()), xs.end());
  if (xs.size() > 10) {
    const double first = xs.front(), last = xs.back();
    xs.clear();
    for (int i = 0; i <= 4; ++i) {
      const double v = tx(first) + (tx(last) - tx(first)) * i / 4;
      xs.push_back(log_x ? std::exp2(v) : v);
    }
  }
  for (double x : xs) {
    svg += "<text x=\"" + number(px(x)) + "\" y=\"" + number(height - bottom + 18) + "\" text-anchor=\"middle\">" +
           number(x) + "</text>\n";
  }
  for (int i = 0; i <= 4; ++i) {
    const double v = y0 + (y1 - y0) * i / 4;
    const double y = log_y ? std::pow(10.0, v) : v;
    svg += "<text x=\"" + number(left - 8) + "\" y=\"" + number(py(y) + 4) + "\" text-anchor=\"end\">" + number(y) +
           "</text>\n";
    svg += "<line x1=\"" + number(left) + "\" y1=\"" + number(py(y)) + "\" x2=\"" + number(width - right) + "\" y2=\"" +
           number(py(y)) + "\" stroke=\"#ddd\"/>\n";
  }
  svg += "<text x=\"" + number((left + width - right) / 2) + "\" y=\"" + number(height - 18) +
         "\" text-anchor=\"middle\">" + x_label + "</text>\n";
  svg += "<text transform=\"translate(18," + number((top + height - bottom) / 2) +
         ") rotate(-90)\" text-anchor=\"middle\">" + y_label + "</text>\n";
  for (size_t i = 0; i < series.size(); ++i) {
    const Series& s = series[i];
    std::string path;
    for (const auto& [x, y] : s.points) path += (path.empty() ? "M" : " L") + number(px(x)) + "," + number(py(y));
    if (s.line) svg += "<path d=\"" + path + "\" fill=\"none\" stroke=\"" + s.color + "\" stroke-width=\"2\"/>\n";
    for (const auto& [x, y] : s.points) {
      svg += "<circle cx=\"" + number(px(x)) + "\" cy=\"" + number(py(y)) + "\" r=\"3\" fill=\"" + s.color + "\"/>\n";
    }
    const double ly = top + 20 + 20 * double(i);
    svg += "<line x1=\"" + number(width - right + 12) + "\" y1=\"" + number(ly) + "\" x2=\"" +
           number(width - right + 32) + "\" y2=\"" + number(ly) + "\" stroke=\"" + s.color + "\" stroke-width=\"2\"/>\n";
    svg += "<text x=\"" + number(width - right + 38) + "\" y=\"" + number(ly + 4) + "\">" + s.label + "</text>\n";
  }
  return svg + "</svg>\n";
}

}  // namespace t2r::bench
