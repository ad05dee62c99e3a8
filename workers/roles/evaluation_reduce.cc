// Stage 13 (role `reduce`): the evaluation of the test split.
//  evaluate_<variant>   every test case's mask of one round or baseline (a U-Net prediction, or
//                       the SAM pseudo-label for the SAM-only baseline) against its GT, on the
//                       cropped grid with the image spacing: Dice, HD95 in both definitions, HD,
//                       per case, and the summary in our convention and the reference's
//                       (common/metrics_summary.h). Cases without GT are listed, not scored.
//  evaluation_summary   the rounds and baselines side by side: the table the run report shows.
#include <algorithm>
#include <atomic>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "common/logging.h"
#include "common/metrics.h"
#include "common/metrics_summary.h"
#include "common/parallel_for.h"
#include "workers/roles/method_roles_internal.h"

namespace clisc::roles {
namespace {

struct CaseEvaluation {
  std::string case_id;
  std::filesystem::path mask, gt;
  std::optional<MaskMetrics> metrics;
  std::string error;
};

std::string VariantTitle(const std::string& variant) {
  if (variant == "supervised") return "supervised U-Net (GT labels, upper bound)";
  if (variant == "sam_only") return "SAM pseudo-labels (zero-shot input)";
  if (variant.size() > 1 && variant[0] == 'r') return "CLISC round " + variant.substr(1);
  return variant;
}

}  // namespace

StatusOr<worker::TaskOutput> RunEvaluation(MethodTask& task) {
  const Config& config = task.config();
  worker::TaskContext& context = task.context();
  const std::string variant = task.Extra("variant");
  const std::string mask_stage = task.Extra("mask_stage");
  const std::string mask_artifact = task.Extra("mask_artifact");
  std::vector<CaseEvaluation> cases;
  nlohmann::json without_gt = nlohmann::json::array();
  for (const CaseInput& input : task.CaseInputs(mask_stage, mask_artifact)) {
    const std::string gt_name = "prep/" + input.case_id + "/gt";
    if (!task.HasInput(gt_name)) {
      without_gt.push_back(input.case_id);
      continue;
    }
    ASSIGN_OR_RETURN(std::filesystem::path gt, task.InputPath(gt_name));
    cases.push_back({input.case_id, input.path, gt, std::nullopt, ""});
  }
  const int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::atomic<int64_t> done{0};
  ParallelFor(cases.size(), threads, [&](size_t i) {
    CaseEvaluation& c = cases[i];
    StatusOr<LabelVolume> mask = ReadVolume<uint8_t>(c.mask);
    StatusOr<LabelVolume> gt = ReadVolume<uint8_t>(c.gt);
    StatusOr<MaskMetrics> metrics = !mask.ok() ? StatusOr<MaskMetrics>(mask.status())
                                    : !gt.ok() ? StatusOr<MaskMetrics>(gt.status())
                                               : ComputeMaskMetrics(*mask, *gt);
    if (metrics.ok()) {
      c.metrics = std::move(*metrics);
    } else {
      c.error = metrics.status().ToString();
    }
    context.ReportProgress(double(++done) / cases.size(), "evaluated " + c.case_id);
  });
  std::vector<MaskMetrics> evaluated;
  nlohmann::json per_case = nlohmann::json::array(), errors = nlohmann::json::array();
  for (const CaseEvaluation& c : cases) {
    if (!c.metrics) {
      errors.push_back({{"case", c.case_id}, {"error", c.error}});
      LogWarn("evaluation_case_failed", {{"case", c.case_id}, {"error", c.error}});
      continue;
    }
    evaluated.push_back(*c.metrics);
    nlohmann::json row = ToJson(*c.metrics);
    row["case"] = c.case_id;
    per_case.push_back(std::move(row));
  }
  if (evaluated.empty()) {
    return FailedPreconditionError(task.Label() + ": no test case with a mask and a GT (" +
                                   std::to_string(without_gt.size()) + " without GT, " +
                                   std::to_string(errors.size()) + " unreadable)");
  }
  const MetricsSummary summary = SummarizeMetrics(evaluated);
  nlohmann::json doc = {
      {"stage", context.stage()},
      {"variant", variant},
      {"title", VariantTitle(variant)},
      {"round", context.round()},
      {"mode", config.GetString("mode")},
      {"masks", mask_stage + "/" + mask_artifact},
      {"backends",
       {{"clip", config.GetString("clip.backend")}, {"sam", config.GetString("sam.backend")}}},
      {"hd95_definition", config.GetString("evaluation.hd95")},
      {"grid", "cropped (brain box), image spacing in mm"},
      {"summary", ToJson(summary)},
      {"cases", per_case},
      {"without_ground_truth", without_gt},
      {"errors", errors}};
  RETURN_IF_ERROR(task.PublishJson("metrics", doc));
  LogInfo("evaluation", {{"variant", variant},
                         {"cases", summary.cases},
                         {"dice", summary.dice.mean},
                         {"hd95", summary.hd95.mean}});
  return task.Finish({{"cases", double(summary.cases)},
                      {"dice", summary.dice.mean},
                      {"hd95", summary.hd95.mean},
                      {"reference_dice", summary.reference_dice.mean},
                      {"reference_hd95", summary.reference_hd95.mean}});
}

StatusOr<worker::TaskOutput> RunEvaluationSummary(MethodTask& task) {
  const Config& config = task.config();
  // Rounds in order, then the baselines.
  std::vector<std::pair<int, nlohmann::json>> docs;
  for (const worker::TaskInput& input : task.context().inputs()) {
    if (input.name.rfind("evaluate_", 0) != 0) continue;
    ASSIGN_OR_RETURN(nlohmann::json doc, task.ReadInputJson(input.name));
    const int round = doc.value("round", 0);
    docs.emplace_back(round == 0 ? 1 << 30 : round, std::move(doc));
  }
  std::stable_sort(docs.begin(), docs.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  nlohmann::json rows = nlohmann::json::array();
  std::string final_variant;
  for (const auto& [order, doc] : docs) {
    const nlohmann::json& s = doc["summary"];
    const std::string variant = doc.value("variant", "");
    if (order < (1 << 30)) final_variant = variant;
    const nlohmann::json& ours = s["ours"];
    rows.push_back(
        {{"variant", variant},
         {"title", doc.value("title", variant)},
         {"round", doc.value("round", 0)},
         {"cases", s.value("cases", 0)},
         {"dice", ours["dice"]},
         {"hd95_mm", ours["hd95_mm"]},
         {"hd95_monai_mm", ours["hd95_monai_mm"]},
         {"hd_mm", ours["hd_mm"]},
         {"empty", s["empty"]},
         {"reference_convention",
          {{"dice", s["reference"]["dice"]}, {"hd95_voxels", s["reference"]["hd95_voxels"]}}}});
  }
  nlohmann::json report = {
      {"mode", config.GetString("mode")},
      {"backends",
       {{"clip", config.GetString("clip.backend")}, {"sam", config.GetString("sam.backend")}}},
      {"rounds", config.GetInt("s3f.rounds")},
      {"keep_ratio", config.GetDouble("s3f.keep_ratio")},
      {"final", final_variant},
      {"note",
       "Dice over test cases with a non-empty GT; HD95 and HD over cases where both masks are "
       "non-empty, in mm; the reference convention scores an empty prediction Dice 0 and HD95 0 "
       "(voxel units)"},
      {"rows", rows}};
  RETURN_IF_ERROR(task.PublishJson("report", report));
  std::map<std::string, double> metrics;
  for (const nlohmann::json& row : rows) {
    const nlohmann::json& dice = row["dice"];
    if (dice.is_object() && dice["mean"].is_number()) {
      metrics["dice_" + row["variant"].get<std::string>()] = dice["mean"].get<double>();
    }
  }
  return task.Finish(metrics);
}

}  // namespace clisc::roles
