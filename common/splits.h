// Train / valid / test splits of a dataset's case ids: read from the reference's CSV files, made
// from a seed, checked, and written back in the reference format.
//
// The reference CSV (REFERENCE.md 1.4) has the header `image_pth,mask_pth` and one row per case;
// the case id is the image file name without .nii/.nii.gz
// (`../data/BraTS2020/image/BraTS20_Training_002.nii.gz` -> `BraTS20_Training_002`). The
// mask_pth column is never read (it carries a wrong `.nii.nii.gz` suffix in the reference).
//
// Seeded splits are reproducible across platforms and standard libraries: ids are sorted first
// (so discovery order does not matter), the generator is std::mt19937_64 (its output sequence is
// fixed by the standard), and the shuffle is our own Fisher-Yates with an exact bounded draw,
// because std::shuffle and std::uniform_int_distribution are implementation-defined.
#pragma once

#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace clisc {

struct Splits {
  std::vector<std::string> train;
  std::vector<std::string> valid;
  std::vector<std::string> test;
};

struct SplitFractions {
  double train = 0.7;
  double valid = 0.1;
  double test = 0.2;
};

// The case id named by a reference image path: the file name after the last '/' or '\', with
// trailing .gz and .nii extensions removed (".nii.nii.gz" too). Surrounding spaces are dropped.
std::string CaseIdFromImagePath(std::string_view image_path);

// Parses the text of one split CSV. Tolerates a UTF-8 BOM, CRLF line ends, quoted fields ("" is
// a quote), extra columns in any order and blank lines. INVALID_ARGUMENT (with the line number)
// when there is no image_pth column, a row has no image path, or an id appears twice.
StatusOr<std::vector<std::string>> ParseSplitCsv(std::string_view text);
StatusOr<std::vector<std::string>> ReadSplitCsv(const std::filesystem::path& file);

// Reads train.csv, valid.csv and test.csv from `dir` (a missing test.csv or valid.csv is an
// error: the reference always has all three).
StatusOr<Splits> ReadReferenceSplits(const std::filesystem::path& dir);

// Shuffles `ids` (sorted and de-duplicated first) with `seed` and cuts train = floor(N * train),
// valid = floor(N * valid), test = the rest, as the reference's preprocessing.py does.
// INVALID_ARGUMENT when a fraction is negative or they do not sum to 1.
StatusOr<Splits> MakeSeededSplits(std::vector<std::string> ids, const SplitFractions& fractions,
                                  uint64_t seed);

// The shuffle MakeSeededSplits uses, exposed so its exact order can be pinned by tests:
// for i = n-1 down to 1, swap element i with element UniformBelow(rng, i + 1).
void FisherYatesShuffle(std::vector<std::string>& items, std::mt19937_64& rng);
// A uniform integer in [0, bound) by rejection sampling on the raw 64-bit output (bound > 0).
uint64_t UniformBelow(std::mt19937_64& rng, uint64_t bound);

// What CheckSplits found; all lists are sorted.
struct SplitCheck {
  std::vector<std::string> in_two_splits;   // ids found in more than one split
  std::vector<std::string> unknown_ids;     // ids in a split but not in the dataset
  std::vector<std::string> unassigned_ids;  // dataset ids in no split
  bool ok() const { return in_two_splits.empty() && unknown_ids.empty(); }
  std::string Summary() const;  // one line for logs and errors
};
SplitCheck CheckSplits(const Splits& splits, const std::vector<std::string>& dataset_ids);

// Fails (INVALID_ARGUMENT, naming the ids) when a case is in two splits.
Status ValidateDisjoint(const Splits& splits);

// How written rows name their files: `<image_dir>/<id>.nii.gz,<label_dir>/<id>.nii.gz`.
struct SplitCsvStyle {
  std::string image_dir = "../data/BraTS2020/image";
  std::string label_dir = "../data/BraTS2020/label";
};
std::string FormatSplitCsv(const std::vector<std::string>& ids, const SplitCsvStyle& style = {});
// Writes atomically (temporary file in the same folder, then rename).
Status WriteSplitCsv(const std::vector<std::string>& ids, const std::filesystem::path& file,
                     const SplitCsvStyle& style = {});
// Writes train.csv, valid.csv, test.csv into `dir` (created if needed).
Status WriteReferenceSplits(const Splits& splits, const std::filesystem::path& dir,
                            const SplitCsvStyle& style = {});

}  // namespace clisc
