// The semi-synthetic BraTS dataset behind `clisc synth`, the demo and the end-to-end tests:
// cases on the BraTS2020 grid built from a real brain template (synth_anatomy), a random glioma
// (synth_tumor) and four MR contrasts (synth_contrast), written in the BraTS2020 layout
//   DIR/BraTS20_Training_001/BraTS20_Training_001_{flair,t1,t1ce,t2,seg}.nii.gz
// with split CSVs (DIR/splits/{train,valid,test}.csv, header image_pth,mask_pth, paths relative
// to DIR) and DIR/synth_manifest.json.
//
// Determinism: case k depends only on (seed, k), never on the number of cases or threads, and
// the same seed and case count give byte-identical files.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/brats_layout.h"
#include "common/splits.h"
#include "common/status.h"
#include "common/synth_anatomy.h"
#include "common/volume.h"

namespace clisc {

enum class SynthSize { kFull, kHalf };
StatusOr<SynthSize> ParseSynthSize(std::string_view text);  // "full" or "half"
std::string_view SynthSizeName(SynthSize size);

struct SynthGrid {
  Dims dims;
  Geometry geometry;
};

// Full: BraTS2020's 240x240x155 grid at 1 mm, with the geometry ITK reads from BraTS files
// (LPS direction identity, origin (0, -239, 0)). Half: the same field of view at 2 mm
// (120x120x78), voxel corners aligned with the full grid.
SynthGrid BratsGrid(SynthSize size);

// "BraTS20_Training_007" for case 7 (numbers from 1).
std::string SynthCaseId(int number);
// Seed of case `number`, derived from the dataset seed only.
uint64_t SynthCaseSeed(uint64_t dataset_seed, int number);
// Exactly one case in every block of ten (1-10, 11-20, ...) is tumor-free, chosen by the seed:
// about 10 %, at least one once N >= 10, and each case's role independent of N.
bool IsTumorFreeCase(uint64_t dataset_seed, int number);

struct SynthCaseInfo {
  int number = 0;
  std::string id;
  uint64_t seed = 0;
  bool tumor_free = false;
  // Label volumes in cm^3: whole tumor (1+2+4), necrotic core (1), edema (2), enhancing (4).
  double wt_cm3 = 0, ncr_cm3 = 0, ed_cm3 = 0, et_cm3 = 0;
  Point3 center_mm{};     // tumor centre, physical (LPS mm); zeros when tumor-free
  Point3 center_voxel{};  // the same as a continuous voxel index
  int attempts = 0;       // tumors drawn until every label region was present
};

struct SynthCase {
  SynthCaseInfo info;
  std::array<Volume<int16_t>, 4> images;  // indexed by Modality
  LabelVolume seg;                        // BraTS labels 0, 1, 2, 4
};

// Builds case `number` of the dataset with `dataset_seed` on `grid`.
StatusOr<SynthCase> SynthesizeCase(const BrainTemplate& tpl, const SynthGrid& grid,
                                   uint64_t dataset_seed, int number, bool tumor_free);

// Train/valid/test in a 7:1:2 ratio (rounded, with at least one case in each once N >= 3),
// shuffled by the seed; each list sorted.
Splits SynthSplits(const std::vector<std::string>& ids, uint64_t seed);

struct SynthOptions {
  std::filesystem::path out_dir;
  int cases = 16;
  SynthSize size = SynthSize::kHalf;
  uint64_t seed = 1;
  int threads = 2;
  std::filesystem::path template_path = kDefaultBrainTemplatePath;
};

struct SynthSummary {
  std::vector<SynthCaseInfo> cases;  // by case number
  Splits splits;
  double seconds = 0;
};

// Generates every case (in parallel on `threads` threads), writes the volumes, the split CSVs
// and the manifest, and logs one line per case. Existing files of the same names are replaced.
StatusOr<SynthSummary> WriteSynthDataset(const SynthOptions& options);

}  // namespace clisc
