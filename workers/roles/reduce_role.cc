// The reduce steps of stages 1-8 (role `reduce`, cheap and torch-free):
//  cam_threshold_{raw,aug}  reference mode only: the CAM threshold with the best mean Dice against
//                           the valid split's GT (REFERENCE.md section 4), first best on ties;
//  stage_quality            per-stage quality against GT (slice-label accuracy, CAM Dice raw and
//                           enhanced, SAM pseudo-label Dice) gathered into the run's report data.
//                           GT here only measures; it decides nothing.
// and dispatches the reduce steps of stages 12-13: s3f_rank_r<r> (s3f_reduce.cc), evaluate_<v>
// and evaluation_summary (evaluation_reduce.cc).
#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "common/logging.h"
#include "common/metrics.h"
#include "workers/method/cam_mask.h"
#include "workers/roles/method_roles_internal.h"

namespace clisc::roles {
namespace {

struct Summary {
  int64_t cases = 0;  // with a value
  double mean = kNaN, median = kNaN, min = kNaN, max = kNaN;
};

Summary Summarize(std::vector<double> values) {
  values.erase(
      std::remove_if(values.begin(), values.end(), [](double v) { return !std::isfinite(v); }),
      values.end());
  Summary s;
  s.cases = static_cast<int64_t>(values.size());
  if (values.empty()) return s;
  std::sort(values.begin(), values.end());
  double sum = 0;
  for (double v : values) sum += v;
  s.mean = sum / values.size();
  const size_t n = values.size();
  s.median = n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
  s.min = values.front();
  s.max = values.back();
  return s;
}

nlohmann::json ToJson(const Summary& s) {
  return {
      {"cases", s.cases}, {"mean", s.mean}, {"median", s.median}, {"min", s.min}, {"max", s.max}};
}

double NumberOr(const nlohmann::json& doc, const char* key) {
  auto it = doc.find(key);
  return it != doc.end() && it->is_number() ? it->get<double>() : kNaN;
}

class ReduceRole : public worker::Role {
 public:
  StatusOr<worker::TaskOutput> Run(worker::TaskContext& context) override {
    ASSIGN_OR_RETURN(MethodTask task, MethodTask::Parse(context));
    if (context.stage().rfind("cam_threshold", 0) == 0) return Threshold(task);
    if (context.stage() == "stage_quality") return Quality(task);
    if (context.stage().rfind("s3f_rank_", 0) == 0) return RunS3fRank(task);
    if (context.stage().rfind("evaluate_", 0) == 0) return RunEvaluation(task);
    if (context.stage() == "evaluation_summary") return RunEvaluationSummary(task);
    return InvalidArgumentError("the reduce role does not run stage '" + context.stage() + "'");
  }

 private:
  StatusOr<worker::TaskOutput> Threshold(MethodTask& task) {
    const Config& config = task.config();
    const std::string variant = task.Extra("variant");
    std::vector<FloatVolume> cams;
    std::vector<LabelVolume> gts;
    std::vector<std::string> cases;
    for (const CaseInput& input : task.CaseInputs("cam_" + variant, "cam")) {
      if (!task.HasInput("prep/" + input.case_id + "/gt")) continue;
      ASSIGN_OR_RETURN(FloatVolume cam, ReadVolume<float>(input.path));
      ASSIGN_OR_RETURN(LabelVolume gt,
                       task.ReadInputVolume<uint8_t>("prep/" + input.case_id + "/gt"));
      cams.push_back(std::move(cam));
      gts.push_back(std::move(gt));
      cases.push_back(input.case_id);
    }
    if (cams.empty()) {
      return FailedPreconditionError(task.Label() +
                                     ": no valid-split case with a CAM and a GT "
                                     "to search the threshold on");
    }
    std::vector<std::pair<const FloatVolume*, const LabelVolume*>> pairs;
    for (size_t i = 0; i < cams.size(); ++i) pairs.push_back({&cams[i], &gts[i]});
    ASSIGN_OR_RETURN(method::ThresholdSearchResult result,
                     method::SearchCamThreshold(pairs, config.GetDouble("cam.threshold_search.min"),
                                                config.GetDouble("cam.threshold_search.max"),
                                                config.GetDouble("cam.threshold_search.step")));
    nlohmann::json table = nlohmann::json::array();
    for (const auto& [threshold, dice] : result.mean_dice_by_threshold) {
      table.push_back({{"threshold", threshold}, {"mean_dice", dice}});
    }
    RETURN_IF_ERROR(
        task.PublishJson("threshold", {{"threshold", result.best},
                                       {"mode", config.GetString("mode")},
                                       {"source", "GT of the valid split (reference mode)"},
                                       {"cases", cases},
                                       {"search", table}}));
    LogInfo("cam_threshold",
            {{"variant", variant}, {"threshold", result.best}, {"cases", int64_t(cases.size())}});
    return task.Finish({{"threshold", result.best}});
  }

  StatusOr<worker::TaskOutput> Quality(MethodTask& task) {
    const Config& config = task.config();
    std::map<std::string, nlohmann::json> per_case;
    std::vector<double> slice_accuracy, raw_slice_accuracy, cam_raw, cam_aug, sam;
    int64_t empty_cam = 0, slices_without_prompts = 0, dropped = 0, kept = 0;
    std::string clip_backend, sam_backend;
    for (const CaseInput& input : task.CaseInputs("clip_label", "slices")) {
      ASSIGN_OR_RETURN(nlohmann::json doc,
                       task.ReadInputJson("clip_label/" + input.case_id + "/slices"));
      if (doc.value("source", "clip") != "clip") continue;
      clip_backend = doc.value("backend", "");
      nlohmann::json& row = per_case[input.case_id];
      const nlohmann::json quality = doc.value("quality", nlohmann::json());
      row["slice_label_accuracy"] = quality.is_object() ? NumberOr(quality, "accuracy") : kNaN;
      row["slice_label_raw_accuracy"] =
          quality.is_object() ? NumberOr(quality, "raw_accuracy") : kNaN;
      slice_accuracy.push_back(row["slice_label_accuracy"].get<double>());
      raw_slice_accuracy.push_back(row["slice_label_raw_accuracy"].get<double>());
      kept += doc["counts"].value("kept", int64_t{0});
      dropped += doc["counts"].value("dropped", int64_t{0});
    }
    struct Source {
      const char* stage;
      const char* artifact;
      const char* column;
      std::vector<double>* values;
    };
    for (const Source& source : {Source{"cam_post_raw", "quality", "cam_dice_raw", &cam_raw},
                                 Source{"cam_post_aug", "quality", "cam_dice_enhanced", &cam_aug},
                                 Source{"sam_label", "info", "sam_dice", &sam}}) {
      for (const CaseInput& input : task.CaseInputs(source.stage, source.artifact)) {
        ASSIGN_OR_RETURN(nlohmann::json doc,
                         task.ReadInputJson(std::string(source.stage) + "/" + input.case_id + "/" +
                                            source.artifact));
        const double dice = NumberOr(doc, "dice");
        per_case[input.case_id][source.column] = dice;
        source.values->push_back(dice);
        if (std::string(source.stage) == "sam_label") {
          sam_backend = doc.value("backend", "");
          empty_cam += doc.value("empty_cam", false);
          slices_without_prompts +=
              doc.value("slices_without_prompts", nlohmann::json::array()).size();
        }
      }
    }
    nlohmann::json cases = nlohmann::json::array();
    for (auto& [id, row] : per_case) {
      row["case"] = id;
      cases.push_back(row);
    }
    const Summary accuracy = Summarize(slice_accuracy), raw = Summarize(cam_raw),
                  enhanced = Summarize(cam_aug), pseudo = Summarize(sam);
    nlohmann::json report = {
        {"mode", config.GetString("mode")},
        {"backends",
         {{"clip", config.GetString("clip.backend")},
          {"clip_detail", clip_backend},
          {"sam", config.GetString("sam.backend")},
          {"sam_detail", sam_backend}}},
        {"note",
         "quality is measured against GT where the case has one; GT decides nothing in "
         "unsupervised mode"},
        {"summary",
         {{"slice_label_accuracy", ToJson(accuracy)},
          {"slice_label_raw_accuracy", ToJson(Summarize(raw_slice_accuracy))},
          {"cam_dice_raw", ToJson(raw)},
          {"cam_dice_enhanced", ToJson(enhanced)},
          {"sam_dice", ToJson(pseudo)},
          {"kept_slices", kept},
          {"dropped_slices", dropped},
          {"empty_cam_cases", empty_cam},
          {"slices_without_prompts", slices_without_prompts}}},
        {"cases", cases}};
    RETURN_IF_ERROR(task.PublishJson("report", report));
    LogInfo("stage_quality", {{"mode", config.GetString("mode")},
                              {"slice_label_accuracy", accuracy.mean},
                              {"cam_dice_raw", raw.mean},
                              {"cam_dice_enhanced", enhanced.mean},
                              {"sam_dice", pseudo.mean},
                              {"empty_cam_cases", empty_cam}});
    return task.Finish({{"slice_label_accuracy", accuracy.mean},
                        {"cam_dice_raw", raw.mean},
                        {"cam_dice_enhanced", enhanced.mean},
                        {"sam_dice", pseudo.mean}});
  }
};

}  // namespace

std::unique_ptr<worker::Role> MakeReduceRole() { return std::make_unique<ReduceRole>(); }

}  // namespace clisc::roles
