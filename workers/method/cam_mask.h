// Stages 4, 5 and 7 on CAM volumes (REFERENCE.md section 4; METHOD.md "CAM"): binarizing a CAM,
// the reference's post-processing of the binary CAM, and the reference mode's threshold search on
// the valid split's ground truth.
#pragma once

#include <utility>
#include <vector>

#include "common/status.h"
#include "common/volume.h"

namespace clisc::method {

// The binary CAM: 1 where cam >= threshold, else 0, compared in double. With reference_uint8 the
// CAM is first quantized as the reference stores it, uint8(cam * 255) (a float32 product,
// truncated), and the comparison is the reference's `cam >= thr * 255` in double, so a
// threshold like 0.6000000000000001 (numpy.arange's value) excludes level 153. The reference
// also resizes its uint8 CAM from 224 to the slice bilinearly; our CAM is already on the slice
// grid, so that step is the CAM stage's business, not this function's.
LabelVolume BinarizeCam(const FloatVolume& cam, double threshold, bool reference_uint8 = false);

// The reference's post-processing of a binary CAM (step1-2 L189-217): a 3D binary opening with a
// cube of side `opening_size` (3 = the reference's 3x3x3, i.e. radius 1; 1 or less = none; an
// even size rounds down to the odd one below), then every 26-connected component with fewer
// voxels than min_component_fraction * (largest component) is dropped (1/3 = the reference's
// largestConnectComponent_3d(ratio=3); 0 = none). Voxels outside the volume are background.
LabelVolume PostprocessCamMask(const LabelVolume& binary_cam, int opening_size = 3,
                               double min_component_fraction = 1.0 / 3.0);

struct ThresholdSearchResult {
  double best = 0;
  // (threshold, mean Dice over the cases) for every candidate, in candidate order.
  std::vector<std::pair<double, double>> mean_dice_by_threshold;
};

struct ThresholdSearchOptions {
  double min = 0.05;
  double max = 0.80;
  double step = 0.05;
  bool reference_uint8 = false;     // binarize as BinarizeCam(..., reference_uint8)
  double dice_if_both_empty = 0.0;  // medpy <= 0.4 dc: 0 when both masks are empty
};

// The reference mode's CAM threshold (step1-2 L147-185): for each candidate threshold, binarize
// every case's CAM (no post-processing), take the Dice against its GT, and average over the
// cases; the best mean wins, strictly greater, so the first of tied bests. Candidates are
// numpy.arange's values: min + i * ((min + step) - min) for i = 0, 1, ... while <= max + 1e-9,
// so the defaults give arange(0.05, 0.85, 0.05) bit for bit (0.15000000000000002, ...).
// INVALID_ARGUMENT when there are no cases, a pointer is null, a CAM and its GT differ in size,
// step <= 0 or min > max.
StatusOr<ThresholdSearchResult> SearchCamThreshold(
    const std::vector<std::pair<const FloatVolume*, const LabelVolume*>>& cam_and_gt,
    const ThresholdSearchOptions& options = {});

// The same with the brief's positional form.
StatusOr<ThresholdSearchResult> SearchCamThreshold(
    const std::vector<std::pair<const FloatVolume*, const LabelVolume*>>& cam_and_gt, double min,
    double max, double step);

}  // namespace clisc::method
