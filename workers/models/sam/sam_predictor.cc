#include "workers/models/sam/sam_predictor.h"

#include <torch/torch.h>

#include <cmath>
#include <map>
#include <string>
#include <tuple>
#include <utility>

namespace clisc::models {

namespace {

// FNV-1a over the pixels: a few milliseconds for a 1024^2 RGB image, against seconds for an
// embedding, and with the size alongside a collision is not a practical concern.
uint64_t HashBytes(const uint8_t* data, size_t size) {
  uint64_t hash = 14695981039346656037ull;
  for (size_t i = 0; i < size; ++i) {
    hash ^= data[i];
    hash *= 1099511628211ull;
  }
  return hash;
}

Status FromTorchError(const c10::Error& e, const std::string& what) {
  std::string message = e.what_without_backtrace();
  const size_t end = message.find('\n');
  if (end != std::string::npos) message.resize(end);
  if (dynamic_cast<const c10::OutOfMemoryError*>(&e) != nullptr)
    return ResourceExhaustedError(what + ": out of memory: " + message);
  return InternalError(what + ": " + message);
}

// The form of a prompt set: sets of one form share a decoder call.
using PromptForm = std::tuple<size_t, bool, bool>;

PromptForm FormOf(const SamPromptSet& set) {
  return {set.point_coords.size(), set.box.has_value(), set.mask_input.defined()};
}

}  // namespace

SamPredictor::SamPredictor(Sam model, const ComputeDevice& compute)
    : model_(std::move(model)), compute_(compute), transform_(model_->config().img_size()) {}

void SamPredictor::ResetImage() {
  features_ = torch::Tensor();
  original_size_ = input_size_ = {0, 0};
  image_hash_ = 0;
}

Status SamPredictor::SetImage(const torch::Tensor& image) {
  if (!image.defined() || image.dim() != 3 || image.size(2) != 3 ||
      image.scalar_type() != torch::kUInt8) {
    return InvalidArgumentError("SAM SetImage: expected an RGB uint8 [H, W, 3] image, got " +
                                (image.defined() ? std::string(c10::toString(image.scalar_type())) +
                                                       " " + c10::str(image.sizes())
                                                 : std::string("an undefined tensor")));
  }
  const int64_t height = image.size(0), width = image.size(1);
  const int64_t img_size = model_->config().img_size();
  const SamImageSize input_size = ResizeLongestSide::GetPreprocessShape(height, width, img_size);
  if (height == 0 || width == 0 || input_size.first == 0 || input_size.second == 0) {
    return InvalidArgumentError("SAM SetImage: a " + std::to_string(height) + "x" +
                                std::to_string(width) + " image has an empty side at " +
                                std::to_string(img_size) + " px");
  }
  try {
    const torch::Tensor pixels = image.to(torch::kCPU).contiguous();
    const uint64_t hash = HashBytes(pixels.data_ptr<uint8_t>(), pixels.numel());
    if (is_image_set() && original_size_ == SamImageSize{height, width} && hash == image_hash_)
      return OkStatus();
    ResetImage();
    c10::InferenceMode inference;
    const torch::Tensor resized = transform_.ApplyImage(pixels);
    const torch::Tensor input =
        model_->Preprocess(resized.permute({2, 0, 1}).unsqueeze(0).to(compute_.device));
    torch::Tensor features;
    {
      InferenceAutocast autocast(compute_);
      features = model_->image_encoder->forward(input);
    }
    features_ = features.to(torch::kFloat);
    original_size_ = {height, width};
    input_size_ = input_size;
    image_hash_ = hash;
    ++encoder_runs_;
    return OkStatus();
  } catch (const c10::Error& e) {
    ResetImage();
    return FromTorchError(e, "SAM SetImage");
  }
}

Status SamPredictor::CheckPromptSet(const SamPromptSet& prompts) const {
  if (prompts.point_coords.size() != prompts.point_labels.size()) {
    return InvalidArgumentError("SAM prompt: " + std::to_string(prompts.point_coords.size()) +
                                " points but " + std::to_string(prompts.point_labels.size()) +
                                " labels");
  }
  for (const auto& point : prompts.point_coords) {
    if (!std::isfinite(point[0]) || !std::isfinite(point[1]))
      return InvalidArgumentError("SAM prompt: a point coordinate is not finite");
  }
  if (prompts.box) {
    for (double v : *prompts.box) {
      if (!std::isfinite(v))
        return InvalidArgumentError("SAM prompt: a box coordinate is not finite");
    }
  }
  if (prompts.mask_input.defined()) {
    const int64_t side = model_->config().low_res_size();
    const auto sizes = prompts.mask_input.sizes();
    const bool fits =
        (sizes.size() == 3 && sizes[0] == 1 && sizes[1] == side && sizes[2] == side) ||
        (sizes.size() == 2 && sizes[0] == side && sizes[1] == side);
    if (!fits) {
      return InvalidArgumentError("SAM prompt: mask_input must be [1, " + std::to_string(side) +
                                  ", " + std::to_string(side) + "], got " + c10::str(sizes));
    }
  }
  return OkStatus();
}

const torch::Tensor& SamPredictor::DensePe() {
  if (!dense_pe_.defined()) dense_pe_ = model_->prompt_encoder->get_dense_pe();
  return dense_pe_;
}

StatusOr<SamPrediction> SamPredictor::Predict(const SamPromptSet& prompts, bool multimask_output,
                                              bool return_logits) {
  ASSIGN_OR_RETURN(std::vector<SamPrediction> out,
                   PredictBatch({prompts}, multimask_output, return_logits));
  return std::move(out.front());
}

StatusOr<std::vector<SamPrediction>> SamPredictor::PredictBatch(
    const std::vector<SamPromptSet>& prompt_sets, bool multimask_output, bool return_logits) {
  if (!is_image_set())
    return FailedPreconditionError("SAM predict: no image is set (call SetImage first)");
  for (const SamPromptSet& set : prompt_sets) RETURN_IF_ERROR(CheckPromptSet(set));
  // Indices of the sets of each form, in order of first appearance.
  std::map<PromptForm, size_t> form_index;
  std::vector<std::vector<size_t>> groups;
  for (size_t i = 0; i < prompt_sets.size(); ++i) {
    const auto [it, added] = form_index.emplace(FormOf(prompt_sets[i]), groups.size());
    if (added) groups.emplace_back();
    groups[it->second].push_back(i);
  }
  std::vector<SamPrediction> out(prompt_sets.size());
  try {
    c10::InferenceMode inference;
    for (const std::vector<size_t>& group : groups) {
      // With no prompt at all the prompt encoder makes a batch of one, so such sets go singly.
      const PromptForm form = FormOf(prompt_sets[group.front()]);
      const size_t step =
          form == PromptForm{0, false, false} ? 1 : static_cast<size_t>(max_batch_size_);
      for (size_t begin = 0; begin < group.size(); begin += step) {
        const size_t end = std::min(group.size(), begin + step);
        std::vector<const SamPromptSet*> batch;
        for (size_t j = begin; j < end; ++j) batch.push_back(&prompt_sets[group[j]]);
        std::vector<SamPrediction> decoded = DecodeBatch(batch, multimask_output, return_logits);
        for (size_t j = begin; j < end; ++j) out[group[j]] = std::move(decoded[j - begin]);
      }
    }
  } catch (const c10::Error& e) {
    return FromTorchError(e, "SAM predict");
  }
  return out;
}

std::vector<SamPrediction> SamPredictor::DecodeBatch(const std::vector<const SamPromptSet*>& sets,
                                                     bool multimask_output, bool return_logits) {
  const int64_t n = static_cast<int64_t>(sets.size());
  const SamPromptSet& first = *sets.front();
  const torch::Device device = compute_.device;

  // As the official predict: coordinates transformed in float64, then cast to float32.
  std::optional<std::pair<torch::Tensor, torch::Tensor>> points;
  if (!first.point_coords.empty()) {
    const int64_t num_points = static_cast<int64_t>(first.point_coords.size());
    torch::Tensor coords = torch::empty({n, num_points, 2}, torch::kDouble);
    torch::Tensor labels = torch::empty({n, num_points}, torch::kInt);
    auto coords_at = coords.accessor<double, 3>();
    auto labels_at = labels.accessor<int32_t, 2>();
    for (int64_t b = 0; b < n; ++b) {
      for (int64_t p = 0; p < num_points; ++p) {
        coords_at[b][p][0] = sets[b]->point_coords[p][0];
        coords_at[b][p][1] = sets[b]->point_coords[p][1];
        labels_at[b][p] = sets[b]->point_labels[p];
      }
    }
    coords = transform_.ApplyCoords(coords, original_size_).to(torch::kFloat);
    points.emplace(coords.to(device), labels.to(device));
  }
  std::optional<torch::Tensor> boxes;
  if (first.box) {
    torch::Tensor raw = torch::empty({n, 4}, torch::kDouble);
    auto raw_at = raw.accessor<double, 2>();
    for (int64_t b = 0; b < n; ++b) {
      for (int64_t k = 0; k < 4; ++k) raw_at[b][k] = (*sets[b]->box)[k];
    }
    boxes = transform_.ApplyBoxes(raw, original_size_).to(torch::kFloat).to(device);
  }
  std::optional<torch::Tensor> masks;
  if (first.mask_input.defined()) {
    const int64_t side = model_->config().low_res_size();
    std::vector<torch::Tensor> inputs;
    for (const SamPromptSet* set : sets)
      inputs.push_back(set->mask_input.to(device, torch::kFloat).reshape({1, side, side}));
    masks = torch::stack(inputs);  // [n, 1, side, side]
  }

  // The prompt encoder is cheap and its Fourier features are sensitive to precision: float32.
  const auto [sparse, dense] = model_->prompt_encoder->forward(points, boxes, masks);
  torch::Tensor low_res, iou;
  {
    InferenceAutocast autocast(compute_);
    std::tie(low_res, iou) =
        model_->mask_decoder->forward(features_, DensePe(), sparse, dense, multimask_output);
  }
  low_res = low_res.to(torch::kFloat);
  torch::Tensor full = model_->PostprocessMasks(low_res, input_size_, original_size_);
  if (!return_logits) full = full > model_->config().mask_threshold;

  full = full.to(torch::kCPU);
  low_res = low_res.to(torch::kCPU);
  iou = iou.to(torch::kCPU, torch::kFloat);
  std::vector<SamPrediction> out(sets.size());
  for (int64_t b = 0; b < n; ++b) out[b] = {full[b], iou[b], low_res[b]};
  return out;
}

}  // namespace clisc::models
