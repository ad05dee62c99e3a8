// Stage 1 (clip_label): labels every axial slice of a case. The scorer (CLIP, or the heuristic
// stand-in) gives prompt probabilities in batches of clip.batch_size; a slice is kept when its
// top probability reaches clip.threshold and takes the argmax label, then kept labels are
// smoothed over their neighbours (REFERENCE.md section 2). In reference mode the valid split is
// labelled from the GT instead (params.source = "gt"), as the reference labels it.
// GT, when the case has one, is only compared against for the quality log.
#include <nlohmann/json.hpp>

#include "common/logging.h"
#include "common/metrics.h"
#include "workers/method/axial_slices.h"
#include "workers/method/slice_labels.h"
#include "workers/roles/method_roles_internal.h"

namespace clisc::roles {
namespace {

// Accuracy of labels against "the GT slice has tumor", over kept slices, for raw and smoothed.
nlohmann::json SliceLabelQuality(const std::vector<method::SliceDecision>& decisions,
                                 const LabelVolume& gt) {
  int64_t kept = 0, raw_right = 0, smoothed_right = 0, tp = 0, fp = 0, tn = 0, fn = 0;
  int64_t gt_tumor_slices = 0;
  for (const method::SliceDecision& d : decisions) {
    const backends::BinaryMask slice = method::AxialMask(gt, d.z);
    bool tumor = false;
    for (uint8_t v : slice.pixels) tumor = tumor || v != 0;
    gt_tumor_slices += tumor;
    if (!d.kept) continue;
    ++kept;
    raw_right += (d.raw_label == 1) == tumor;
    smoothed_right += (d.label == 1) == tumor;
    if (d.label == 1)
      (tumor ? tp : fp)++;
    else
      (tumor ? fn : tn)++;
  }
  const double n = static_cast<double>(kept);
  return {{"kept_slices", kept},
          {"gt_tumor_slices", gt_tumor_slices},
          {"raw_accuracy", kept ? raw_right / n : kNaN},
          {"accuracy", kept ? smoothed_right / n : kNaN},
          {"confusion", {{"tp", tp}, {"fp", fp}, {"tn", tn}, {"fn", fn}}}};
}

class ClipRole : public worker::Role {
 public:
  explicit ClipRole(const MethodBackends& backends) : backends_(backends) {}

  StatusOr<worker::TaskOutput> Run(worker::TaskContext& context) override {
    ASSIGN_OR_RETURN(MethodTask task, MethodTask::Parse(context));
    const Config& config = task.config();
    const std::string source = task.Extra("source", "clip");
    std::optional<LabelVolume> gt;
    if (task.HasInput("prep/gt")) {
      ASSIGN_OR_RETURN(LabelVolume volume, task.ReadInputVolume<uint8_t>("prep/gt"));
      gt = std::move(volume);
    }
    std::vector<method::SliceDecision> decisions;
    std::string backend;
    if (source == "gt") {
      if (!gt) return FailedPreconditionError(task.Label() + ": GT slice labels need prep/gt");
      decisions = method::GroundTruthSliceLabels(*gt);
      backend = "ground truth (reference mode, valid split)";
    } else if (source == "clip") {
      ASSIGN_OR_RETURN(FloatVolume image, task.ReadInputVolume<float>(FirstModalityInput(config)));
      ASSIGN_OR_RETURN(std::unique_ptr<backends::SliceScorer> scorer,
                       MakeSliceScorer(backends_, config, context.device()));
      backend = scorer->Describe();
      const int64_t depth = image.size().z;
      const int64_t batch = std::max<int64_t>(1, config.GetInt("clip.batch_size"));
      std::vector<std::vector<float>> probabilities;
      for (int64_t z0 = 0; z0 < depth; z0 += batch) {
        if (context.cancelled()) return TaskCancelled(task);
        std::vector<backends::FloatSlice> slices;
        for (int64_t z = z0; z < std::min(depth, z0 + batch); ++z) {
          slices.push_back(method::AxialSlice(image, z));
        }
        ASSIGN_OR_RETURN(auto scores, scorer->Score(slices));
        for (auto& row : scores) probabilities.push_back(std::move(row));
        context.ReportProgress(double(probabilities.size()) / double(depth),
                               "scored " + std::to_string(probabilities.size()) + "/" +
                                   std::to_string(depth) + " slices");
      }
      decisions = method::DecideSlices(probabilities, config.GetDouble("clip.threshold"));
      method::SmoothingOptions smoothing;
      smoothing.window = static_cast<int>(config.GetInt("clip.smoothing.window"));
      smoothing.max_gap = static_cast<int>(config.GetInt("clip.smoothing.max_gap"));
      smoothing.quorum = static_cast<int>(config.GetInt("clip.smoothing.quorum"));
      method::SmoothSliceLabels(decisions, smoothing);
    } else {
      return InvalidArgumentError(task.Label() + ": params.source must be clip or gt, not '" +
                                  source + "'");
    }

    int64_t kept = 0, tumor = 0;
    nlohmann::json rows = nlohmann::json::array();
    for (const method::SliceDecision& d : decisions) {
      kept += d.kept;
      tumor += d.kept && d.label == 1;
      rows.push_back({{"z", d.z},
                      {"probabilities", d.probabilities},
                      {"raw_label", d.raw_label},
                      {"kept", d.kept},
                      {"label", d.kept ? nlohmann::json(d.label) : nlohmann::json(nullptr)}});
    }
    nlohmann::json quality = gt ? SliceLabelQuality(decisions, *gt) : nlohmann::json(nullptr);
    nlohmann::json document = {{"stage", context.stage()},
                               {"case", context.case_id()},
                               {"split", task.Extra("split", "train")},
                               {"mode", config.GetString("mode")},
                               {"source", source},
                               {"backend", backend},
                               {"prompts", config.GetStringList("clip.prompts")},
                               {"threshold", config.GetDouble("clip.threshold")},
                               {"counts",
                                {{"slices", decisions.size()},
                                 {"kept", kept},
                                 {"tumor", tumor},
                                 {"normal", kept - tumor},
                                 {"dropped", static_cast<int64_t>(decisions.size()) - kept}}},
                               {"quality", quality},
                               {"slices", rows}};
    RETURN_IF_ERROR(task.PublishJson("slices", document));
    std::map<std::string, double> metrics = {
        {"slices", double(decisions.size())}, {"kept", double(kept)}, {"tumor", double(tumor)}};
    if (gt && quality["accuracy"].is_number()) {
      metrics["slice_label_accuracy"] = quality["accuracy"].get<double>();
    }
    LogInfo("clip_labels", {{"case", context.case_id()},
                            {"backend", backend},
                            {"slices", int64_t(decisions.size())},
                            {"kept", kept},
                            {"tumor", tumor}});
    return task.Finish(metrics);
  }

 private:
  MethodBackends backends_;
};

}  // namespace

std::unique_ptr<worker::Role> MakeClipRole(const MethodBackends& backends) {
  return std::make_unique<ClipRole>(backends);
}

}  // namespace clisc::roles
