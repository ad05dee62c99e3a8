// CLIP zero-shot classification over a fixed set of prompts, as CLISC step0 does it:
// probs = softmax(model(images, tokenize(prompts))[0], dim=-1). The prompts' text features are
// computed once, at creation; each call encodes only the images.
#pragma once

#include <torch/types.h>

#include <string>
#include <vector>

#include "common/status.h"
#include "workers/models/clip/clip_model.h"
#include "workers/models/compute_device.h"
#include "workers/text/clip_tokenizer.h"

namespace clisc::models {

class ClipZeroShot {
 public:
  // Tokenizes the prompts (clip.tokenize, no truncation: a prompt over the context length is
  // INVALID_ARGUMENT) and encodes them in float32 on the model's device. Reduced precision is
  // kept for the images: the text side runs once, so its cost does not matter.
  static StatusOr<ClipZeroShot> Create(Clip model, const text::ClipTokenizer& tokenizer,
                                       std::vector<std::string> prompts,
                                       const ComputeDevice& compute);

  const std::vector<std::string>& prompts() const { return prompts_; }
  int num_prompts() const { return static_cast<int>(prompts_.size()); }
  // The side length the images must have (the model's image_resolution).
  int image_resolution() const { return model_->config().image_resolution; }
  const Clip& model() const { return model_; }

  // [P, context_length] int32 token ids and [P, embed_dim] float32 text features of the prompts.
  const torch::Tensor& prompt_tokens() const { return tokens_; }
  const torch::Tensor& text_features() const { return text_features_; }

  // images: preprocessed [N, 3, R, R] (clip_preprocess.h), any device. Runs under the compute
  // device's autocast and returns [N, P] float32 on the CPU: the logits per image, or their
  // softmax over the prompts. INVALID_ARGUMENT for a wrong shape; INTERNAL for a LibTorch error.
  StatusOr<torch::Tensor> Logits(const torch::Tensor& images);
  StatusOr<torch::Tensor> Probabilities(const torch::Tensor& images);

 private:
  ClipZeroShot(Clip model, std::vector<std::string> prompts, ComputeDevice compute,
               torch::Tensor tokens, torch::Tensor text_features)
      : model_(std::move(model)),
        prompts_(std::move(prompts)),
        compute_(compute),
        tokens_(std::move(tokens)),
        text_features_(std::move(text_features)) {}

  Clip model_;
  std::vector<std::string> prompts_;
  ComputeDevice compute_;
  torch::Tensor tokens_;
  torch::Tensor text_features_;
};

}  // namespace clisc::models
