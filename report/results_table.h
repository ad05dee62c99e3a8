// The results table a run ends with (`clisc run`, `clisc report`): per round and baseline the
// Dice mean ± std, the HD95 mean and the empty predictions, the final round marked, and the
// per-stage quality lines of stages 1-8.
#pragma once

#include <filesystem>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "common/status.h"
#include "report/report_data.h"

namespace clisc::report {

struct ResultsRow {
  std::string variant, title;
  int64_t cases = 0;
  double dice_mean = 0, dice_std = 0;  // NaN when not available
  int64_t dice_count = 0;
  double hd95_mean = 0;  // mm
  int64_t hd95_count = 0;
  int64_t empty_predictions = 0;
  bool is_final = false;
};

struct QualityLine {
  std::string name;  // e.g. "slice-label accuracy"
  double mean = 0;   // NaN when not available
  int64_t cases = 0;
};

struct ResultsTable {
  std::string mode;
  std::vector<std::string> warnings;  // heuristic backends
  std::vector<ResultsRow> rows;
  std::vector<QualityLine> quality;
  std::vector<std::string> missing;
};

ResultsTable BuildResultsTable(const RunReportData& data);
// Loads W and builds the table. NOT_FOUND when W is not a directory, FAILED_PRECONDITION when W
// has neither an evaluation nor per-stage quality to show.
StatusOr<ResultsTable> LoadResultsTable(const std::filesystem::path& workdir);

// Fixed-width text for a terminal.
std::string FormatResultsTable(const ResultsTable& table);
nlohmann::json ResultsTableJson(const ResultsTable& table);

}  // namespace clisc::report
