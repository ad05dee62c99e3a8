// Everything the run report shows, gathered from a workdir W: run.json, config.yaml, plan.json,
// the ledger, report/data/{stages_1_8,evaluation}.json and eval/<variant>.json. Loading never
// fails for a missing or broken piece: the piece stays empty and `missing` says what and why, so
// the report of a run that failed early still renders.
#pragma once

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "report/stage_timings.h"

namespace clisc::report {

// One test case's metrics under one variant; NaN where a value does not exist.
struct CaseMetrics {
  std::string case_id;
  double dice = 0, hd95_mm = 0, hd95_monai_mm = 0, hd_mm = 0;
  bool empty_prediction = false, empty_gt = false;
};

// One round or baseline as evaluated: the summary row of evaluation.json and, when its
// eval/<variant>.json is readable, the per-case values.
struct VariantResult {
  std::string variant;  // r1, r2, ..., supervised, sam_only
  std::string title;
  int round = 0;
  nlohmann::json row;  // the evaluation.json row (dice/hd95 summaries, empty counts)
  std::vector<CaseMetrics> cases;
  bool has_cases = false;
};

struct SplitCounts {
  std::optional<int64_t> planned, train, valid, test;
};

struct RunReportData {
  std::filesystem::path workdir;
  std::string run_name = "clisc";
  std::string mode;         // unsupervised | reference ("" when unknown)
  std::string data_dir;     // from run.json
  std::string config_yaml;  // the text of W/config.yaml
  std::vector<std::string> modalities{"flair"};
  std::map<std::string, std::string> backends;  // clip, sam -> backend as the artifacts record it
  std::string created, finished;                // display times ("" when unknown)
  std::string run_state;                        // from the ledger
  SplitCounts splits;
  std::optional<RunLedgerSummary> ledger;
  nlohmann::json stage_quality;         // stages_1_8.json, null when missing
  nlohmann::json evaluation;            // evaluation.json, null when missing
  std::vector<VariantResult> variants;  // in evaluation.json's order (rounds, then baselines)
  std::string final_variant;            // evaluation.json "final"
  std::vector<std::string> missing;     // what could not be shown, one sentence each
  std::vector<std::string> warnings;    // e.g. heuristic backends
};

// NOT_FOUND when `workdir` is not a directory; everything else is recorded in `missing`.
StatusOr<RunReportData> LoadRunReportData(const std::filesystem::path& workdir);

// True when a backend name denotes a heuristic stand-in, not the paper's model.
bool IsHeuristicBackend(const std::string& backend);

// The prediction of `variant` for `case_id` on the cropped grid, as the method plan lays it out.
std::filesystem::path VariantMaskPath(const std::filesystem::path& workdir,
                                      const std::string& variant, const std::string& case_id);

// UTC "YYYY-MM-DD HH:MM:SS" of a Unix time in milliseconds.
std::string FormatTimeMs(int64_t ms);

}  // namespace clisc::report
