// Stage 0 (prep): validates and preprocesses one case (common/preprocess.h) and writes it into
// the artifact store: one float image per modality (uncompressed, its own stem), the brain mask,
// the whole-tumor GT when the case has a seg (read only by quality logs and evaluation), and the
// crop record that maps every later output back onto the original grid.
#include <nlohmann/json.hpp>

#include "common/brats_layout.h"
#include "common/preprocess.h"
#include "workers/roles/method_roles_internal.h"

namespace clisc::roles {
namespace {

class PrepRole : public worker::Role {
 public:
  StatusOr<worker::TaskOutput> Run(worker::TaskContext& context) override {
    ASSIGN_OR_RETURN(MethodTask task, MethodTask::Parse(context));
    const std::string case_dir = task.Extra("case_dir");
    if (case_dir.empty())
      return InvalidArgumentError(task.Label() + ": params.case_dir is missing");
    const std::string& id = context.case_id();
    std::optional<BratsNaming> naming = NamingOfCaseId(id);
    if (!naming) {
      return InvalidArgumentError(task.Label() + ": '" + id + "' is not a BraTS case id");
    }
    CaseFiles files = DiscoverCaseFiles(case_dir, id, *naming);
    if (!files.problems.empty()) {
      return InvalidArgumentError(task.Label() + ": " + files.problems.front());
    }
    const Config& config = task.config();
    PreprocessOptions options;
    options.modalities.clear();
    for (const std::string& name : config.GetStringList("data.modalities")) {
      ASSIGN_OR_RETURN(Modality modality, ParseModality(name));
      options.modalities.push_back(modality);
    }
    options.clip_percentile = config.GetDouble("preprocess.clip_percentile");
    options.reference_exclusive_crop = config.GetString("preprocess.crop") == "reference_exclusive";
    options.standardize = config.GetString("preprocess.normalize") == "zscore";
    options.read_seg = task.ExpectsOutput("gt");
    context.ReportProgress(0.1, "reading " + id);
    ASSIGN_OR_RETURN(PreprocessedCase prepared, PreprocessCase(files, options));
    if (context.cancelled()) return TaskCancelled(task);
    context.ReportProgress(0.6, "writing " + id);

    nlohmann::json record = CropRecordToJson(prepared.crop);
    nlohmann::json stats = nlohmann::json::array();
    for (size_t i = 0; i < prepared.images.size(); ++i) {
      const std::string name(ModalityName(prepared.modalities[i]));
      RETURN_IF_ERROR(task.PublishVolume("image_" + name, prepared.images[i]));
      const IntensityStats& s = prepared.stats[i];
      stats.push_back({{"modality", name},
                       {"clip_low", s.clip_low},
                       {"clip_high", s.clip_high},
                       {"mean", s.mean},
                       {"std", s.std},
                       {"constant", s.constant}});
    }
    record["intensity"] = stats;
    record["case"] = id;
    record["mode"] = config.GetString("mode");
    RETURN_IF_ERROR(task.PublishVolume("brain_mask", prepared.brain_mask));
    if (task.ExpectsOutput("gt")) {
      if (!prepared.whole_tumor) {
        return FailedPreconditionError(task.Label() +
                                       ": the plan expects a GT but the case has "
                                       "no readable seg file");
      }
      RETURN_IF_ERROR(task.PublishVolume("gt", *prepared.whole_tumor));
    }
    RETURN_IF_ERROR(task.PublishJson("crop", record));
    const Dims size = prepared.brain_mask.size();
    return task.Finish(
        {{"crop_x", double(size.x)}, {"crop_y", double(size.y)}, {"crop_z", double(size.z)}});
  }
};

}  // namespace

std::unique_ptr<worker::Role> MakePrepRole() { return std::make_unique<PrepRole>(); }

}  // namespace clisc::roles
