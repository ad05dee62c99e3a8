// `clisc report --workdir W [--out DIR] [--title TEXT] [--json]`: (re)writes the run report of a
// workdir, finished or not (W/report/index.html, metrics.csv, summary.json, overlays/), and
// prints the results table: per round and baseline the test-split Dice and HD95, and the quality
// of stages 1-8. What the run has not produced yet is named in the report, not an error.
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "cli/command.h"
#include "report/results_table.h"
#include "report/run_report.h"

namespace clisc::cli {
namespace {

namespace fs = std::filesystem;

int RunReport(const std::vector<std::string>& args) {
  ArgParser parser("report", "report --workdir W [--out DIR] [--title TEXT] [--json]",
                   "Write the run report of a workdir and print the results table.");
  parser.Option("workdir", "W", "the run's workdir (clisc run --workdir)", std::nullopt, true)
      .Option("out", "DIR", "where to write the report (default: W/report)")
      .Option("title", "TEXT", "the page title", "CLISC run report")
      .Flag("json", "print the report's paths and the results table as JSON")
      .Epilog(
          "The report is one self-contained HTML page (no network access needed) with the run\n"
          "config, per-stage timings and quality, the metrics of every round and baseline,\n"
          "Dice/HD95 plots and overlays of the best, median and worst test case.");
  if (int rc = ParseCommandLine(parser, args); rc >= 0) return rc;
  const fs::path workdir = parser.Get("workdir");
  const fs::path out = parser.Has("out") && !parser.Get("out").empty() ? fs::path(parser.Get("out"))
                                                                       : workdir / "report";
  report::RunReportOptions options;
  options.workdir = workdir;
  options.output_dir = out;
  options.title = parser.Get("title");
  if (Status written = report::WriteRunReport(options); !written.ok()) {
    std::cerr << "clisc report: " << written.ToString() << "\n";
    return written.code() == StatusCode::kNotFound ? kExitUsage : kExitFailure;
  }
  StatusOr<report::RunReportData> data = report::LoadRunReportData(workdir);
  if (!data.ok()) {
    std::cerr << "clisc report: " << data.status().ToString() << "\n";
    return kExitFailure;
  }
  const report::ResultsTable table = report::BuildResultsTable(*data);
  if (parser.GetFlag("json")) {
    nlohmann::json doc = {{"report_dir", out.string()},
                          {"index_html", (out / "index.html").string()},
                          {"metrics_csv", (out / "metrics.csv").string()},
                          {"summary_json", (out / "summary.json").string()},
                          {"results", report::ResultsTableJson(table)}};
    std::cout << doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else {
    std::cout << report::FormatResultsTable(table);
    for (const std::string& missing : table.missing) std::cout << "missing: " << missing << "\n";
    std::cout << "report: " << (out / "index.html").string() << "\n";
  }
  return kExitOk;
}

}  // namespace
CLISC_REGISTER_COMMAND("report", "write the run report of a workdir and print its results",
                       RunReport);
}  // namespace clisc::cli
