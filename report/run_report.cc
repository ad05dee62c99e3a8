#include "report/run_report.h"

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <system_error>

#include "common/atomic_file.h"
#include "report/overlay_images.h"
#include "report/report_html.h"
#include "report/results_table.h"

namespace clisc::report {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string CsvNumber(double value) {
  if (!std::isfinite(value)) return "";
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.6g", value);
  return buffer;
}

std::string CsvField(const std::string& text) {
  if (text.find_first_of(",\"\n\r") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

json Number(double value) { return std::isfinite(value) ? json(value) : json(nullptr); }

json TimingsJson(const RunReportData& data) {
  json stages = json::array();
  if (!data.ledger) return stages;
  for (const StageTimingRow& s : data.ledger->stages) {
    const std::optional<int64_t> wall = s.wall_ms();
    stages.push_back({{"stage", s.stage},
                      {"tasks", s.tasks},
                      {"succeeded", s.succeeded},
                      {"failed", s.failed},
                      {"blocked", s.blocked},
                      {"cancelled", s.cancelled},
                      {"open", s.open},
                      {"attempts", s.attempts},
                      {"failed_attempts", s.failed_attempts},
                      {"lost_attempts", s.lost_attempts},
                      {"retries", s.retries},
                      {"wall_s", wall ? json(*wall / 1000.0) : json(nullptr)},
                      {"task_time_s", s.task_time_ms / 1000.0}});
  }
  return stages;
}

json SummaryJson(const RunReportData& data, const ResultsTable& table,
                 const std::vector<CaseOverlay>& overlays) {
  json variants = json::array();
  json final_row = nullptr;
  for (const VariantResult& v : data.variants) {
    json row = v.row;
    row["final"] = v.variant == data.final_variant;
    if (v.variant == data.final_variant) final_row = v.row;
    variants.push_back(std::move(row));
  }
  auto mean_of = [&](const char* metric) {
    return final_row.is_object() && final_row.contains(metric) && final_row[metric].is_object()
               ? final_row[metric].value("mean", json(nullptr))
               : json(nullptr);
  };
  json overlay_files = json::array();
  for (const CaseOverlay& o : overlays) {
    overlay_files.push_back(
        {{"rank", o.rank},
         {"case", o.case_id},
         {"dice", Number(o.dice)},
         {"path", o.relative_path.empty() ? json(nullptr) : json(o.relative_path)},
         {"error", o.error.empty() ? json(nullptr) : json(o.error)}});
  }
  json heuristic = json::array();
  for (const auto& [stage, backend] : data.backends) {
    if (IsHeuristicBackend(backend)) heuristic.push_back(stage);
  }
  return {{"run", data.run_name},
          {"mode", data.mode},
          {"state", data.run_state},
          {"created", data.created},
          {"finished", data.finished},
          {"data_dir", data.data_dir},
          {"backends", data.backends},
          {"heuristic_backends", heuristic},
          {"splits",
           {{"planned", data.splits.planned ? json(*data.splits.planned) : json(nullptr)},
            {"train", data.splits.train ? json(*data.splits.train) : json(nullptr)},
            {"valid", data.splits.valid ? json(*data.splits.valid) : json(nullptr)},
            {"test", data.splits.test ? json(*data.splits.test) : json(nullptr)}}},
          {"variants", variants},
          {"final",
           {{"variant", data.final_variant.empty() ? json(nullptr) : json(data.final_variant)},
            {"dice", mean_of("dice")},
            {"hd95_mm", mean_of("hd95_mm")}}},
          {"stages",
           {{"timings", TimingsJson(data)},
            {"quality", data.stage_quality.is_object() && data.stage_quality.contains("summary")
                            ? data.stage_quality["summary"]
                            : json(nullptr)}}},
          {"results_table", ResultsTableJson(table)},
          {"missing", data.missing},
          {"report",
           {{"html", "index.html"},
            {"csv", "metrics.csv"},
            {"summary", "summary.json"},
            {"overlays", overlay_files}}}};
}

}  // namespace

std::string MetricsCsv(const RunReportData& data) {
  std::string csv = "case,variant,dice,hd95_mm,hd95_monai_mm,hd_mm,empty_prediction,empty_gt\n";
  for (const VariantResult& v : data.variants) {
    for (const CaseMetrics& c : v.cases) {
      csv += CsvField(c.case_id) + "," + CsvField(v.variant) + "," + CsvNumber(c.dice) + "," +
             CsvNumber(c.hd95_mm) + "," + CsvNumber(c.hd95_monai_mm) + "," + CsvNumber(c.hd_mm) +
             "," + (c.empty_prediction ? "1" : "0") + "," + (c.empty_gt ? "1" : "0") + "\n";
    }
  }
  return csv;
}

Status WriteRunReport(const RunReportOptions& options) {
  ASSIGN_OR_RETURN(RunReportData data, LoadRunReportData(options.workdir));
  const fs::path out = options.output_dir.empty() ? options.workdir / "report" : options.output_dir;
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) return PermissionDeniedError("cannot create " + out.string() + ": " + ec.message());
  const std::vector<CaseOverlay> overlays = WriteCaseOverlays(data, out);
  const ResultsTable table = BuildResultsTable(data);
  RETURN_IF_ERROR(WriteFileAtomically(out / "metrics.csv", MetricsCsv(data)));
  RETURN_IF_ERROR(WriteFileAtomically(
      out / "summary.json",
      SummaryJson(data, table, overlays).dump(2, ' ', false, json::error_handler_t::replace) +
          "\n"));
  return WriteFileAtomically(out / "index.html", RenderReportHtml(data, overlays, options.title));
}

}  // namespace clisc::report
