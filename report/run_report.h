// The run report of a workdir W, finished or not: W/report/index.html (one self-contained page),
// W/report/metrics.csv (one row per test case and variant), W/report/summary.json and the overlay
// PNGs under W/report/overlays/. Pieces the run has not produced yet are named on the page.
#pragma once

#include <filesystem>
#include <string>

#include "common/status.h"
#include "report/report_data.h"

namespace clisc::report {

struct RunReportOptions {
  std::filesystem::path workdir;
  std::filesystem::path output_dir;  // empty: <workdir>/report
  std::string title = "CLISC run report";
};

// NOT_FOUND when the workdir does not exist; the file system's errors when a file cannot be
// written. Missing run artifacts are not errors.
Status WriteRunReport(const RunReportOptions& options);

// The CSV and summary documents, exposed for the CLI and tests.
std::string MetricsCsv(const RunReportData& data);

}  // namespace clisc::report
