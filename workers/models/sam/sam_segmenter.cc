#include "workers/models/sam/sam_segmenter.h"

#include <torch/torch.h>

#include <utility>

namespace clisc::models {

StatusOr<std::unique_ptr<SamSegmenter>> SamSegmenter::Load(const std::filesystem::path& checkpoint,
                                                           std::string_view model_type,
                                                           const ComputeDevice& compute,
                                                           int64_t max_batch_size) {
  ASSIGN_OR_RETURN(Sam model, LoadSam(checkpoint, model_type, compute));
  return std::make_unique<SamSegmenter>(std::move(model), checkpoint, compute, max_batch_size);
}

SamSegmenter::SamSegmenter(Sam model, std::filesystem::path checkpoint,
                           const ComputeDevice& compute, int64_t max_batch_size)
    : predictor_(std::move(model), compute), checkpoint_(std::move(checkpoint)) {
  predictor_.set_max_batch_size(max_batch_size);
}

std::string SamSegmenter::Describe() const {
  return "sam " + predictor_.model()->config().model_type + " (" + checkpoint_.string() + ")";
}

Status SamSegmenter::SetImage(const backends::GrayImage& image) {
  if (image.width <= 0 || image.height <= 0 ||
      image.pixels.size() != static_cast<size_t>(image.width) * image.height) {
    return InvalidArgumentError("SAM segmenter: a " + std::to_string(image.width) + "x" +
                                std::to_string(image.height) + " image with " +
                                std::to_string(image.pixels.size()) + " pixels");
  }
  try {
    // The reference replicates the equalized slice into three equal RGB channels.
    const torch::Tensor gray = torch::from_blob(const_cast<uint8_t*>(image.pixels.data()),
                                                {image.height, image.width, 1}, torch::kUInt8);
    return predictor_.SetImage(gray.expand({image.height, image.width, 3}).contiguous());
  } catch (const c10::Error& e) {
    return InternalError(std::string("SAM segmenter: ") + e.what_without_backtrace());
  }
}

StatusOr<std::vector<backends::Segmentation>> SamSegmenter::Segment(
    const std::vector<backends::Prompts>& prompts, bool multimask) {
  if (!predictor_.is_image_set())
    return FailedPreconditionError("SAM segmenter: Segment before SetImage");
  std::vector<SamPromptSet> sets(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    const backends::Prompts& p = prompts[i];
    if (p.points.empty() && !p.box) {
      return InvalidArgumentError("SAM segmenter: prompt set " + std::to_string(i) +
                                  " has no points and no box");
    }
    for (const backends::PointPrompt& point : p.points) {
      sets[i].point_coords.push_back({point.x, point.y});
      sets[i].point_labels.push_back(point.positive ? 1 : 0);
    }
    if (p.box) sets[i].box = std::array<double, 4>{p.box->x0, p.box->y0, p.box->x1, p.box->y1};
  }
  ASSIGN_OR_RETURN(std::vector<SamPrediction> predictions,
                   predictor_.PredictBatch(sets, multimask, /*return_logits=*/false));
  const auto [height, width] = predictor_.original_size();
  std::vector<backends::Segmentation> out(predictions.size());
  try {
    for (size_t i = 0; i < predictions.size(); ++i) {
      const SamPrediction& prediction = predictions[i];
      // With three masks, the one with the highest predicted IoU (the interface's contract).
      const int64_t best = multimask ? prediction.iou_predictions.argmax().item<int64_t>() : 0;
      const torch::Tensor mask = prediction.masks[best].to(torch::kUInt8).contiguous();
      backends::Segmentation& s = out[i];
      s.mask.width = static_cast<int>(width);
      s.mask.height = static_cast<int>(height);
      s.mask.pixels.assign(mask.data_ptr<uint8_t>(), mask.data_ptr<uint8_t>() + mask.numel());
      s.score = prediction.iou_predictions[best].item<float>();
    }
  } catch (const c10::Error& e) {
    return InternalError(std::string("SAM segmenter: ") + e.what_without_backtrace());
  }
  return out;
}

}  // namespace clisc::models
