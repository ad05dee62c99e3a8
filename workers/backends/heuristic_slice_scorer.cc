#include "workers/backends/heuristic_slice_scorer.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <utility>

namespace clisc::backends {
namespace {

// The lower median (an element of `values`, which nth_element reorders); values not empty.
float LowerMedian(std::vector<float>& values) {
  const size_t mid = (values.size() - 1) / 2;
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(mid), values.end());
  return values[mid];
}

Status CheckSlice(const FloatSlice& slice, size_t index) {
  const std::string which = "slice " + std::to_string(index);
  if (slice.width <= 0 || slice.height <= 0) {
    return InvalidArgumentError(which + " is empty (" + std::to_string(slice.width) + "x" +
                                std::to_string(slice.height) + ")");
  }
  const size_t expected = static_cast<size_t>(slice.width) * static_cast<size_t>(slice.height);
  if (slice.values.size() != expected) {
    return InvalidArgumentError(which + " has " + std::to_string(slice.values.size()) +
                                " values for " + std::to_string(slice.width) + "x" +
                                std::to_string(slice.height) + " pixels");
  }
  for (float v : slice.values) {
    if (!std::isfinite(v)) return InvalidArgumentError(which + " holds a non-finite value");
  }
  return OkStatus();
}

}  // namespace

HeuristicSliceScorer::HeuristicSliceScorer(HeuristicSliceScorerOptions options)
    : options_(std::move(options)) {}

std::string HeuristicSliceScorer::Describe() const {
  return "heuristic intensity statistics (no weights)";
}

double HeuristicSliceScorer::TumorProbability(const FloatSlice& slice) const {
  const std::vector<float>& values = slice.values;
  const float background = *std::min_element(values.begin(), values.end());
  std::vector<float> brain;
  brain.reserve(values.size());
  for (float v : values) {
    if (v > background) brain.push_back(v);
  }
  if (brain.empty() ||
      static_cast<double>(brain.size()) < options_.min_brain_fraction * values.size()) {
    return options_.small_brain_tumor_probability;
  }
  std::vector<float> scratch = brain;
  const float median = LowerMedian(scratch);
  for (float& v : scratch) v = std::fabs(v - median);
  const double sigma = 1.4826 * LowerMedian(scratch);
  const double threshold = std::max(median + options_.robust_z * sigma, options_.min_bright_z);
  size_t bright = 0;
  for (float v : brain) bright += v > threshold;
  const double fraction = static_cast<double>(bright) / static_cast<double>(brain.size());
  const double logit = options_.gain * (std::log10(fraction + options_.fraction_floor) -
                                        std::log10(options_.midpoint_fraction));
  return 1.0 / (1.0 + std::exp(-logit));
}

StatusOr<std::vector<std::vector<float>>> HeuristicSliceScorer::Score(
    const std::vector<FloatSlice>& slices) {
  for (size_t i = 0; i < slices.size(); ++i) RETURN_IF_ERROR(CheckSlice(slices[i], i));
  std::vector<std::vector<float>> rows;
  rows.reserve(slices.size());
  for (const FloatSlice& slice : slices) {
    const float tumor = static_cast<float>(TumorProbability(slice));
    rows.push_back({1.0f - tumor, tumor});
  }
  return rows;
}

}  // namespace clisc::backends
