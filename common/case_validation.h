// Validation of discovered BraTS cases: every case is either accepted, or rejected with reasons
// that name the file and the problem, so one broken case never stops a run and never passes
// silently.
//
// Per case: the required modalities are present; every file (required modalities and the seg)
// has a sane 3D header (ReadVolumeHeader first, so an absurd header costs nothing) and reads in
// full; all share one grid (dims, and spacing/origin/direction within tolerance); dims and
// spacing are plausible for a brain MRI; voxels are finite; every modality has some nonzero
// voxel (brain). Seg labels outside the naming's label set are a warning, not a rejection.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/brats_layout.h"
#include "common/status.h"
#include "common/volume.h"

namespace clisc {

struct ValidationOptions {
  // Modalities a case must have; the others are listed but not read.
  std::vector<Modality> required{kAllModalities.begin(), kAllModalities.end()};
  int64_t min_dim = 16;
  int64_t max_dim = 1024;
  double min_spacing_mm = 0.1;
  double max_spacing_mm = 10.0;
  double geometry_tolerance = 1e-4;  // see Geometry::NearlyEquals
  int threads = 2;                   // for ValidateCases
};

struct CaseReport {
  std::string id;
  std::filesystem::path dir;
  BratsNaming naming = BratsNaming::kBraTS2020;
  CaseFiles files;
  bool accepted = false;
  std::vector<std::string> reasons;   // why it was rejected (empty when accepted)
  std::vector<std::string> warnings;  // worth knowing, not disqualifying
  bool has_seg = false;
  Dims dims;          // of the first readable required modality; zero when none
  Geometry geometry;  // likewise
};

// The seg labels a naming uses, in its own coding. BraTS2020/2021: {0, 1, 2, 4};
// BraTS2023: {0, 1, 2, 3} (3 is enhancing tumor, 4 in the older coding).
std::vector<int> SegLabelsOf(BratsNaming naming);
// A label in the naming's coding mapped to the BraTS2020 coding (2023's 3 -> 4).
int CanonicalSegLabel(BratsNaming naming, int label);

CaseReport ValidateCase(const CaseFiles& files, const ValidationOptions& options);

// Validates every case on `options.threads` threads, logging progress; the result is in the
// order of `cases`.
std::vector<CaseReport> ValidateCases(const std::vector<CaseFiles>& cases,
                                      const ValidationOptions& options);

// Discovery plus validation of a whole data directory.
struct DatasetReport {
  std::filesystem::path data_dir;
  std::vector<CaseReport> cases;      // sorted by id
  std::vector<std::string> warnings;  // discovery notes (unreadable entries, link loops)
  size_t accepted_count() const;
  size_t rejected_count() const;
  std::vector<std::string> accepted_ids() const;
};
StatusOr<DatasetReport> InspectDataset(const std::filesystem::path& data_dir,
                                       const ValidationOptions& options);

// JSON for reports and `clisc inspect --json`. Names are passed through DisplayName, so the
// result always serialises (no invalid UTF-8).
nlohmann::json CaseReportToJson(const CaseReport& report);
nlohmann::json DatasetReportToJson(const DatasetReport& report, const ValidationOptions& options);

}  // namespace clisc
