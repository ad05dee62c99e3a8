// The no-weights stand-in for CLIP's slice labels (`clip.backend: heuristic`, METHOD.md
// "Foundation models"): a slice's tumor probability from how much of its brain is abnormally
// bright. Gliomas (whole tumor: core plus edema) are hyperintense on FLAIR, so a slice whose brain
// holds a patch of pixels far above the slice's own brain intensity is called tumor.
//
// For one z-scored FLAIR slice (common/preprocess.h):
//  1. brain = pixels above the slice minimum: after z-scoring, the zero background of the raw
//     image is the volume's (and so any slice's) minimum value;
//  2. a slice whose brain covers under `min_brain_fraction` of its pixels is too small to judge:
//     "normal" with the low confidence `small_brain_tumor_probability` (so the 0.6 keep threshold
//     drops it);
//  3. bright = brain pixels above max(median + `robust_z` * sigma, `min_bright_z`), where median
//  and
//     sigma = 1.4826 * MAD are the slice's brain statistics (robust to a tumor covering less than
//     half of the brain), and the floor keeps a flat slice's noise from counting as bright;
//  4. P(tumor) = logistic(`gain` * (log10(bright fraction of brain + `fraction_floor`) -
//     log10(`midpoint_fraction`))). No bright pixel gives P ~ 0.07 (a confident "normal"); a few
//     bright pixels fall in the uncertain band around the midpoint and are dropped by the keep
//     threshold rather than mislabelled.
// Deterministic, and each slice is scored on its own, whatever else is in the batch.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "workers/backends/slice_scorer.h"

namespace clisc::backends {

struct HeuristicSliceScorerOptions {
  // Brain pixels must cover at least this fraction of the slice, or it is not judged.
  double min_brain_fraction = 0.05;
  // P(tumor) given to a slice with too little brain: 0.45 reads as "normal" at 0.55, under the
  // 0.6 keep threshold.
  double small_brain_tumor_probability = 0.45;
  // A brain pixel is bright above median + robust_z robust standard deviations of the slice's
  // brain...
  double robust_z = 3.0;
  // ...and above this z-score of the volume, whatever the slice's spread.
  double min_bright_z = 1.5;
  // The bright fraction of the brain at which P(tumor) = 0.5 (0.2 %).
  double midpoint_fraction = 0.002;
  // Logistic slope per decade of the bright fraction.
  double gain = 2.0;
  // Added to the bright fraction before the log, so zero maps to a finite "normal" confidence.
  double fraction_floor = 1e-4;
};

class HeuristicSliceScorer : public SliceScorer {
 public:
  explicit HeuristicSliceScorer(HeuristicSliceScorerOptions options = {});

  // "heuristic intensity statistics (no weights)".
  std::string Describe() const override;
  // Two: the normal prompt, then the tumor prompt, as the configured prompt pair.
  int num_prompts() const override { return 2; }
  // Rows are {P(normal), P(tumor)}. INVALID_ARGUMENT (naming the slice) for an empty slice, a
  // value count that is not width * height, or a non-finite value.
  StatusOr<std::vector<std::vector<float>>> Score(const std::vector<FloatSlice>& slices) override;

  // P(tumor) for one slice that the checks above accept.
  double TumorProbability(const FloatSlice& slice) const;

 private:
  HeuristicSliceScorerOptions options_;
};

}  // namespace clisc::backends
