#include "report/svg_plots.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "report/report_html.h"

namespace clisc::report {
namespace {

constexpr int kLeft = 60, kRight = 20, kTop = 30, kBottom = 50, kPlotHeight = 220;
constexpr int kColumn = 90;

std::string Num(double v, int decimals = 1) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, v);
  return buffer;
}

double Quantile(const std::vector<double>& sorted, double q) {
  const double pos = q * (sorted.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (pos - lo) * (sorted[hi] - sorted[lo]);
}

// A round axis maximum: 1, 2 or 5 times a power of ten.
double NiceCeiling(double value) {
  if (!(value > 0)) return 1;
  const double power = std::pow(10.0, std::floor(std::log10(value)));
  for (double step : {1.0, 2.0, 5.0, 10.0}) {
    if (value <= step * power) return step * power;
  }
  return 10 * power;
}

}  // namespace

std::string StripBoxPlotSvg(const std::string& title, const std::string& y_label,
                            const std::vector<PlotSeries>& series, std::optional<double> y_max) {
  std::vector<std::vector<double>> finite;
  double largest = 0;
  for (const PlotSeries& s : series) {
    std::vector<double> values;
    for (double v : s.values) {
      if (std::isfinite(v)) values.push_back(v), largest = std::max(largest, v);
    }
    std::sort(values.begin(), values.end());
    finite.push_back(std::move(values));
  }
  const double top = y_max ? *y_max : NiceCeiling(largest * 1.05);
  const int width = kLeft + kRight + kColumn * std::max<int>(1, static_cast<int>(series.size()));
  const int height = kTop + kPlotHeight + kBottom;
  auto y_of = [&](double v) { return kTop + kPlotHeight * (1.0 - std::clamp(v / top, 0.0, 1.0)); };

  std::string svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"plot\" width=\"" +
                    std::to_string(width) + "\" height=\"" + std::to_string(height) +
                    "\" viewBox=\"0 0 " + std::to_string(width) + " " + std::to_string(height) +
                    "\" role=\"img\" aria-label=\"" + EscapeHtml(title) + "\">\n";
  svg += "<title>" + EscapeHtml(title) + "</title>\n";
  svg += "<text x=\"" + std::to_string(width / 2) +
         "\" y=\"18\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"bold\">" +
         EscapeHtml(title) + "</text>\n";
  // The y axis with five ticks and grid lines.
  for (int i = 0; i <= 4; ++i) {
    const double v = top * i / 4.0;
    const std::string y = Num(y_of(v));
    svg += "<line x1=\"" + std::to_string(kLeft) + "\" x2=\"" + std::to_string(width - kRight) +
           "\" y1=\"" + y + "\" y2=\"" + y + "\" stroke=\"#ddd\"/>\n";
    svg += "<text x=\"" + std::to_string(kLeft - 6) + "\" y=\"" + Num(y_of(v) + 4) +
           "\" text-anchor=\"end\" font-size=\"11\">" + Num(v, top <= 2 ? 2 : 1) + "</text>\n";
  }
  svg += "<line x1=\"" + std::to_string(kLeft) + "\" x2=\"" + std::to_string(kLeft) + "\" y1=\"" +
         std::to_string(kTop) + "\" y2=\"" + std::to_string(kTop + kPlotHeight) +
         "\" stroke=\"#333\"/>\n";
  svg += "<text transform=\"translate(14," + std::to_string(kTop + kPlotHeight / 2) +
         ") rotate(-90)\" text-anchor=\"middle\" font-size=\"12\">" + EscapeHtml(y_label) +
         "</text>\n";
  for (size_t i = 0; i < series.size(); ++i) {
    const double center = kLeft + kColumn * (i + 0.5);
    const std::vector<double>& values = finite[i];
    const std::string color = series[i].highlight ? "#c0392b" : "#2c6fbb";
    svg += "<text x=\"" + Num(center) + "\" y=\"" + std::to_string(kTop + kPlotHeight + 18) +
           "\" text-anchor=\"middle\" font-size=\"12\"" +
           (series[i].highlight ? " font-weight=\"bold\"" : "") + ">" +
           EscapeHtml(series[i].label) + "</text>\n";
    svg += "<text x=\"" + Num(center) + "\" y=\"" + std::to_string(kTop + kPlotHeight + 34) +
           "\" text-anchor=\"middle\" font-size=\"10\" fill=\"#666\">n=" +
           std::to_string(values.size()) + "</text>\n";
    if (values.empty()) continue;
    const double q1 = Quantile(values, 0.25), median = Quantile(values, 0.5),
                 q3 = Quantile(values, 0.75);
    const double half = kColumn * 0.25;
    svg += "<line x1=\"" + Num(center) + "\" x2=\"" + Num(center) + "\" y1=\"" +
           Num(y_of(values.front())) + "\" y2=\"" + Num(y_of(values.back())) + "\" stroke=\"" +
           color + "\"/>\n";
    svg += "<rect x=\"" + Num(center - half) + "\" y=\"" + Num(y_of(q3)) + "\" width=\"" +
           Num(2 * half) + "\" height=\"" + Num(std::max(1.0, y_of(q1) - y_of(q3))) + "\" fill=\"" +
           color + "\" fill-opacity=\"0.15\" stroke=\"" + color + "\"/>\n";
    svg += "<line x1=\"" + Num(center - half) + "\" x2=\"" + Num(center + half) + "\" y1=\"" +
           Num(y_of(median)) + "\" y2=\"" + Num(y_of(median)) + "\" stroke=\"" + color +
           "\" stroke-width=\"2\"/>\n";
    // Points spread sideways by a fixed pattern so the plot is the same on every render.
    for (size_t k = 0; k < values.size(); ++k) {
      const double jitter = ((k * 37) % 11 - 5) * (half * 0.7 / 5);
      svg += "<circle cx=\"" + Num(center + jitter) + "\" cy=\"" + Num(y_of(values[k])) +
             "\" r=\"3\" fill=\"" + color + "\" fill-opacity=\"0.7\"/>\n";
    }
  }
  svg += "</svg>\n";
  return svg;
}

}  // namespace clisc::report
