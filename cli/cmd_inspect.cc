// `clisc inspect DATA_DIR [--json] [--modalities LIST] [--threads N]`: finds the BraTS cases under
// a data directory, validates each one, and lists which would be accepted and why the others are
// rejected. It is the ingest stage of a run, without the run.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/command.h"
#include "common/brats_layout.h"
#include "common/case_validation.h"
#include "common/status.h"

namespace clisc::cli {
namespace {

std::string DimsCell(const CaseReport& c) {
  if (c.dims.count() == 0) return "-";
  return std::to_string(c.dims.x) + "x" + std::to_string(c.dims.y) + "x" + std::to_string(c.dims.z);
}

std::string SpacingCell(const CaseReport& c) {
  if (c.dims.count() == 0) return "-";
  char buf[64];
  const auto& s = c.geometry.spacing;
  std::snprintf(buf, sizeof(buf), "%gx%gx%g", s[0], s[1], s[2]);
  return buf;
}

std::string ReasonCell(const CaseReport& c) {
  std::string out;
  for (const std::string& r : c.reasons) out += (out.empty() ? "" : "; ") + r;
  if (c.accepted) {
    for (const std::string& w : c.warnings) out += (out.empty() ? "note: " : "; ") + w;
  }
  return out;
}

void PrintTable(const DatasetReport& report) {
  struct Row {
    std::string id, status, dims, spacing, reason;
  };
  std::vector<Row> rows;
  rows.push_back({"id", "status", "dims", "spacing", "reason"});
  for (const CaseReport& c : report.cases) {
    rows.push_back({DisplayName(c.id), c.accepted ? "accepted" : "rejected", DimsCell(c),
                    SpacingCell(c), ReasonCell(c)});
  }
  size_t w_id = 0, w_status = 0, w_dims = 0, w_spacing = 0;
  for (const Row& r : rows) {
    w_id = std::max(w_id, r.id.size());
    w_status = std::max(w_status, r.status.size());
    w_dims = std::max(w_dims, r.dims.size());
    w_spacing = std::max(w_spacing, r.spacing.size());
  }
  auto pad = [](const std::string& s, size_t width) {
    return s + std::string(width > s.size() ? width - s.size() : 0, ' ');
  };
  for (const Row& r : rows) {
    std::string line = pad(r.id, w_id) + "  " + pad(r.status, w_status) + "  " +
                       pad(r.dims, w_dims) + "  " + pad(r.spacing, w_spacing) + "  " + r.reason;
    while (!line.empty() && line.back() == ' ') line.pop_back();
    std::cout << line << "\n";
  }
  for (const std::string& w : report.warnings) std::cout << "warning: " << w << "\n";
  std::cout << report.cases.size() << " cases: " << report.accepted_count() << " accepted, "
            << report.rejected_count() << " rejected\n";
}

int RunInspect(const std::vector<std::string>& args) {
  ArgParser parser("inspect", "inspect DATA_DIR [--json] [--modalities LIST] [--threads N]",
                   "Find and validate the BraTS cases under DATA_DIR; list accepted and rejected "
                   "cases with the reasons.");
  parser.Positional("DATA_DIR", "folder holding BraTS case folders (or one level above them)")
      .Flag("json", "print JSON instead of a table")
      .Option("modalities", "LIST", "modalities every case must have, comma separated",
              "flair,t1,t1ce,t2")
      .Option("threads", "N", "cases validated in parallel", "2")
      .Epilog(
          "Recognised layouts: BraTS2020 (BraTS20_Training_001/BraTS20_Training_001_flair.nii),\n"
          "BraTS2021 (BraTS2021_00000/..._flair.nii.gz), BraTS2023\n"
          "(BraTS-GLI-00000-000/...-t2f.nii.gz).\n"
          "Exit status: 0 when at least one case is accepted, 1 when none is (or DATA_DIR cannot\n"
          "be read), 2 for usage errors (including a DATA_DIR that does not exist or is not a\n"
          "directory).\n");
  if (int rc = ParseCommandLine(parser, args); rc >= 0) return rc;

  auto modalities = ParseModalityList(parser.Get("modalities"));
  if (!modalities.ok()) {
    std::cerr << "error: --modalities: " << modalities.status().message() << "\n";
    return kExitUsage;
  }
  auto threads = parser.GetInt("threads");
  if (!threads.ok() || *threads < 1 || *threads > 256) {
    std::cerr << "error: --threads must be an integer from 1 to 256\n";
    return kExitUsage;
  }
  ValidationOptions options;
  options.required = *modalities;
  options.threads = static_cast<int>(*threads);

  auto report = InspectDataset(parser.GetPositional("DATA_DIR"), options);
  if (!report.ok()) {
    std::cerr << "error: " << report.status().message() << "\n";
    StatusCode code = report.status().code();
    return code == StatusCode::kNotFound || code == StatusCode::kInvalidArgument ? kExitUsage
                                                                                 : kExitFailure;
  }
  if (parser.GetFlag("json")) {
    std::cout << DatasetReportToJson(*report, options)
                     .dump(2, ' ', false, nlohmann::json::error_handler_t::replace)
              << "\n";
  } else {
    PrintTable(*report);
  }
  return report->accepted_count() > 0 ? kExitOk : kExitFailure;
}

}  // namespace
CLISC_REGISTER_COMMAND("inspect", "find and validate the cases of a BraTS data directory",
                       RunInspect);
}  // namespace clisc::cli
