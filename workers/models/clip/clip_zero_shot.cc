#include "workers/models/clip/clip_zero_shot.h"

#include <torch/torch.h>

namespace clisc::models {

StatusOr<ClipZeroShot> ClipZeroShot::Create(Clip model, const text::ClipTokenizer& tokenizer,
                                            std::vector<std::string> prompts,
                                            const ComputeDevice& compute) {
  if (prompts.empty()) return InvalidArgumentError("CLIP zero-shot: no prompts");
  const int context_length = model->config().context_length;
  ASSIGN_OR_RETURN(const std::vector<std::vector<int32_t>> rows,
                   tokenizer.Tokenize(prompts, context_length, /*truncate=*/false));
  torch::Tensor tokens =
      torch::empty({static_cast<int64_t>(rows.size()), context_length}, torch::kInt);
  for (size_t i = 0; i < rows.size(); ++i) {
    std::copy(rows[i].begin(), rows[i].end(),
              tokens.data_ptr<int32_t>() + static_cast<int64_t>(i) * context_length);
  }
  try {
    torch::NoGradGuard no_grad;
    torch::Tensor features = model->EncodeText(tokens);
    return ClipZeroShot(std::move(model), std::move(prompts), compute, std::move(tokens),
                        std::move(features));
  } catch (const c10::Error& e) {
    return InternalError(std::string("CLIP zero-shot: encoding the prompts failed: ") +
                         e.what_without_backtrace());
  }
}

StatusOr<torch::Tensor> ClipZeroShot::Logits(const torch::Tensor& images) {
  const int64_t resolution = image_resolution();
  if (!images.defined() || images.dim() != 4 || images.size(1) != 3 ||
      images.size(2) != resolution || images.size(3) != resolution) {
    std::string got = images.defined() ? "" : "undefined";
    if (images.defined()) {
      for (int64_t d = 0; d < images.dim(); ++d)
        got += (d ? "x" : "") + std::to_string(images.size(d));
    }
    return InvalidArgumentError("CLIP zero-shot: images must be [N, 3, " +
                                std::to_string(resolution) + ", " + std::to_string(resolution) +
                                "], got " + got);
  }
  try {
    torch::NoGradGuard no_grad;
    const torch::Device device = model_->logit_scale.device();
    InferenceAutocast autocast(compute_);
    const torch::Tensor image_features = model_->EncodeImage(images.to(device));
    return model_->LogitsFromFeatures(image_features, text_features_).to(torch::kCPU);
  } catch (const c10::Error& e) {
    return InternalError(std::string("CLIP zero-shot: ") + e.what_without_backtrace());
  }
}

StatusOr<torch::Tensor> ClipZeroShot::Probabilities(const torch::Tensor& images) {
  ASSIGN_OR_RETURN(const torch::Tensor logits, Logits(images));
  return torch::softmax(logits, -1);
}

}  // namespace clisc::models
