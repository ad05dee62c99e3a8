// Stage 0 preprocessing (METHOD.md "Preprocessing"), and its inverse.
//
// For one case, with the first requested modality as the reference (FLAIR by default):
//  1. brain box = bounding box of the nonzero voxels of the raw reference modality, with
//     INCLUSIVE bounds (the reference code's [min:max) slicing drops the last brain plane);
//  2. every modality is cropped to that box and normalized on its own: clipped to
//     [min, v] where v is the 99.9th percentile of the voxels in the box (background zeros in the
//     box included, as the reference does), then z-scored with the mean and population standard
//     deviation of the clipped box;
//  3. brain mask = nonzero voxels of the raw reference modality inside the box (uint8 0/1), taken
//     before normalization moves the background away from 0;
//  4. the seg (when present) is cropped too: raw labels in the BraTS2020 coding (BraTS2023's 3
//     becomes 4) and, separately, the whole tumor (label > 0 -> 1).
// Nothing is resampled, and every cropped volume carries the geometry of its physical sub-grid,
// so it overlays the original in a viewer. The CropRecord keeps what UncropToOriginal needs to
// put any output (prediction, CAM, pseudo-label) back on the original grid exactly.
//
// The percentile is defined exactly: the smallest voxel value v with #{voxels <= v} >= q * N,
// q = percentile / 100 (the empirical-CDF definition). For integer images this equals the
// reference's skimage.exposure.cumulative_distribution rule (one bin per integer, first bin
// whose CDF >= 0.999). For float images skimage uses 256 bins and returns a bin centre, which
// can differ from the exact value by up to half a bin, (max - min) / 512.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/bounding_box.h"
#include "common/brats_layout.h"
#include "common/status.h"
#include "common/volume.h"

namespace clisc {

// Where a cropped volume came from: enough to map it back onto the original grid.
struct CropRecord {
  BoundingBox box;  // inclusive, in voxel indices of the original grid
  Dims original_size;
  Geometry original_geometry;
  bool operator==(const CropRecord&) const = default;
};
nlohmann::json CropRecordToJson(const CropRecord& record);
// INVALID_ARGUMENT when a field is missing or of the wrong type, or the box does not fit.
StatusOr<CropRecord> CropRecordFromJson(const nlohmann::json& json);

struct PreprocessOptions {
  // Modalities to prepare, in channel order; the first defines the brain box and mask.
  std::vector<Modality> modalities{Modality::kFlair};
  double clip_percentile = 99.9;
  bool read_seg = true;  // crop the seg too when the case has one
  // `preprocess.crop: reference_exclusive`: drop the last brain plane on each axis, as the
  // reference's [min:max) slicing does.
  bool reference_exclusive_crop = false;
  // `preprocess.normalize: none` keeps the clipped intensities (no z-score).
  bool standardize = true;
};

// What normalization did to one modality.
struct IntensityStats {
  double clip_low = 0;    // min of the box
  double clip_high = 0;   // the percentile value
  double mean = 0;        // of the clipped box
  double std = 0;         // population std of the clipped box
  bool constant = false;  // std was ~0: the box was only centred (not divided)
};

struct PreprocessedCase {
  std::string id;
  std::vector<Modality> modalities;
  std::vector<FloatVolume> images;         // cropped + normalized, one per modality
  std::vector<IntensityStats> stats;       // one per modality
  LabelVolume brain_mask;                  // cropped, 0/1
  std::optional<LabelVolume> labels;       // cropped raw labels, BraTS2020 coding
  std::optional<LabelVolume> whole_tumor;  // cropped, labels > 0
  CropRecord crop;
};

// The exact percentile value defined above. `values` must not be empty or hold NaN.
float PercentileValue(std::vector<float> values, double percentile);

// Clips to [min, percentile value] and, unless `standardize` is false, z-scores, in place, over
// the whole volume.
IntensityStats ClipAndStandardize(FloatVolume& volume, double percentile, bool standardize = true);

// The in-memory core of PreprocessCase: `raw` holds one volume per modality (same grid), `seg`
// the raw labels already in the BraTS2020 coding. INVALID_ARGUMENT for mismatched grids or
// non-finite voxels, FAILED_PRECONDITION when the reference modality has no nonzero voxel.
StatusOr<PreprocessedCase> PreprocessVolumes(std::string id, std::vector<Modality> modalities,
                                             std::vector<FloatVolume> raw,
                                             std::optional<LabelVolume> seg,
                                             const PreprocessOptions& options);

// Reads the case's files and preprocesses them. NOT_FOUND when a requested modality has no file.
StatusOr<PreprocessedCase> PreprocessCase(const CaseFiles& files, const PreprocessOptions& options);

// Puts a cropped volume back on the original grid: `background` outside the box, the cropped
// voxels inside, the original geometry. INVALID_ARGUMENT when the sizes do not match the record.
template <typename T>
StatusOr<Volume<T>> UncropToOriginal(const Volume<T>& cropped, const CropRecord& record,
                                     T background) {
  Volume<T> out(record.original_size, background, record.original_geometry);
  RETURN_IF_ERROR(PasteIntoBox(cropped, record.box, out));
  return out;
}

// The files WritePreprocessed produces. Float images go uncompressed into their own folder:
// gzip writes of float volumes are slow, and ITK mixes up x.nii and x.nii.gz side by side, so
// no .nii ever shares a folder with a .nii.gz (DESIGN.md).
struct PreprocessedPaths {
  std::filesystem::path images_dir;   // <out>/images: <id>_<modality>.nii (float32)
  std::filesystem::path labels_dir;   // <out>/labels: uint8 .nii.gz
  std::filesystem::path brain_mask;   // <out>/labels/<id>_brain_mask.nii.gz
  std::filesystem::path labels;       // <out>/labels/<id>_seg.nii.gz
  std::filesystem::path whole_tumor;  // <out>/labels/<id>_wt.nii.gz
  std::filesystem::path record;       // <out>/crop/<id>.json (crop record + stats)
  std::filesystem::path image(const std::string& id, Modality modality) const;
};
PreprocessedPaths PreprocessedLayout(const std::filesystem::path& out_dir, const std::string& id);

// Writes every output of the case (the folders are created as needed; each file atomically).
Status WritePreprocessed(const PreprocessedCase& result, const std::filesystem::path& out_dir);

// Reads a crop record written by WritePreprocessed.
StatusOr<CropRecord> ReadCropRecord(const std::filesystem::path& json_file);

}  // namespace clisc
