// Stages 9 and 10 (role `trainer`): the 3D U-Net of one self-training round or baseline.
//  train_unet_<variant>  trains on the train split's labels named by the plan (SAM pseudo-labels,
//                        the previous round's predictions of the cases S3F kept, or the GT of the
//                        supervised baseline), from scratch, resuming a retried attempt from its
//                        checkpoint; reference mode selects on the valid split's GT.
//  predict_<variant>     predicts one case; a train case's prediction is the next round's label
//                        (largest component kept), a test case's is evaluated by stage 13.
// Supervision: in unsupervised mode GT is read only by the supervised baseline's training and by
// the quality log of a prediction.
#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

#include "common/logging.h"
#include "common/morphology.h"
#include "common/preprocess.h"
#include "common/sha256.h"
#include "workers/roles/method_roles_internal.h"

namespace clisc::roles {
namespace {

std::array<int64_t, 3> Triple(const Config& config, std::string_view key) {
  const std::vector<int64_t> values = config.GetIntList(key);
  return {values.at(0), values.at(1), values.at(2)};
}

std::vector<std::string> SplitDevices(const std::string& devices) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= devices.size()) {
    const size_t end = std::min(devices.find(',', start), devices.size());
    if (end > start) out.push_back(devices.substr(start, end - start));
    start = end + 1;
  }
  if (out.empty()) out.push_back("cpu");
  return out;
}

// The loss points kept in the training log: every one up to 2000, then an even subsample (the
// first and last always in).
nlohmann::json LossCurve(const std::vector<UNetLossPoint>& losses) {
  constexpr size_t kMaxPoints = 2000;
  nlohmann::json out = nlohmann::json::array();
  const size_t n = losses.size();
  const size_t stride = n <= kMaxPoints ? 1 : (n + kMaxPoints - 1) / kMaxPoints;
  for (size_t i = 0; i < n; ++i) {
    if (i % stride != 0 && i + 1 != n) continue;
    out.push_back(
        {{"iteration", losses[i].iteration}, {"loss", losses[i].loss}, {"lr", losses[i].lr}});
  }
  return out;
}

class TrainerRole : public worker::Role {
 public:
  explicit TrainerRole(const MethodBackends& backends) : backends_(backends) {}

  StatusOr<worker::TaskOutput> Run(worker::TaskContext& context) override {
    ASSIGN_OR_RETURN(MethodTask task, MethodTask::Parse(context));
    if (context.stage().rfind("train_unet_", 0) == 0) return Train(task);
    if (context.stage().rfind("predict_", 0) == 0) return Predict(task);
    return InvalidArgumentError("the trainer role does not run stage '" + context.stage() + "'");
  }

 private:
  StatusOr<std::vector<std::filesystem::path>> Channels(const MethodTask& task,
                                                        const std::string& case_prefix) const {
    std::vector<std::filesystem::path> out;
    for (const std::string& m : task.config().GetStringList("data.modalities")) {
      ASSIGN_OR_RETURN(std::filesystem::path path, task.InputPath(case_prefix + "image_" + m));
      out.push_back(std::move(path));
    }
    return out;
  }

  static UNetArchitecture Architecture(const Config& config) {
    UNetArchitecture a;
    a.in_channels = static_cast<int64_t>(config.GetStringList("data.modalities").size());
    a.num_classes = config.GetInt("unet.num_classes");
    a.feature_channels = config.GetIntList("unet.feature_channels");
    a.dropout = config.GetDouble("unet.dropout");
    return a;
  }

  static UNetInferenceOptions InferenceOptions(const Config& config, const std::string& device) {
    UNetInferenceOptions o;
    o.architecture = Architecture(config);
    o.mode = config.GetString("inference.mode");
    o.patch_size = Triple(config, "inference.patch_size");
    o.overlap = config.GetDouble("inference.overlap");
    o.gaussian_sigma_scale = config.GetDouble("inference.gaussian_sigma_scale");
    o.batch_size = static_cast<int>(config.GetInt("inference.batch_size"));
    o.device = SplitDevices(device).front();
    o.precision = config.GetString("precision");
    return o;
  }

  StatusOr<worker::TaskOutput> Train(MethodTask& task) {
    const Config& config = task.config();
    worker::TaskContext& context = task.context();
    const std::string variant = task.Extra("variant");
    const std::string labels_stage = task.Extra("labels_stage");
    const std::string labels_artifact = task.Extra("labels_artifact");
    const std::string kept_from = task.Extra("kept_from");

    std::set<std::string> valid_ids;
    for (const nlohmann::json& id : task.params().value("valid_cases", nlohmann::json::array())) {
      if (id.is_string()) valid_ids.insert(id.get<std::string>());
    }
    std::optional<std::set<std::string>> kept;
    if (!kept_from.empty()) {
      ASSIGN_OR_RETURN(nlohmann::json doc, task.ReadInputJson(kept_from + "/kept"));
      kept.emplace();
      for (const nlohmann::json& id : doc.value("kept", nlohmann::json::array())) {
        kept->insert(id.get<std::string>());
      }
    }
    std::vector<UNetCaseFiles> train, valid;
    for (const CaseInput& input : task.CaseInputs(labels_stage, labels_artifact)) {
      if (valid_ids.contains(input.case_id)) continue;
      if (kept && !kept->contains(input.case_id)) continue;
      ASSIGN_OR_RETURN(std::vector<std::filesystem::path> channels,
                       Channels(task, "prep/" + input.case_id + "/"));
      train.push_back({input.case_id, std::move(channels), input.path});
    }
    for (const std::string& id : valid_ids) {
      if (!task.HasInput("prep/" + id + "/gt")) continue;
      ASSIGN_OR_RETURN(std::vector<std::filesystem::path> channels,
                       Channels(task, "prep/" + id + "/"));
      ASSIGN_OR_RETURN(std::filesystem::path gt, task.InputPath("prep/" + id + "/gt"));
      valid.push_back({id, std::move(channels), gt});
    }
    if (train.empty()) {
      return FailedPreconditionError(
          task.Label() + ": no training case (" +
          (kept ? "S3F kept none of the cases with a prediction" : "no case has a label") +
          "; labels from " + labels_stage + "/" + labels_artifact + ")");
    }

    UNetTrainingOptions options;
    options.architecture = Architecture(config);
    options.loss = config.GetString("train.loss");
    options.gce_q = config.GetDouble("train.gce_q");
    options.lr = config.GetDouble("train.lr");
    options.momentum = config.GetDouble("train.momentum");
    options.weight_decay = config.GetDouble("train.weight_decay");
    options.poly_power = config.GetDouble("train.poly_power");
    options.batch_size = static_cast<int>(config.GetInt("train.batch_size"));
    options.patch_size = Triple(config, "train.patch_size");
    options.crop_pad = config.GetString("train.crop_pad");
    options.seed = static_cast<uint64_t>(config.GetInt("train.seed"));
    options.checkpoint_every = config.GetInt("train.checkpoint_every");
    options.loader_threads = static_cast<int>(config.GetInt("train.loader_threads"));
    options.cache_bytes = config.GetInt("train.cache_mb") << 20;
    const int64_t per_epoch =
        config.GetOptionalInt("train.iterations_per_epoch")
            .value_or((static_cast<int64_t>(train.size()) + options.batch_size - 1) /
                      options.batch_size);
    options.max_iterations = config.GetOptionalInt("train.max_iterations")
                                 .value_or(config.GetInt("train.epochs") * per_epoch);
    options.devices = SplitDevices(context.device());
    options.precision = config.GetString("precision");
    options.valid = valid;
    options.validate_every = config.GetInt("train.validate_every");
    options.validation_inference = InferenceOptions(config, context.device());
    // Named after everything that decides the training (params and input checksums), so a
    // retried attempt resumes it and a changed run never does.
    std::string identity = context.params_json();
    for (const worker::TaskInput& input : context.inputs()) identity += input.sha256;
    const std::string tag = Sha256Hex(identity).substr(0, 16);
    ASSIGN_OR_RETURN(options.checkpoint_path,
                     task.ScratchPath("unet/" + variant + "/train_state-" + tag + ".pt"));

    if (!backends_.unet) {
      return FailedPreconditionError("the trainer role needs the LibTorch U-Net (clisc-torch)");
    }
    ASSIGN_OR_RETURN(std::unique_ptr<UNetEngine> engine, backends_.unet());
    ASSIGN_OR_RETURN(std::filesystem::path model_path, task.OutputPath("model"));
    LogInfo("unet_training", {{"variant", variant},
                              {"train_cases", int64_t(train.size())},
                              {"valid_cases", int64_t(valid.size())},
                              {"labels", labels_stage + "/" + labels_artifact},
                              {"iterations", options.max_iterations},
                              {"devices", context.device()}});
    StatusOr<UNetTrainingReport> report = engine->Train(
        train, options, model_path, [&context](double fraction, const std::string& message) {
          context.ReportProgress(fraction, message);
          return !context.cancelled();
        });
    if (!report.ok()) return report.status();
    RETURN_IF_ERROR(task.Publish("model"));

    nlohmann::json case_ids = nlohmann::json::array();
    for (const UNetCaseFiles& c : train) case_ids.push_back(c.id);
    nlohmann::json validations = nlohmann::json::array();
    for (const UNetValidation& v : report->validations) {
      validations.push_back({{"iteration", v.iteration}, {"mean_dice", v.mean_dice}});
    }
    const double loader_fraction =
        report->mean_step_seconds > 0
            ? report->mean_loader_wait_seconds /
                  (report->mean_step_seconds + report->mean_loader_wait_seconds)
            : 0.0;
    nlohmann::json log = {
        {"stage", context.stage()},
        {"mode", config.GetString("mode")},
        {"engine", engine->Describe()},
        {"variant", variant},
        {"round", context.round()},
        {"labels", labels_stage + "/" + labels_artifact},
        {"kept_from", kept_from.empty() ? nlohmann::json(nullptr) : nlohmann::json(kept_from)},
        {"train_cases", case_ids},
        {"valid_cases", valid.size()},
        {"devices", options.devices},
        {"iterations", report->iterations},
        {"resumed_after_iteration", report->resumed_after_iteration},
        {"selection", valid.empty() ? "last iteration" : "best valid Dice (GT, reference mode)"},
        {"selected_iteration", report->selected_iteration},
        {"seconds", report->seconds},
        {"mean_step_seconds", report->mean_step_seconds},
        {"mean_loader_wait_seconds", report->mean_loader_wait_seconds},
        {"loader_wait_fraction", loader_fraction},
        {"cache", {{"hits", report->cache_hits}, {"misses", report->cache_misses}}},
        {"validations", validations},
        {"losses", LossCurve(report->losses)}};
    RETURN_IF_ERROR(task.PublishJson("log", log));
    std::map<std::string, double> metrics = {
        {"train_cases", double(train.size())},
        {"iterations", double(report->iterations)},
        {"resumed_after_iteration", double(report->resumed_after_iteration)},
        {"step_seconds", report->mean_step_seconds},
        {"loader_wait_fraction", loader_fraction}};
    if (!report->losses.empty()) metrics["final_loss"] = report->losses.back().loss;
    return task.Finish(metrics);
  }

  StatusOr<worker::TaskOutput> Predict(MethodTask& task) {
    const Config& config = task.config();
    worker::TaskContext& context = task.context();
    const std::string variant = task.Extra("variant");
    const bool pseudo_label = task.Extra("purpose") == "pseudo_label";
    std::vector<FloatVolume> channels;
    for (const std::string& m : config.GetStringList("data.modalities")) {
      ASSIGN_OR_RETURN(FloatVolume image, task.ReadInputVolume<float>("prep/image_" + m));
      channels.push_back(std::move(image));
    }
    ASSIGN_OR_RETURN(nlohmann::json crop_json, task.ReadInputJson("prep/crop"));
    ASSIGN_OR_RETURN(CropRecord crop, CropRecordFromJson(crop_json));
    ASSIGN_OR_RETURN(std::filesystem::path model,
                     task.InputPath("train_unet_" + variant + "/model"));
    if (!backends_.unet) {
      return FailedPreconditionError("the trainer role needs the LibTorch U-Net (clisc-torch)");
    }
    ASSIGN_OR_RETURN(std::unique_ptr<UNetEngine> engine, backends_.unet());
    context.ReportProgress(0.05, "predicting " + context.case_id());
    ASSIGN_OR_RETURN(LabelVolume label,
                     engine->Predict(model, channels, InferenceOptions(config, context.device())));
    if (context.cancelled()) return TaskCancelled(task);
    const int64_t raw_voxels = CountForeground(label);
    const bool largest_component = config.GetBool(
        pseudo_label ? "inference.largest_component_pseudo" : "inference.largest_component_test");
    if (largest_component) label = KeepLargestComponent(label);
    const int64_t voxels = CountForeground(label);

    RETURN_IF_ERROR(task.PublishVolume("prediction_cropped", label));
    ASSIGN_OR_RETURN(LabelVolume original, UncropToOriginal<uint8_t>(label, crop, 0));
    RETURN_IF_ERROR(task.PublishVolume("prediction", original));
    nlohmann::json info = {{"stage", context.stage()},
                           {"case", context.case_id()},
                           {"mode", config.GetString("mode")},
                           {"engine", engine->Describe()},
                           {"variant", variant},
                           {"purpose", pseudo_label ? "pseudo_label" : "test"},
                           {"inference", config.GetString("inference.mode")},
                           {"largest_component", largest_component},
                           {"voxels_before_largest_component", raw_voxels},
                           {"voxels", voxels},
                           {"empty", voxels == 0}};
    std::map<std::string, double> metrics = {{"voxels", double(voxels)}};
    if (task.HasInput("prep/gt")) {
      ASSIGN_OR_RETURN(LabelVolume gt, task.ReadInputVolume<uint8_t>("prep/gt"));
      const double dice = MaskDice(label, gt);
      info["dice"] = dice;
      metrics["dice"] = dice;
    } else {
      info["dice"] = nullptr;
    }
    if (voxels == 0) {
      LogWarn("unet_empty_prediction", {{"case", context.case_id()}, {"variant", variant}});
    }
    RETURN_IF_ERROR(task.PublishJson("info", info));
    return task.Finish(metrics);
  }

  MethodBackends backends_;
};

}  // namespace

std::unique_ptr<worker::Role> MakeTrainerRole(const MethodBackends& backends) {
  return std::make_unique<TrainerRole>(backends);
}

}  // namespace clisc::roles
