// BraTS dataset layout: finding the cases under a data directory and naming their files.
//
// Three namings are recognised, each mapped onto the canonical modalities flair/t1/t1ce/t2 + seg:
//   BraTS2020  BraTS20_Training_001/BraTS20_Training_001_{flair,t1,t1ce,t2,seg}.nii[.gz]
//              (and BraTS20_Validation_001, which ships without seg)
//   BraTS2021  BraTS2021_00000/BraTS2021_00000_{flair,t1,t1ce,t2,seg}.nii[.gz]
//   BraTS2023  BraTS-GLI-00000-000/BraTS-GLI-00000-000-{t2f,t1n,t1c,t2w,seg}.nii[.gz]
// Case folders may sit directly in the data directory or one level below it (the Kaggle archive
// puts them in MICCAI_BraTS2020_TrainingData/).
//
// Discovery only looks at names; it never opens a volume (case_validation.h does). Every
// filesystem call uses the error_code overloads: a symlink loop, an unreadable folder or an odd
// file name is recorded as a problem or a warning, never thrown.
#pragma once

#include <array>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace clisc {

enum class Modality { kFlair = 0, kT1 = 1, kT1ce = 2, kT2 = 3 };
inline constexpr std::array<Modality, 4> kAllModalities = {Modality::kFlair, Modality::kT1,
                                                           Modality::kT1ce, Modality::kT2};

// "flair", "t1", "t1ce", "t2".
std::string_view ModalityName(Modality modality);
// Accepts the canonical names (case-insensitive) and the BraTS2023 ones (t2f, t1n, t1c, t2w).
StatusOr<Modality> ParseModality(std::string_view name);
// "flair,t1" -> {flair, t1}. Empty items, unknown names and repeats are INVALID_ARGUMENT.
StatusOr<std::vector<Modality>> ParseModalityList(std::string_view csv);

enum class BratsNaming { kBraTS2020, kBraTS2021, kBraTS2023 };
std::string_view BratsNamingName(BratsNaming naming);  // "brats2020", ...

// The naming a case folder name follows, or nullopt when the name is not a BraTS case id.
std::optional<BratsNaming> NamingOfCaseId(std::string_view name);

// The file name stem a case uses for one modality or its segmentation, without extension:
// ("BraTS20_Training_001", kBraTS2020, flair) -> "BraTS20_Training_001_flair",
// ("BraTS-GLI-00000-000", kBraTS2023, flair) -> "BraTS-GLI-00000-000-t2f".
std::string ModalityFileStem(std::string_view case_id, BratsNaming naming, Modality modality);
std::string SegFileStem(std::string_view case_id, BratsNaming naming);

// The files of one case as found on disk.
struct CaseFiles {
  std::string id;
  std::filesystem::path dir;
  BratsNaming naming = BratsNaming::kBraTS2020;
  // Indexed by Modality; empty when the modality has no file.
  std::array<std::optional<std::filesystem::path>, 4> images;
  std::optional<std::filesystem::path> seg;
  // Problems that rule the case out before any volume is read (both .nii and .nii.gz of one
  // modality, an inaccessible case folder, a duplicate case id).
  std::vector<std::string> problems;
  // Harmless oddities (unrecognised files in the folder, no seg).
  std::vector<std::string> warnings;
  // False when the case folder could not be opened or listed (then no file is known).
  bool listed = true;
  // "flair", ..., "seg": names with both a .nii and a .nii.gz file (recorded in problems too).
  std::vector<std::string> ambiguous;

  const std::optional<std::filesystem::path>& image(Modality m) const {
    return images[static_cast<int>(m)];
  }
};

struct DiscoveryResult {
  std::vector<CaseFiles> cases;       // sorted by id
  std::vector<std::string> warnings;  // entries of the data directory that could not be read
};

// Finds every case under `data_dir` (the folder itself and one level of subfolders).
// NOT_FOUND when data_dir does not exist, INVALID_ARGUMENT when it is not a directory,
// PERMISSION_DENIED / UNAVAILABLE when it cannot be listed. Finding no case is not an error.
StatusOr<DiscoveryResult> DiscoverCases(const std::filesystem::path& data_dir);

// Lists the files of one case folder whose name is `case_id` (exposed for tests and for callers
// that already know where a case is).
CaseFiles DiscoverCaseFiles(const std::filesystem::path& case_dir, std::string_view case_id,
                            BratsNaming naming);

// A file name made safe for one-line text output and JSON: control characters are escaped
// (\n, \t, \xNN) and bytes that are not valid UTF-8 become \xNN.
std::string DisplayName(std::string_view raw);
std::string DisplayPath(const std::filesystem::path& path);

}  // namespace clisc
