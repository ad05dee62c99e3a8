// Per-case overlay images for the report: the axial slice with the most GT tumour voxels, the
// image (FLAIR, the first modality) in gray with a robust min-max window, the GT contour in green
// and the prediction's in magenta (white where they coincide), and a legend strip below.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/volume.h"
#include "report/report_data.h"

namespace clisc::report {

struct OverlayImage {
  int width = 0, height = 0;
  int slice_z = 0;
  int64_t gt_voxels_in_slice = 0;
  std::string png;  // the file's bytes
};

// INVALID_ARGUMENT when the three volumes are not on one grid. `brain` may be null; with it, the
// gray window comes from the brain's voxels and the background is drawn black.
StatusOr<OverlayImage> RenderOverlay(const FloatVolume& image, const LabelVolume& gt,
                                     const LabelVolume& prediction,
                                     const LabelVolume* brain = nullptr);

// One chosen case of the final variant and its overlay (or why there is none).
struct CaseOverlay {
  std::string rank;  // "best", "median", "worst" (joined when one case holds several ranks)
  std::string case_id, variant;
  double dice = 0;
  int slice_z = 0;
  std::string relative_path;  // under the report folder, e.g. "overlays/best_case_001.png"
  std::string png;            // empty when error is set
  std::string error;
};

// The best, median and worst test case of the final variant by Dice, rendered and written to
// <out_dir>/overlays/. Missing inputs give entries with `error` set; never fails as a whole.
std::vector<CaseOverlay> WriteCaseOverlays(const RunReportData& data,
                                           const std::filesystem::path& out_dir);

}  // namespace clisc::report
