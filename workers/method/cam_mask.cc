#include "workers/method/cam_mask.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "common/morphology.h"

namespace clisc::method {
namespace {

// The value BinarizeCam compares against the threshold.
// A NaN CAM value passes no threshold, in both paths.
double CamLevel(float cam, bool reference_uint8) {
  if (std::isnan(cam)) return -std::numeric_limits<double>::infinity();
  if (!reference_uint8) return cam;
  const float scaled = std::clamp(cam * 255.0f, 0.0f, 255.0f);
  return static_cast<double>(static_cast<uint8_t>(scaled));
}

double ThresholdLevel(double threshold, bool reference_uint8) {
  return reference_uint8 ? threshold * 255 : threshold;
}

}  // namespace

LabelVolume BinarizeCam(const FloatVolume& cam, double threshold, bool reference_uint8) {
  LabelVolume out = cam.LikeThis<uint8_t>();
  const double level = ThresholdLevel(threshold, reference_uint8);
  for (size_t i = 0; i < cam.voxels().size(); ++i)
    out[i] = CamLevel(cam[i], reference_uint8) >= level;
  return out;
}

LabelVolume PostprocessCamMask(const LabelVolume& binary_cam, int opening_size,
                               double min_component_fraction) {
  LabelVolume mask = binary_cam;
  const int radius = opening_size > 1 ? (opening_size - 1) / 2 : 0;
  if (radius > 0) mask = OpenCube(mask, radius);
  if (min_component_fraction > 0) mask = RemoveSmallComponents(mask, min_component_fraction);
  // Both morphology calls give 0/1; keep the no-op path 0/1 as well.
  for (uint8_t& v : mask.voxels()) v = v != 0;
  return mask;
}

StatusOr<ThresholdSearchResult> SearchCamThreshold(
    const std::vector<std::pair<const FloatVolume*, const LabelVolume*>>& cam_and_gt,
    const ThresholdSearchOptions& options) {
  if (cam_and_gt.empty()) return InvalidArgumentError("no cases for the CAM threshold search");
  if (!(options.step > 0) || !(options.min <= options.max))
    return InvalidArgumentError("threshold range needs min <= max and step > 0");
  for (size_t c = 0; c < cam_and_gt.size(); ++c) {
    const auto& [cam, gt] = cam_and_gt[c];
    if (cam == nullptr || gt == nullptr)
      return InvalidArgumentError("case " + std::to_string(c) + " has no CAM or no GT");
    if (!(cam->size() == gt->size()))
      return InvalidArgumentError("case " + std::to_string(c) + ": CAM and GT sizes differ");
  }

  std::vector<double> thresholds;
  const double delta = (options.min + options.step) - options.min;  // numpy.arange's step
  for (int i = 0;; ++i) {
    const double t = options.min + i * delta;
    if (t > options.max + 1e-9) break;
    thresholds.push_back(t);
  }
  std::vector<double> levels;
  for (double t : thresholds) levels.push_back(ThresholdLevel(t, options.reference_uint8));

  // Binarization is monotone in the threshold, so each voxel passes a prefix of the ascending
  // candidates: count, per candidate, the voxels (and GT voxels) that pass it.
  const size_t k = thresholds.size();
  std::vector<double> dice_sum(k, 0.0);
  for (const auto& [cam, gt] : cam_and_gt) {
    std::vector<int64_t> passing(k + 1, 0), passing_in_gt(k + 1, 0);
    int64_t gt_count = 0;
    for (size_t i = 0; i < cam->voxels().size(); ++i) {
      const double level = CamLevel((*cam)[i], options.reference_uint8);
      const size_t passed = std::upper_bound(levels.begin(), levels.end(), level) - levels.begin();
      const bool in_gt = (*gt)[i] != 0;
      ++passing[passed];
      if (in_gt) ++passing_in_gt[passed], ++gt_count;
    }
    // Voxels that pass candidate j are those with passed > j: suffix sums.
    int64_t pred = 0, inter = 0;
    for (size_t j = k; j-- > 0;) {
      pred += passing[j + 1];
      inter += passing_in_gt[j + 1];
      const int64_t denominator = pred + gt_count;
      dice_sum[j] += denominator == 0 ? options.dice_if_both_empty
                                      : 2.0 * static_cast<double>(inter) / denominator;
    }
  }

  ThresholdSearchResult result;
  double best_mean = -1.0;
  for (size_t j = 0; j < k; ++j) {
    const double mean = dice_sum[j] / static_cast<double>(cam_and_gt.size());
    result.mean_dice_by_threshold.emplace_back(thresholds[j], mean);
    if (mean > best_mean) best_mean = mean, result.best = thresholds[j];
  }
  return result;
}

StatusOr<ThresholdSearchResult> SearchCamThreshold(
    const std::vector<std::pair<const FloatVolume*, const LabelVolume*>>& cam_and_gt, double min,
    double max, double step) {
  ThresholdSearchOptions options;
  options.min = min, options.max = max, options.step = step;
  return SearchCamThreshold(cam_and_gt, options);
}

}  // namespace clisc::method
