// The no-weights stand-in for SAM (`sam.backend: heuristic`, METHOD.md "Foundation models"):
// region growing inside the box from the positive points, on the histogram-equalized slice.
//
// Segment() for one prompt set:
//  1. region = the box (rounded to pixels, clipped to the image), or the whole image without one;
//     pixels at the image's minimum value (the background of a brain slice) never belong to the
//     target and are left out of the statistics;
//  2. the image smoothed by a (2r+1)^2 mean filter (r = `smoothing_radius`) damps the pixel noise
//     that equalization amplifies, so the region does not leak through single bright pixels;
//  3. target level = median of the smoothed image at the positive points inside the region (without
//     any: its `no_seed_percentile` percentile, i.e. the brightest structure). The target is bright
//     when that level is at least the region's median, dark otherwise (everything below mirrors);
//  4. threshold by a seeded two-class iteration: t = low + `seed_fraction` * (level - low), with
//     low = mean of the region's pixels on the background side of t, repeated until t settles.
//     Unlike Otsu over the whole box it does not depend on how much of the box the target fills;
//  5. candidates = region pixels on the target side of t. Each positive point on a non-candidate
//     pixel moves to the most target-like candidate within `seed_snap_radius` pixels, or is
//     dropped;
//  6. the mask grows over candidates (4-connected, or 8 with `eight_connected`) from the positive
//     points and the negative points at once, each pixel going to the nearest one (ties to the
//     positive): a negative point in a separate component removes that component, one inside the
//     target's component cuts off the part nearer to it. Without positive points the largest
//     candidate component that holds no negative point is the mask;
//  7. holes inside the box are filled, except those holding a negative point.
// score = the between-class share of the region's smoothed-intensity variance, w0 w1 (m1 - m0)^2 /
// var, for mask vs rest of the region: 1 for a mask that splits the region into two flat
// intensity levels, near 0 for one that separates nothing; 0 for an empty mask.
//
// `multimask` is ignored: there is one candidate mask per prompt set. Positive points outside the
// box are ignored (SAM would still weigh them). Not thread-safe: one image at a time.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "workers/backends/prompt_segmenter.h"

namespace clisc::backends {

struct HeuristicPromptSegmenterOptions {
  // Mean filter radius in pixels before thresholding; 0 thresholds the raw pixels.
  int smoothing_radius = 1;
  // Where the threshold sits between the background level (0) and the seeds' level (1).
  double seed_fraction = 0.8;
  // Iterations of the seeded two-class threshold (it settles in a few).
  int threshold_iterations = 10;
  // Without positive points, the target level is this percentile of the region.
  double no_seed_percentile = 95.0;
  // A positive point on a pixel below the threshold looks this far for a candidate pixel.
  int seed_snap_radius = 2;
  // 8-connected growth; 4-connected (scipy.ndimage.label's default) otherwise.
  bool eight_connected = false;
};

class HeuristicPromptSegmenter : public PromptSegmenter {
 public:
  explicit HeuristicPromptSegmenter(HeuristicPromptSegmenterOptions options = {});

  // "heuristic region growing in the box from the positive points (no weights)".
  std::string Describe() const override;
  // INVALID_ARGUMENT for an empty image or a pixel count that is not width * height.
  Status SetImage(const GrayImage& image) override;
  // INVALID_ARGUMENT for a prompt set with neither points nor box, a non-finite coordinate, or a
  // box with x0 > x1 or y0 > y1; FAILED_PRECONDITION before SetImage. All sets are checked before
  // any is segmented. A box entirely outside the image gives an empty mask with score 0.
  StatusOr<std::vector<Segmentation>> Segment(const std::vector<Prompts>& prompts,
                                              bool multimask) override;

 private:
  Segmentation SegmentOne(const Prompts& prompts) const;

  HeuristicPromptSegmenterOptions options_;
  bool has_image_ = false;
  GrayImage image_;
  std::vector<float> smoothed_;
  uint8_t background_ = 0;  // the image's minimum pixel value
};

}  // namespace clisc::backends
