// Stage 8's (and S3F's) SAM prompts for one axial slice, exactly as REFERENCE.md section 6 gives
// them (train/step2_sam_inference.py L130-192; step3-3_S3F.py for the S3F variant), and METHOD.md
// "SAM prompts". Coordinates are SAM's: x is the column, y the row, in pixels of the slice.
#pragma once

#include <optional>
#include <string>

#include "common/status.h"
#include "workers/backends/prompt_segmenter.h"
#include "workers/backends/slice_image.h"

namespace clisc::method {

struct PromptOptions {
  int box_margin = 10;           // d: 10 for stage 8, 0 for S3F
  int num_positive_points = 5;   // the first n of the five reference positions (0..5)
  double point_threshold = 0.6;  // histogram edge fraction: bins[-5] of a 10-bin histogram
  bool corner_negatives = true;  // 4 negative points at the box corners
  double normalize_eps = 0.0;    // added to max - min: 0 in stage 8, 1e-6 in S3F
};

struct SlicePromptResult {
  std::optional<backends::Prompts> prompts;  // nullopt: the slice gets no prompts (empty mask)
  std::string skipped_reason;                // why, when prompts is nullopt
};

// The box of `mask` as SAM takes it: the tight bounding box (rmin rmax cmin cmax) grown by
// `margin` and clipped as the reference clips it, x0 = max(0, cmin - d), y0 = max(0, rmin - d),
// x1 = min(W, cmax + d), y1 = min(H, rmax + d). The upper clip is W (H), one past the last
// column (row), as in the reference. nullopt for an empty mask.
std::optional<backends::BoxPrompt> MaskBox(const backends::BinaryMask& mask, int margin);

// The prompts of one slice, where `mask` (the binary CAM in stage 8, the U-Net prediction in S3F)
// has foreground:
//  1. n = (slice - min) / (max - min + normalize_eps) over the whole slice, in double;
//     m = mask * n. If sum(m) == 0 there are no prompts (reason given): an empty mask, a
//     constant slice (with eps 0, where the reference would divide by zero), or a mask only on
//     pixels at the slice minimum. The reference crashes there (step2) or gives an empty SAM
//     mask (S3F); the caller records the reason and uses an empty mask.
//  2. thr = the edge of numpy.histogram(m, bins=10) at fraction point_threshold (edge 6 of 11,
//     bins[-5], for 0.6), computed as numpy's linspace does: min(m) + 6 * ((max(m) - min(m)) /
//     10). A fraction that is not a whole number of tenths uses min + f * (max - min).
//  3. Candidates are the pixels with m >= thr in row-major order (numpy.where's order); with N
//     of them the positives are those at positions 0, N-1, N/2, N/3, 2N/3 (integer division,
//     Python's int(N/2) etc.), each (x = col, y = row), label 1. Duplicates are kept (N < 5).
//  4. The box is MaskBox(mask, box_margin), given as Prompts::box (the predictor's box input).
//  5. With corner_negatives, label-0 points at (x0,y0), (x0,y1), (x1,y0), (x1,y1), after the
//     positives.
// INVALID_ARGUMENT when the slice and the mask differ in size or the options are out of range.
StatusOr<SlicePromptResult> PromptsForSlice(const backends::FloatSlice& slice,
                                            const backends::BinaryMask& mask,
                                            const PromptOptions& options = {});

}  // namespace clisc::method
