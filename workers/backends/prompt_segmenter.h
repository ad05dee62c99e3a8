// Stage 8's (and S3F's) promptable segmenter: set an image once, then segment it for any number
// of prompt sets. Implemented by SAM (workers/models, `sam.backend: model`), which embeds the
// image once and decodes the prompt sets in batches, and by a region-growing heuristic
// (`sam.backend: heuristic`). Coordinates are in pixels of the image as given: x is the column,
// y the row, as SAM's predictor takes them.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "workers/backends/slice_image.h"

namespace clisc::backends {

struct PointPrompt {
  float x = 0;
  float y = 0;
  bool positive = true;  // SAM label 1 (foreground) or 0 (background)
};

// Inclusive corners in pixels, x0 <= x1 and y0 <= y1, as SAM's predictor takes a box (XYXY).
struct BoxPrompt {
  float x0 = 0, y0 = 0, x1 = 0, y1 = 0;
};

struct Prompts {
  std::vector<PointPrompt> points;
  std::optional<BoxPrompt> box;
};

struct Segmentation {
  BinaryMask mask;      // on the image's grid
  float score = 0;      // SAM's predicted IoU, or the heuristic's confidence in [0, 1]
};

class PromptSegmenter {
 public:
  virtual ~PromptSegmenter() = default;

  // As SliceScorer::Describe: "sam vit_b (models/sam_vit_b_01ec64.pth)" or "heuristic ...".
  virtual std::string Describe() const = 0;

  // Makes `image` the current image. Setting an image equal to the current one is free (SAM
  // keeps its embedding), so callers need not track which slice is loaded.
  virtual Status SetImage(const GrayImage& image) = 0;

  // One segmentation per prompt set, against the current image. With `multimask`, SAM's three
  // masks are scored and the best is kept; otherwise the single-mask output. A prompt set with
  // no points and no box is INVALID_ARGUMENT; FAILED_PRECONDITION before any SetImage.
  virtual StatusOr<std::vector<Segmentation>> Segment(const std::vector<Prompts>& prompts,
                                                      bool multimask) = 0;
};

}  // namespace clisc::backends
