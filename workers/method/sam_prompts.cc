#include "workers/method/sam_prompts.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "workers/method/axial_slices.h"

namespace clisc::method {
namespace {

constexpr int kHistogramBins = 10;
constexpr int kMaxPositivePoints = 5;

// numpy.histogram's edge at `fraction` of the range [lo, hi]: linspace(lo, hi, bins + 1) builds
// edge k as k * ((hi - lo) / bins) + lo, and widens an empty range to [lo - 0.5, hi + 0.5].
double HistogramEdge(double lo, double hi, double fraction) {
  if (lo == hi) lo -= 0.5, hi += 0.5;
  const double edges = fraction * kHistogramBins;
  const double whole = std::round(edges);
  if (std::abs(edges - whole) < 1e-9) {
    if (whole >= kHistogramBins) return hi;  // linspace sets the last edge to stop exactly
    return whole * ((hi - lo) / kHistogramBins) + lo;
  }
  return lo + fraction * (hi - lo);
}

SlicePromptResult Skip(std::string reason) { return SlicePromptResult{std::nullopt, reason}; }

}  // namespace

std::optional<backends::BoxPrompt> MaskBox(const backends::BinaryMask& mask, int margin) {
  const std::optional<PixelBox> tight = TightBox(mask);
  if (!tight) return std::nullopt;
  return backends::BoxPrompt{static_cast<float>(std::max(0, tight->x0 - margin)),
                             static_cast<float>(std::max(0, tight->y0 - margin)),
                             static_cast<float>(std::min(mask.width, tight->x1 + margin)),
                             static_cast<float>(std::min(mask.height, tight->y1 + margin))};
}

StatusOr<SlicePromptResult> PromptsForSlice(const backends::FloatSlice& slice,
                                            const backends::BinaryMask& mask,
                                            const PromptOptions& options) {
  const size_t count = static_cast<size_t>(std::max(slice.width, 0)) *
                       static_cast<size_t>(std::max(slice.height, 0));
  if (slice.values.size() != count || mask.width != slice.width || mask.height != slice.height ||
      mask.pixels.size() != count) {
    return InvalidArgumentError("slice and mask must have the same size");
  }
  if (options.box_margin < 0 || options.num_positive_points < 0 ||
      options.num_positive_points > kMaxPositivePoints || !(options.point_threshold >= 0) ||
      options.point_threshold > 1 || !(options.normalize_eps >= 0)) {
    return InvalidArgumentError("prompt options out of range");
  }
  if (count == 0) return Skip("empty slice");
  if (std::none_of(mask.pixels.begin(), mask.pixels.end(), [](uint8_t v) { return v != 0; }))
    return Skip("mask is empty on this slice");

  const auto [lo_it, hi_it] = std::minmax_element(slice.values.begin(), slice.values.end());
  const double lo = *lo_it;
  const double range = static_cast<double>(*hi_it) - lo + options.normalize_eps;
  if (!(range > 0)) return Skip("slice is constant, so min-max normalization is undefined");
  std::vector<double> m(count, 0.0);
  double sum = 0.0;
  for (size_t i = 0; i < count; ++i) {
    if (mask.pixels[i]) m[i] = (static_cast<double>(slice.values[i]) - lo) / range;
    sum += m[i];
  }
  if (sum == 0.0) return Skip("mask covers only pixels at the slice minimum (sum of m is 0)");

  const auto [m_lo, m_hi] = std::minmax_element(m.begin(), m.end());
  const double threshold = HistogramEdge(*m_lo, *m_hi, options.point_threshold);
  std::vector<size_t> candidates;
  for (size_t i = 0; i < count; ++i) {
    if (m[i] >= threshold) candidates.push_back(i);
  }
  const size_t n = candidates.size();  // >= 1: max(m) passes any edge up to the last
  backends::Prompts prompts;
  const size_t positions[kMaxPositivePoints] = {0, n - 1, n / 2, n / 3, 2 * n / 3};
  for (int k = 0; k < options.num_positive_points; ++k) {
    const size_t pixel = candidates[positions[k]];
    prompts.points.push_back(backends::PointPrompt{static_cast<float>(pixel % slice.width),
                                                   static_cast<float>(pixel / slice.width),
                                                   /*positive=*/true});
  }
  prompts.box = MaskBox(mask, options.box_margin);
  if (options.corner_negatives) {
    const backends::BoxPrompt& b = *prompts.box;
    for (const auto& [x, y] : {std::pair{b.x0, b.y0}, {b.x0, b.y1}, {b.x1, b.y0}, {b.x1, b.y1}})
      prompts.points.push_back(backends::PointPrompt{x, y, /*positive=*/false});
  }
  return SlicePromptResult{std::move(prompts), ""};
}

}  // namespace clisc::method
