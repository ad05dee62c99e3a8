#include "report/results_table.h"

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "common/metrics.h"

namespace clisc::report {
namespace {

using nlohmann::json;

double NumberAt(const json& doc, const char* outer, const char* inner) {
  if (!doc.is_object() || !doc.contains(outer) || !doc[outer].is_object()) return kNaN;
  const json& node = doc[outer];
  return node.contains(inner) && node[inner].is_number() ? node[inner].get<double>() : kNaN;
}

int64_t IntAt(const json& doc, const char* outer, const char* inner) {
  if (!doc.is_object() || !doc.contains(outer) || !doc[outer].is_object()) return 0;
  const json& node = doc[outer];
  return node.contains(inner) && node[inner].is_number_integer() ? node[inner].get<int64_t>() : 0;
}

std::string Fixed(double value, int decimals) {
  if (!std::isfinite(value)) return "n/a";
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, value);
  return buffer;
}

std::string Pad(std::string text, size_t width) {
  if (text.size() < width) text.append(width - text.size(), ' ');
  return text;
}

json Number(double value) { return std::isfinite(value) ? json(value) : json(nullptr); }

}  // namespace

ResultsTable BuildResultsTable(const RunReportData& data) {
  ResultsTable table;
  table.mode = data.mode;
  table.warnings = data.warnings;
  table.missing = data.missing;
  for (const VariantResult& variant : data.variants) {
    ResultsRow row;
    row.variant = variant.variant;
    row.title = variant.title;
    row.cases = variant.row.value("cases", int64_t{0});
    row.dice_mean = NumberAt(variant.row, "dice", "mean");
    row.dice_std = NumberAt(variant.row, "dice", "std");
    row.dice_count = IntAt(variant.row, "dice", "count");
    row.hd95_mean = NumberAt(variant.row, "hd95_mm", "mean");
    row.hd95_count = IntAt(variant.row, "hd95_mm", "count");
    row.empty_predictions = IntAt(variant.row, "empty", "pred");
    row.is_final = variant.variant == data.final_variant;
    table.rows.push_back(std::move(row));
  }
  const json& quality = data.stage_quality;
  if (quality.is_object() && quality.contains("summary") && quality["summary"].is_object()) {
    const json& summary = quality["summary"];
    for (const auto& [key, name] :
         {std::pair<const char*, const char*>{"slice_label_accuracy", "slice-label accuracy"},
          {"cam_dice_raw", "CAM Dice (raw classifier)"},
          {"cam_dice_enhanced", "CAM Dice (AMDA-enhanced)"},
          {"sam_dice", "SAM pseudo-label Dice"}}) {
      QualityLine line;
      line.name = name;
      line.mean = NumberAt(summary, key, "mean");
      line.cases = IntAt(summary, key, "cases");
      table.quality.push_back(std::move(line));
    }
  }
  return table;
}

StatusOr<ResultsTable> LoadResultsTable(const std::filesystem::path& workdir) {
  ASSIGN_OR_RETURN(RunReportData data, LoadRunReportData(workdir));
  if (data.evaluation.is_null() && data.stage_quality.is_null()) {
    return FailedPreconditionError("workdir " + workdir.string() +
                                   " has no evaluation and no per-stage quality yet");
  }
  return BuildResultsTable(data);
}

std::string FormatResultsTable(const ResultsTable& table) {
  std::string out;
  for (const std::string& warning : table.warnings) out += "WARNING: " + warning + "\n";
  if (table.rows.empty()) {
    out += "No evaluation of the test split yet.\n";
  } else {
    out += Pad("variant", 12) + Pad("cases", 7) + Pad("Dice mean ± std", 20) +
           Pad("HD95 mean (mm)", 16) + "empty pred\n";
    for (const ResultsRow& row : table.rows) {
      const std::string dice = Fixed(row.dice_mean, 4) + " ± " + Fixed(row.dice_std, 4);
      out += Pad(row.variant + (row.is_final ? " *" : ""), 12) + Pad(std::to_string(row.cases), 7) +
             // "±" is two bytes in UTF-8: pad one column more to keep the columns aligned.
             Pad(dice, 21) + Pad(Fixed(row.hd95_mean, 2), 16) +
             std::to_string(row.empty_predictions) + "\n";
    }
    out += "* final round\n";
  }
  if (!table.quality.empty()) {
    out += "Per-stage quality (against GT where a case has one):\n";
    for (const QualityLine& line : table.quality) {
      out += "  " + Pad(line.name, 28) + Fixed(line.mean, 4) + "  (" + std::to_string(line.cases) +
             " cases)\n";
    }
  }
  return out;
}

json ResultsTableJson(const ResultsTable& table) {
  json rows = json::array(), quality = json::array();
  for (const ResultsRow& row : table.rows) {
    rows.push_back({{"variant", row.variant},
                    {"title", row.title},
                    {"cases", row.cases},
                    {"dice_mean", Number(row.dice_mean)},
                    {"dice_std", Number(row.dice_std)},
                    {"hd95_mean_mm", Number(row.hd95_mean)},
                    {"empty_predictions", row.empty_predictions},
                    {"final", row.is_final}});
  }
  for (const QualityLine& line : table.quality) {
    quality.push_back({{"name", line.name}, {"mean", Number(line.mean)}, {"cases", line.cases}});
  }
  return {{"mode", table.mode},
          {"warnings", table.warnings},
          {"rows", rows},
          {"quality", quality},
          {"missing", table.missing}};
}

}  // namespace clisc::report
