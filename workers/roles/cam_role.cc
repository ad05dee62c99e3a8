// Stages 2-7 (cam): the slice classifier's training (global: raw on CLIP labels, aug on the AMDA
// slices), its LayerCAMs per case, and their binarization and post-processing, with AMDA's
// masked slice set made from the raw CAM (METHOD.md "CAM", "AMDA").
//
// Supervision: in unsupervised mode nothing here reads GT except the quality log. In reference
// mode the valid split's GT-labelled slices select the classifier epoch, CAMs are kept only on
// slices whose GT slice has tumor, and the threshold comes from the GT search of the reduce stage,
// as the reference code does; every artifact records the mode.
#include <nlohmann/json.hpp>
#include <random>

#include "common/logging.h"
#include "common/metrics.h"
#include "common/pil_resample.h"
#include "common/sha256.h"
#include "workers/method/amda.h"
#include "workers/method/axial_slices.h"
#include "workers/method/cam_mask.h"
#include "workers/method/sam_prompts.h"
#include "workers/roles/method_roles_internal.h"

namespace clisc::roles {
namespace {

// "raw" or "aug" from the params; the stage names carry it too.
StatusOr<std::string> Variant(const MethodTask& task) {
  std::string variant = task.Extra("variant");
  if (variant != "raw" && variant != "aug") {
    return InvalidArgumentError(task.Label() + ": params.variant must be raw or aug");
  }
  return variant;
}

bool SliceHasForeground(const LabelVolume& mask, int64_t z) {
  const int64_t plane = mask.size().x * mask.size().y;
  const uint8_t* begin = mask.data() + z * plane;
  return std::any_of(begin, begin + plane, [](uint8_t v) { return v != 0; });
}

// The training images of one clip_label artifact's kept slices.
Status AppendLabelledSlices(const nlohmann::json& slices_doc, const FloatVolume& image, int size,
                            std::vector<LabelledSlice>& out) {
  for (const nlohmann::json& row : slices_doc.at("slices")) {
    if (!row.value("kept", false) || !row["label"].is_number_integer()) continue;
    const int64_t z = row["z"].get<int64_t>();
    if (z < 0 || z >= image.size().z) return DataLossError("slice index out of the volume");
    out.push_back({method::ClassifierTrainingImage(method::AxialSlice(image, z), size),
                   row["label"].get<int>()});
  }
  return OkStatus();
}

// The AMDA slice set of one case: a [count, size, size] uint8 volume plus its index.
Status AppendAmdaSlices(const LabelVolume& stack, const nlohmann::json& index, int size,
                        std::vector<LabelledSlice>& out) {
  const size_t plane = static_cast<size_t>(size) * size;
  if (stack.size().x != size || stack.size().y != size) {
    return DataLossError("AMDA slices are not " + std::to_string(size) + " pixels square");
  }
  int64_t i = 0;
  for (const nlohmann::json& row : index.at("slices")) {
    if (i >= stack.size().z) return DataLossError("AMDA index lists more slices than stored");
    const uint8_t* begin = stack.data() + i * plane;
    out.push_back({std::vector<uint8_t>(begin, begin + plane), row.at("label").get<int>()});
    ++i;
  }
  return OkStatus();
}

class CamRole : public worker::Role {
 public:
  explicit CamRole(const MethodBackends& backends) : backends_(backends) {}

  StatusOr<worker::TaskOutput> Run(worker::TaskContext& context) override {
    ASSIGN_OR_RETURN(MethodTask task, MethodTask::Parse(context));
    ASSIGN_OR_RETURN(std::string variant, Variant(task));
    const std::string& stage = context.stage();
    if (stage.rfind("train_classifier", 0) == 0) return Train(task, variant);
    if (stage.rfind("cam_post", 0) == 0) return Postprocess(task, variant);
    if (stage.rfind("cam", 0) == 0) return Cams(task, variant);
    return InvalidArgumentError("the cam role does not run stage '" + stage + "'");
  }

 private:
  StatusOr<worker::TaskOutput> Train(MethodTask& task, const std::string& variant) {
    const Config& config = task.config();
    const int size = static_cast<int>(config.GetInt("classifier.image_size"));
    const std::string m0 = config.GetStringList("data.modalities").front();
    std::vector<LabelledSlice> train, valid;
    const bool union_set = variant == "aug" && config.GetString("amda.train_on") == "union";
    std::vector<CaseInput> label_inputs = task.CaseInputs("clip_label", "slices");
    for (size_t i = 0; i < label_inputs.size(); ++i) {
      if (task.context().cancelled()) return TaskCancelled(task);
      const CaseInput& input = label_inputs[i];
      ASSIGN_OR_RETURN(nlohmann::json doc,
                       task.ReadInputJson("clip_label/" + input.case_id + "/slices"));
      const bool gt_labelled = doc.value("source", "clip") == "gt";
      if (!gt_labelled && variant == "aug" && !union_set) continue;
      ASSIGN_OR_RETURN(FloatVolume image,
                       task.ReadInputVolume<float>("prep/" + input.case_id + "/image_" + m0));
      RETURN_IF_ERROR(AppendLabelledSlices(doc, image, size, gt_labelled ? valid : train));
      task.context().ReportProgress(0.02 * double(i + 1) / label_inputs.size(),
                                    "loading slices of " + input.case_id);
    }
    if (variant == "aug") {
      for (const CaseInput& input : task.CaseInputs("cam_post_raw", "amda_slices")) {
        ASSIGN_OR_RETURN(nlohmann::json index,
                         task.ReadInputJson("cam_post_raw/" + input.case_id + "/amda_index"));
        ASSIGN_OR_RETURN(LabelVolume stack, ReadVolume<uint8_t>(input.path));
        RETURN_IF_ERROR(AppendAmdaSlices(stack, index, size, train));
      }
    }
    if (train.empty()) {
      return FailedPreconditionError(task.Label() +
                                     ": no labelled training slice (every slice "
                                     "was dropped or every case failed)");
    }
    int64_t positives = 0;
    for (const LabelledSlice& s : train) positives += s.label == 1;

    ClassifierTrainingOptions options;
    options.arch = config.GetString("classifier.arch");
    options.image_size = size;
    options.head_units = static_cast<int>(config.GetInt("classifier.head_units"));
    options.head_dropout = config.GetDouble("classifier.head_dropout");
    options.global_pool = config.GetString("classifier.global_pool");
    options.lr = config.GetDouble("classifier.lr");
    options.lr_step_size = static_cast<int>(config.GetInt("classifier.lr_step_size"));
    options.lr_gamma = config.GetDouble("classifier.lr_gamma");
    options.batch_size = static_cast<int>(config.GetInt("classifier.batch_size"));
    options.epochs = static_cast<int>(config.GetInt("classifier.epochs"));
    options.seed = static_cast<uint64_t>(config.GetInt("classifier.seed"));
    options.loader_threads = static_cast<int>(config.GetInt("classifier.loader_threads"));
    options.checkpoint_every = static_cast<int>(config.GetInt("classifier.checkpoint_every"));
    options.augment.enabled = config.GetBool("classifier.augment.enabled");
    options.augment.flip = config.GetBool("classifier.augment.flip");
    options.augment.zoom_min = config.GetDouble("classifier.augment.zoom_min");
    options.augment.zoom_max = config.GetDouble("classifier.augment.zoom_max");
    options.augment.shift = config.GetDouble("classifier.augment.shift");
    options.augment.gamma = config.GetDouble("classifier.augment.gamma");
    options.augment.contrast_min = config.GetDouble("classifier.augment.contrast_min");
    options.augment.contrast_max = config.GetDouble("classifier.augment.contrast_max");
    if (auto pretrained = config.GetOptionalString("classifier.pretrained")) {
      options.pretrained = *pretrained;
    }
    options.device = task.context().device();
    options.precision = config.GetString("precision");
    // The resumable state is named after everything that decides the training (params and
    // input checksums), so a retried attempt resumes it and a changed run never does.
    std::string identity = task.context().params_json();
    for (const worker::TaskInput& input : task.context().inputs()) identity += input.sha256;
    const std::string tag = Sha256Hex(identity).substr(0, 16);
    ASSIGN_OR_RETURN(options.checkpoint_path,
                     task.ScratchPath("classifier/" + variant + "/train_state-" + tag + ".pt"));

    ASSIGN_OR_RETURN(std::unique_ptr<ClassifierEngine> engine, backends_.classifier());
    ASSIGN_OR_RETURN(std::filesystem::path model_path, task.OutputPath("model"));
    worker::TaskContext& context = task.context();
    LogInfo("classifier_training", {{"variant", variant},
                                    {"train_slices", int64_t(train.size())},
                                    {"positives", positives},
                                    {"valid_slices", int64_t(valid.size())},
                                    {"arch", options.arch},
                                    {"epochs", options.epochs}});
    StatusOr<TrainingReport> report = engine->Train(
        train, valid, options, model_path, [&context](double fraction, const std::string& message) {
          context.ReportProgress(0.02 + 0.98 * fraction, message);
          return !context.cancelled();
        });
    if (!report.ok()) return report.status();
    RETURN_IF_ERROR(task.Publish("model"));

    nlohmann::json epochs = nlohmann::json::array();
    for (const EpochReport& e : report->epochs) {
      epochs.push_back({{"epoch", e.epoch},
                        {"loss", e.loss},
                        {"train_accuracy", e.train_accuracy},
                        {"valid_accuracy", e.valid_accuracy ? nlohmann::json(*e.valid_accuracy)
                                                            : nlohmann::json(nullptr)},
                        {"lr", e.lr},
                        {"seconds", e.seconds}});
    }
    nlohmann::json log = {{"stage", task.context().stage()},
                          {"mode", config.GetString("mode")},
                          {"engine", engine->Describe()},
                          {"arch", options.arch},
                          {"augment", options.augment.enabled},
                          {"train_slices", train.size()},
                          {"train_positives", positives},
                          {"valid_slices", valid.size()},
                          {"selection", valid.empty() ? "last epoch" : "best valid accuracy (GT)"},
                          {"selected_epoch", report->selected_epoch},
                          {"resumed_after_epoch", report->resumed_after_epoch},
                          {"epochs", epochs}};
    RETURN_IF_ERROR(task.PublishJson("log", log));
    std::map<std::string, double> metrics = {{"train_slices", double(train.size())},
                                             {"resumed_after_epoch", report->resumed_after_epoch}};
    if (!report->epochs.empty()) {
      metrics["final_loss"] = report->epochs.back().loss;
      metrics["final_train_accuracy"] = report->epochs.back().train_accuracy;
    }
    return task.Finish(metrics);
  }

  StatusOr<worker::TaskOutput> Cams(MethodTask& task, const std::string& variant) {
    const Config& config = task.config();
    const bool reference = config.GetString("mode") == "reference";
    ASSIGN_OR_RETURN(FloatVolume image, task.ReadInputVolume<float>(FirstModalityInput(config)));
    std::optional<LabelVolume> gt;
    if (reference) {
      // The reference computes CAMs only on slices whose GT slice has tumor (REFERENCE.md A2).
      ASSIGN_OR_RETURN(LabelVolume volume, task.ReadInputVolume<uint8_t>("prep/gt"));
      gt = std::move(volume);
    }
    ASSIGN_OR_RETURN(std::filesystem::path model,
                     task.InputPath("train_classifier_" + variant + "/model"));
    CamOptions options;
    options.arch = config.GetString("classifier.arch");
    options.image_size = static_cast<int>(config.GetInt("classifier.image_size"));
    options.head_units = static_cast<int>(config.GetInt("classifier.head_units"));
    options.head_dropout = config.GetDouble("classifier.head_dropout");
    options.global_pool = config.GetString("classifier.global_pool");
    options.layer = config.GetString("cam.layer");
    options.device = task.context().device();
    options.precision = config.GetString("precision");
    ASSIGN_OR_RETURN(std::unique_ptr<ClassifierEngine> engine, backends_.classifier());

    FloatVolume cam = image.LikeThis<float>(0.0f);
    const int64_t depth = image.size().z;
    const size_t plane = static_cast<size_t>(image.size().x * image.size().y);
    nlohmann::json rows = nlohmann::json::array();
    int64_t predicted = 0, kept = 0;
    constexpr int64_t kChunk = 32;
    for (int64_t z0 = 0; z0 < depth; z0 += kChunk) {
      if (task.context().cancelled()) return TaskCancelled(task);
      std::vector<backends::FloatSlice> slices;
      for (int64_t z = z0; z < std::min(depth, z0 + kChunk); ++z) {
        slices.push_back(method::AxialSlice(image, z));
      }
      ASSIGN_OR_RETURN(std::vector<SliceCam> cams, engine->ComputeCams(model, slices, options));
      for (size_t i = 0; i < cams.size(); ++i) {
        const int64_t z = z0 + static_cast<int64_t>(i);
        bool keep = cams[i].predicted_tumor;
        if (gt) keep = keep && SliceHasForeground(*gt, z);
        predicted += cams[i].predicted_tumor;
        kept += keep;
        if (keep && cams[i].cam.size() == plane) {
          std::copy(cams[i].cam.begin(), cams[i].cam.end(), cam.data() + z * plane);
        }
        rows.push_back({{"z", z},
                        {"tumor_probability", cams[i].tumor_probability},
                        {"predicted_tumor", cams[i].predicted_tumor},
                        {"cam", keep}});
      }
      task.context().ReportProgress(double(std::min(depth, z0 + kChunk)) / depth, "LayerCAM");
    }
    RETURN_IF_ERROR(task.PublishVolume("cam", cam));
    nlohmann::json info = {{"stage", task.context().stage()},
                           {"case", task.context().case_id()},
                           {"mode", config.GetString("mode")},
                           {"engine", engine->Describe()},
                           {"slice_rule", reference ? "classifier says tumor and GT slice has tumor"
                                                    : "classifier says tumor"},
                           {"predicted_tumor_slices", predicted},
                           {"cam_slices", kept},
                           {"slices", rows}};
    RETURN_IF_ERROR(task.PublishJson("info", info));
    return task.Finish(
        {{"cam_slices", double(kept)}, {"predicted_tumor_slices", double(predicted)}});
  }

  StatusOr<worker::TaskOutput> Postprocess(MethodTask& task, const std::string& variant) {
    const Config& config = task.config();
    const bool reference = config.GetString("mode") == "reference";
    ASSIGN_OR_RETURN(FloatVolume cam, task.ReadInputVolume<float>("cam_" + variant + "/cam"));
    double threshold = config.GetDouble("cam.threshold");
    std::string threshold_source = "config cam.threshold";
    if (reference) {
      ASSIGN_OR_RETURN(nlohmann::json doc,
                       task.ReadInputJson("cam_threshold_" + variant + "/threshold"));
      threshold = doc.at("threshold").get<double>();
      threshold_source = "GT search on the valid split (reference mode)";
    }
    LabelVolume binary = method::BinarizeCam(cam, threshold, /*reference_uint8=*/reference);
    LabelVolume mask =
        method::PostprocessCamMask(binary, static_cast<int>(config.GetInt("cam.opening_size")),
                                   config.GetDouble("cam.min_component_fraction"));
    RETURN_IF_ERROR(task.PublishVolume("mask", mask));

    nlohmann::json quality = {{"stage", task.context().stage()},
                              {"case", task.context().case_id()},
                              {"mode", config.GetString("mode")},
                              {"threshold", threshold},
                              {"threshold_source", threshold_source},
                              {"binary_voxels", CountForegroundVoxels(binary)},
                              {"mask_voxels", CountForegroundVoxels(mask)}};
    std::map<std::string, double> metrics = {{"mask_voxels", double(CountForegroundVoxels(mask))}};
    if (task.HasInput("prep/gt")) {
      ASSIGN_OR_RETURN(LabelVolume gt, task.ReadInputVolume<uint8_t>("prep/gt"));
      const double dice = MaskDice(mask, gt);
      quality["dice"] = dice;
      quality["dice_before_post"] = MaskDice(binary, gt);
      quality["gt_voxels"] = CountForegroundVoxels(gt);
      metrics["cam_dice"] = dice;
    } else {
      quality["dice"] = nullptr;
    }
    if (variant == "raw") {
      ASSIGN_OR_RETURN(nlohmann::json amda, WriteAmdaSlices(task, cam, mask));
      quality["amda"] = amda;
      metrics["amda_slices"] = amda["count"].get<double>();
    }
    RETURN_IF_ERROR(task.PublishJson("quality", quality));
    return task.Finish(metrics);
  }

  static int64_t CountForegroundVoxels(const LabelVolume& mask) {
    int64_t n = 0;
    for (uint8_t v : mask.voxels()) n += v != 0;
    return n;
  }

  // AMDA (METHOD.md): the case's kept CLIP slices as training images, positives masked where the
  // raw CAM is high inside the CAM box, negatives masked at random; or the reference's fallback.
  StatusOr<nlohmann::json> WriteAmdaSlices(MethodTask& task, const FloatVolume& cam,
                                           const LabelVolume& mask) {
    const Config& config = task.config();
    const int size = static_cast<int>(config.GetInt("classifier.image_size"));
    const bool paper = config.GetString("amda.variant") == "paper";
    const int k = static_cast<int>(config.GetInt("amda.k"));
    const double ratio = config.GetDouble("amda.negative_mask_ratio");
    ASSIGN_OR_RETURN(FloatVolume image, task.ReadInputVolume<float>(FirstModalityInput(config)));
    ASSIGN_OR_RETURN(nlohmann::json labels, task.ReadInputJson("clip_label/slices"));
    // Seeded per case, so a case's masks do not depend on which worker or in which order it ran.
    const std::string seed_text =
        std::to_string(config.GetInt("seed")) + "/" + task.context().case_id();
    std::mt19937_64 rng(std::stoull(Sha256Hex(seed_text).substr(0, 16), nullptr, 16));
    const int width = static_cast<int>(image.size().x), height = static_cast<int>(image.size().y);

    std::vector<uint8_t> stack;
    nlohmann::json rows = nlohmann::json::array();
    int64_t positives = 0, unmasked_positives = 0;
    for (const nlohmann::json& row : labels.at("slices")) {
      if (!row.value("kept", false) || !row["label"].is_number_integer()) continue;
      const int64_t z = row["z"].get<int64_t>();
      const int label = row["label"].get<int>();
      const backends::FloatSlice slice = method::AxialSlice(image, z);
      std::vector<uint8_t> picture = method::ClassifierTrainingImage(slice, size);
      std::string how;
      if (!paper) {
        picture = method::ReferenceFallbackMask(picture);
        how = "fallback";
      } else if (label == 1) {
        ++positives;
        std::optional<method::PixelBox> box = method::TightBox(method::AxialMask(mask, z));
        if (box) {
          const backends::FloatSlice cam_slice = method::AxialSlice(cam, z);
          std::vector<float> cam_small =
              PilResize(cam_slice.values.data(), width, height, size, size, PilFilter::kBilinear);
          ASSIGN_OR_RETURN(method::PixelBox scaled, method::BoxToImage(*box, width, height, size));
          ASSIGN_OR_RETURN(picture, method::MaskPositiveSlice(picture, size, cam_small, scaled, k));
          how = "cam_box";
        } else {
          ++unmasked_positives;
          how = "no_cam";
        }
      } else {
        picture = method::MaskNegativeSlice(picture, ratio, rng);
        how = "random";
      }
      stack.insert(stack.end(), picture.begin(), picture.end());
      rows.push_back({{"z", z}, {"label", label}, {"masking", how}});
    }
    const int64_t count = static_cast<int64_t>(rows.size());
    // A volume needs one plane at least; the index says how many are real.
    LabelVolume volume(Dims{size, size, std::max<int64_t>(count, 1)}, 0);
    std::copy(stack.begin(), stack.end(), volume.data());
    RETURN_IF_ERROR(task.PublishVolume("amda_slices", volume));
    nlohmann::json index = {{"case", task.context().case_id()},
                            {"variant", config.GetString("amda.variant")},
                            {"k", k},
                            {"negative_mask_ratio", ratio},
                            {"size", size},
                            {"count", count},
                            {"slices", rows}};
    RETURN_IF_ERROR(task.PublishJson("amda_index", index));
    return nlohmann::json{
        {"count", count}, {"positives", positives}, {"positives_without_cam", unmasked_positives}};
  }

  MethodBackends backends_;
};

}  // namespace

std::unique_ptr<worker::Role> MakeCamRole(const MethodBackends& backends) {
  return std::make_unique<CamRole>(backends);
}

}  // namespace clisc::roles
