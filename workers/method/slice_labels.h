// Stage 1's per-slice decisions from the CLIP probabilities (REFERENCE.md section 2, "Decision for
// each slice" and "Neighbour smoothing"; METHOD.md "CLIP decision"), and the ground-truth labels
// the reference gives its valid split instead.
#pragma once

#include <vector>

#include "common/volume.h"

namespace clisc::method {

// Label 0 is the "normal" prompt, 1 the "tumor" prompt (REFERENCE.md 2, "Text prompts").
inline constexpr int kNormalLabel = 0;
inline constexpr int kTumorLabel = 1;

struct SliceDecision {
  int z = 0;                         // the slice index
  std::vector<float> probabilities;  // softmax over the prompts; empty for GT labels
  int raw_label = -1;                // argmax of `probabilities`
  bool kept = false;                 // max probability >= the keep threshold
  int label = -1;                    // after smoothing; -1 when the slice is dropped
};

// One decision per slice, z = index into `probabilities`. A slice is kept when its largest
// probability is >= `threshold` (0.6 in the reference), compared in double; raw_label is the
// argmax, the first index on ties; label = raw_label for kept slices, -1 for dropped ones. A
// slice with no probabilities is dropped with raw_label -1.
std::vector<SliceDecision> DecideSlices(const std::vector<std::vector<float>>& probabilities,
                                        double threshold = 0.6);

struct SmoothingOptions {
  int window = 5;   // list positions on each side
  int max_gap = 6;  // largest |z difference| for a neighbour
  int quorum = 8;   // more than this many neighbours are needed for a vote
};

// The reference's neighbour smoothing, applied to the kept slices of one volume. Take the kept
// slices in z order (their order in `decisions`, which must be ascending in z). For the kept
// slice at list position i, its neighbours are the kept slices at list positions
// i - window .. i + window other than i whose z differs from its own by at most max_gap. With
// more than `quorum` neighbours, its label becomes the majority of the neighbours' ORIGINAL
// labels (the labels before this call, never ones already smoothed); when two or more labels
// share the top count the result is 0 (normal), as the reference's `sum > len / 2` rule gives
// for two classes. Otherwise the label is left as it was. Dropped slices are untouched.
void SmoothSliceLabels(std::vector<SliceDecision>& decisions, const SmoothingOptions& options = {});

// The reference's labels for its valid split (REFERENCE.md 2, `get_real_label`): every slice is
// kept, and its label (raw and smoothed) is 1 when the GT slice has any nonzero voxel, else 0.
std::vector<SliceDecision> GroundTruthSliceLabels(const LabelVolume& ground_truth);

}  // namespace clisc::method
