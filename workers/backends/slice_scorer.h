// Stage 1's slice scorer: for each axial slice, a probability per configured prompt (the normal
// prompt first, then the tumor prompt). Implemented by CLIP zero-shot classification
// (workers/models, `clip.backend: model`) and by an intensity-statistics heuristic
// (`clip.backend: heuristic`); the role sees only this interface.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "workers/backends/slice_image.h"

namespace clisc::backends {

class SliceScorer {
 public:
  virtual ~SliceScorer() = default;

  // What produced the scores, recorded in every artifact and report, e.g.
  // "clip ViT-B/16 (models/ViT-B-16.pt)" or "heuristic intensity statistics (no weights)".
  virtual std::string Describe() const = 0;

  // Number of prompts, i.e. the length of each probability row.
  virtual int num_prompts() const = 0;

  // Row i holds slice i's probabilities over the prompts; each row sums to 1. A slice with no
  // pixels or mismatched sizes is INVALID_ARGUMENT; a batch is scored all or nothing.
  virtual StatusOr<std::vector<std::vector<float>>> Score(const std::vector<FloatSlice>& slices) = 0;
};

}  // namespace clisc::backends
