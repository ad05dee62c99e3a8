// Inline SVG plots for the report (no script, no external resources): one box per variant
// (quartiles, whiskers to min and max) with every case drawn as a point over it.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace clisc::report {

struct PlotSeries {
  std::string label;           // the x-axis label (a variant)
  std::vector<double> values;  // non-finite values are left out
  bool highlight = false;      // the final variant
};

// A self-contained <svg> element. The y axis spans [y_min, y_max] when given, else [0, the
// largest value] widened to a round number.
std::string StripBoxPlotSvg(const std::string& title, const std::string& y_label,
                            const std::vector<PlotSeries>& series,
                            std::optional<double> y_max = std::nullopt);

}  // namespace clisc::report
