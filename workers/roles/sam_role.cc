// Role `sam`. Stage 8 (sam_label): SAM pseudo-labels prompted by the enhanced binary CAM (METHOD.md
// "SAM prompts", REFERENCE.md section 6). Per axial slice with CAM foreground: the box, positive
// and corner-negative points of method::PromptsForSlice on the histogram-equalized uint8 slice, one
// image embedding and one decode; slices without valid points get an empty mask and a recorded
// reason. The 3D label is multiplied by the brain mask and written on the cropped grid (for
// training) and on the original grid (the deliverable). Stage 11 (s3f_score_r<r>): the same
// prompting from a round's U-Net prediction (REFERENCE.md 7.3) and its Dice with it.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "common/logging.h"
#include "common/metrics.h"
#include "common/morphology.h"
#include "common/png_writer.h"
#include "common/preprocess.h"
#include "workers/method/axial_slices.h"
#include "workers/method/sam_prompts.h"
#include "workers/roles/method_roles_internal.h"

namespace clisc::roles {
namespace {

// Gray slice, mask tinted red, box outline yellow, positive points green, negatives blue.
std::vector<uint8_t> Overlay(const backends::GrayImage& image, const backends::BinaryMask& mask,
                             const backends::Prompts& prompts) {
  const int w = image.width, h = image.height;
  std::vector<uint8_t> rgb(static_cast<size_t>(w) * h * 3);
  for (size_t i = 0; i < image.pixels.size(); ++i) {
    const uint8_t g = image.pixels[i];
    const bool on = i < mask.pixels.size() && mask.pixels[i] != 0;
    rgb[3 * i] = on ? static_cast<uint8_t>(std::min(255, g / 2 + 128)) : g;
    rgb[3 * i + 1] = on ? static_cast<uint8_t>(g / 2) : g;
    rgb[3 * i + 2] = on ? static_cast<uint8_t>(g / 2) : g;
  }
  auto put = [&](int x, int y, uint8_t r, uint8_t gr, uint8_t b) {
    if (x < 0 || y < 0 || x >= w || y >= h) return;
    const size_t i = 3 * (static_cast<size_t>(y) * w + x);
    rgb[i] = r, rgb[i + 1] = gr, rgb[i + 2] = b;
  };
  if (prompts.box) {
    const auto& b = *prompts.box;
    for (int x = int(b.x0); x <= int(b.x1); ++x)
      put(x, int(b.y0), 255, 255, 0), put(x, int(b.y1), 255, 255, 0);
    for (int y = int(b.y0); y <= int(b.y1); ++y)
      put(int(b.x0), y, 255, 255, 0), put(int(b.x1), y, 255, 255, 0);
  }
  for (const backends::PointPrompt& p : prompts.points) {
    for (int dy = -1; dy <= 1; ++dy) {
      for (int dx = -1; dx <= 1; ++dx) {
        if (p.positive)
          put(int(p.x) + dx, int(p.y) + dy, 0, 255, 0);
        else
          put(int(p.x) + dx, int(p.y) + dy, 0, 128, 255);
      }
    }
  }
  return rgb;
}

// A 3D mask from SAM, slice by slice: every axial slice where `prompt_mask` has foreground gets
// the tested prompts of that slice (method::PromptsForSlice) on its equalized uint8 image, one
// embedding and one decode. The result is multiplied by the brain mask.
struct PromptedVolume {
  LabelVolume label;
  int64_t prompt_slices = 0;                         // slices where the prompt mask has foreground
  int64_t prompted = 0;                              // of those, slices that had valid prompts
  nlohmann::json skipped = nlohmann::json::array();  // {z, reason} of the others
  int64_t overlays = 0;
  std::string backend;
};

StatusOr<PromptedVolume> SegmentFromMask(const MethodTask& task, const FloatVolume& image,
                                         const LabelVolume& brain, const LabelVolume& prompt_mask,
                                         const method::PromptOptions& options,
                                         backends::PromptSegmenter& segmenter,
                                         const std::string& overlay_dir) {
  worker::TaskContext& context = task.context();
  const bool multimask = task.config().GetBool("sam.multimask");
  std::vector<int64_t> slices;
  for (int64_t z = 0; z < prompt_mask.size().z; ++z) {
    const backends::BinaryMask m = method::AxialMask(prompt_mask, z);
    if (std::any_of(m.pixels.begin(), m.pixels.end(), [](uint8_t v) { return v != 0; })) {
      slices.push_back(z);
    }
  }
  PromptedVolume out;
  out.label = image.LikeThis<uint8_t>(0);
  out.prompt_slices = static_cast<int64_t>(slices.size());
  out.backend = segmenter.Describe();
  for (size_t i = 0; i < slices.size(); ++i) {
    if (context.cancelled()) return TaskCancelled(task);
    const int64_t z = slices[i];
    const backends::FloatSlice slice = method::AxialSlice(image, z);
    ASSIGN_OR_RETURN(method::SlicePromptResult prompts,
                     method::PromptsForSlice(slice, method::AxialMask(prompt_mask, z), options));
    if (!prompts.prompts) {
      out.skipped.push_back({{"z", z}, {"reason", prompts.skipped_reason}});
      LogWarn("sam_slice_without_prompts", {{"case", context.case_id()},
                                            {"stage", context.stage()},
                                            {"z", z},
                                            {"reason", prompts.skipped_reason}});
      continue;
    }
    const backends::GrayImage equalized = method::EqualizedSlice(slice);
    RETURN_IF_ERROR(segmenter.SetImage(equalized));
    ASSIGN_OR_RETURN(std::vector<backends::Segmentation> masks,
                     segmenter.Segment({*prompts.prompts}, multimask));
    if (masks.empty()) return InternalError(task.Label() + ": the segmenter returned no mask");
    RETURN_IF_ERROR(method::SetAxialMask(out.label, z, masks.front().mask));
    ++out.prompted;
    if (!overlay_dir.empty()) {
      ASSIGN_OR_RETURN(std::string png,
                       EncodePngRgb(equalized.width, equalized.height,
                                    Overlay(equalized, masks.front().mask, *prompts.prompts)));
      char name[32];
      std::snprintf(name, sizeof(name), "z%04lld.png", static_cast<long long>(z));
      RETURN_IF_ERROR(context.store().PutFile(overlay_dir + "/" + name, png).status());
      ++out.overlays;
    }
    context.ReportProgress(double(i + 1) / slices.size(),
                           "slice " + std::to_string(i + 1) + "/" + std::to_string(slices.size()));
  }
  for (size_t i = 0; i < out.label.voxels().size(); ++i) {
    out.label[i] = out.label[i] != 0 && brain[i] != 0 ? 1 : 0;
  }
  return out;
}

method::PromptOptions PromptOptionsFromConfig(const Config& config) {
  method::PromptOptions options;
  options.box_margin = static_cast<int>(config.GetInt("sam.box_margin"));
  options.num_positive_points = static_cast<int>(config.GetInt("sam.num_positive_points"));
  options.point_threshold = config.GetDouble("sam.point_threshold");
  options.corner_negatives = config.GetBool("sam.box_corner_negatives");
  return options;
}

class SamRole : public worker::Role {
 public:
  explicit SamRole(const MethodBackends& backends) : backends_(backends) {}

  StatusOr<worker::TaskOutput> Run(worker::TaskContext& context) override {
    ASSIGN_OR_RETURN(MethodTask task, MethodTask::Parse(context));
    if (context.stage().rfind("s3f_score_", 0) == 0) return S3fScore(task);
    if (context.stage() != "sam_label") {
      return InvalidArgumentError("the sam role does not run stage '" + context.stage() + "'");
    }
    return PseudoLabel(task);
  }

 private:
  // Stage 8: the pseudo-label prompted by the enhanced binary CAM.
  StatusOr<worker::TaskOutput> PseudoLabel(MethodTask& task) {
    worker::TaskContext& context = task.context();
    const Config& config = task.config();
    ASSIGN_OR_RETURN(FloatVolume image, task.ReadInputVolume<float>(FirstModalityInput(config)));
    ASSIGN_OR_RETURN(LabelVolume brain, task.ReadInputVolume<uint8_t>("prep/brain_mask"));
    ASSIGN_OR_RETURN(LabelVolume cam, task.ReadInputVolume<uint8_t>("cam_post_aug/mask"));
    ASSIGN_OR_RETURN(nlohmann::json crop_json, task.ReadInputJson("prep/crop"));
    ASSIGN_OR_RETURN(CropRecord crop, CropRecordFromJson(crop_json));
    if (!(cam.size() == image.size()) || !(brain.size() == image.size())) {
      return DataLossError(task.Label() + ": CAM, brain mask and image grids differ");
    }
    ASSIGN_OR_RETURN(std::unique_ptr<backends::PromptSegmenter> segmenter,
                     MakePromptSegmenter(backends_, config, context.device()));
    const method::PromptOptions options = PromptOptionsFromConfig(config);
    const std::string overlay_dir =
        config.GetBool("debug.overlays") ? "cases/" + context.case_id() + "/sam/overlays" : "";
    ASSIGN_OR_RETURN(PromptedVolume sam,
                     SegmentFromMask(task, image, brain, cam, options, *segmenter, overlay_dir));
    const int64_t voxels = CountForeground(sam.label);
    const bool empty_cam = sam.prompt_slices == 0;
    if (empty_cam) {
      LogWarn("sam_empty_cam",
              {{"case", context.case_id()},
               {"detail", "the enhanced CAM is empty: the pseudo-label is empty"}});
    }
    RETURN_IF_ERROR(task.PublishVolume("pseudo_label_cropped", sam.label));
    ASSIGN_OR_RETURN(LabelVolume original, UncropToOriginal<uint8_t>(sam.label, crop, 0));
    RETURN_IF_ERROR(task.PublishVolume("pseudo_label", original));

    nlohmann::json info = {{"stage", context.stage()},
                           {"case", context.case_id()},
                           {"mode", config.GetString("mode")},
                           {"backend", sam.backend},
                           {"box_margin", options.box_margin},
                           {"multimask", config.GetBool("sam.multimask")},
                           {"cam_slices", sam.prompt_slices},
                           {"prompted_slices", sam.prompted},
                           {"slices_without_prompts", sam.skipped},
                           {"empty_cam", empty_cam},
                           {"voxels", voxels},
                           {"overlays", sam.overlays}};
    std::map<std::string, double> metrics = {{"prompted_slices", double(sam.prompted)},
                                             {"voxels", double(voxels)},
                                             {"empty_cam", empty_cam ? 1.0 : 0.0}};
    if (task.HasInput("prep/gt")) {
      ASSIGN_OR_RETURN(LabelVolume gt, task.ReadInputVolume<uint8_t>("prep/gt"));
      const double dice = MaskDice(sam.label, gt);
      info["dice"] = dice;
      metrics["sam_dice"] = dice;
    } else {
      info["dice"] = nullptr;
    }
    RETURN_IF_ERROR(task.PublishJson("info", info));
    return task.Finish(metrics);
  }

  // Stage 11 (S3F): SAM prompted by the round's prediction with box margin 0 and the +1e-6
  // normalization of the reference's step3-3, and the Dice of that mask with the prediction. An
  // empty prediction scores 0 (recorded) and so ranks last.
  StatusOr<worker::TaskOutput> S3fScore(MethodTask& task) {
    worker::TaskContext& context = task.context();
    const Config& config = task.config();
    const std::string round = task.Extra("variant");
    ASSIGN_OR_RETURN(FloatVolume image, task.ReadInputVolume<float>(FirstModalityInput(config)));
    ASSIGN_OR_RETURN(LabelVolume brain, task.ReadInputVolume<uint8_t>("prep/brain_mask"));
    ASSIGN_OR_RETURN(LabelVolume prediction,
                     task.ReadInputVolume<uint8_t>("predict_" + round + "/prediction_cropped"));
    if (!(prediction.size() == image.size()) || !(brain.size() == image.size())) {
      return DataLossError(task.Label() + ": prediction, brain mask and image grids differ");
    }
    ASSIGN_OR_RETURN(std::unique_ptr<backends::PromptSegmenter> segmenter,
                     MakePromptSegmenter(backends_, config, context.device()));
    method::PromptOptions options = PromptOptionsFromConfig(config);
    options.box_margin = 0;
    options.normalize_eps = 1e-6;
    const std::string overlay_dir =
        config.GetBool("debug.overlays")
            ? "cases/" + context.case_id() + "/s3f_" + round + "/overlays"
            : "";
    ASSIGN_OR_RETURN(PromptedVolume sam, SegmentFromMask(task, image, brain, prediction, options,
                                                         *segmenter, overlay_dir));
    const int64_t prediction_voxels = CountForeground(prediction);
    const bool empty_prediction = prediction_voxels == 0;
    ASSIGN_OR_RETURN(OverlapCounts counts, CountOverlap(sam.label, prediction));
    const double score = empty_prediction ? 0.0 : DiceFromCounts(counts, 0.0);
    nlohmann::json doc = {{"stage", context.stage()},
                          {"case", context.case_id()},
                          {"round", context.round()},
                          {"mode", config.GetString("mode")},
                          {"backend", sam.backend},
                          {"score", score},
                          {"empty_prediction", empty_prediction},
                          {"prediction_voxels", prediction_voxels},
                          {"sam_voxels", counts.pred},
                          {"prompted_slices", sam.prompted},
                          {"slices_without_prompts", sam.skipped}};
    RETURN_IF_ERROR(task.PublishJson("score", doc));
    return task.Finish({{"score", score}, {"empty_prediction", empty_prediction ? 1.0 : 0.0}});
  }

  MethodBackends backends_;
};

}  // namespace

std::unique_ptr<worker::Role> MakeSamRole(const MethodBackends& backends) {
  return std::make_unique<SamRole>(backends);
}

}  // namespace clisc::roles
