// SAM's mask decoder (segment_anything/modeling/mask_decoder.py) with its hypernetwork MLP.
// Parameter names follow the official modules, so the "mask_decoder." entries of an official
// checkpoint load by name.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "workers/models/sam/sam_two_way_transformer.h"

namespace clisc::models {

// The official MLP of mask_decoder.py: `layers` (Linear) with ReLU between them, none after the
// last. Used for the per-mask-token hypernetworks and the IoU head.
class SamMlpImpl : public torch::nn::Module {
 public:
  SamMlpImpl(int64_t input_dim, int64_t hidden_dim, int64_t output_dim, int64_t num_layers);
  torch::Tensor forward(torch::Tensor x);

 private:
  std::vector<torch::nn::Linear> linears_;
  torch::nn::ModuleList layers_{nullptr};
};
TORCH_MODULE(SamMlp);

struct SamMaskDecoderOptions {
  int64_t transformer_dim = 256;
  int64_t num_multimask_outputs = 3;
  int64_t iou_head_depth = 3;
  int64_t iou_head_hidden_dim = 256;
  int64_t transformer_depth = 2;
  int64_t transformer_mlp_dim = 2048;
  int64_t transformer_num_heads = 8;
  int64_t attention_downsample_rate = 2;
};

// Optional record of the decoder's intermediates, for tests against the official goldens.
struct SamMaskDecoderTrace {
  SamTwoWayTransformerTrace transformer;  // output of each two-way block
  torch::Tensor hs;                       // transformer token output [B, tokens, C]
  torch::Tensor src;                      // transformer image output [B, h*w, C]
  torch::Tensor upscaled;                 // output_upscaling [B, C/8, 4h, 4w]
};

class SamMaskDecoderImpl : public torch::nn::Module {
 public:
  explicit SamMaskDecoderImpl(const SamMaskDecoderOptions& options);

  // As the official MaskDecoder.forward: image_embeddings [1 or B, C, h, w] (a single embedding
  // serves every prompt set, as the official repeat_interleave does, without copying the
  // embedding per prompt beyond the add of the dense prompt), image_pe [1, C, h, w], sparse
  // [B, n, C], dense [B, C, h, w]. Returns {masks [B, M, 4h, 4w], iou_pred [B, M]} with M = 3
  // when multimask_output (mask tokens 1..3, in token order) and 1 otherwise (token 0).
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& image_embeddings,
                                                  const torch::Tensor& image_pe,
                                                  const torch::Tensor& sparse_prompt_embeddings,
                                                  const torch::Tensor& dense_prompt_embeddings,
                                                  bool multimask_output);

  // All num_multimask_outputs + 1 masks and IoU predictions before the selection:
  // {masks [B, M+1, 4h, 4w], iou_pred [B, M+1]}. `trace`, when given, receives intermediates.
  std::pair<torch::Tensor, torch::Tensor> predict_masks(
      const torch::Tensor& image_embeddings, const torch::Tensor& image_pe,
      const torch::Tensor& sparse_prompt_embeddings, const torch::Tensor& dense_prompt_embeddings,
      SamMaskDecoderTrace* trace = nullptr);

  const SamMaskDecoderOptions& options() const { return options_; }

 private:
  SamMaskDecoderOptions options_;
  int64_t num_mask_tokens_;
  SamTwoWayTransformer transformer_{nullptr};
  torch::nn::Embedding iou_token_{nullptr};
  torch::nn::Embedding mask_tokens_{nullptr};
  torch::nn::Sequential output_upscaling_{nullptr};
  std::vector<SamMlp> hypernetworks_;
  torch::nn::ModuleList output_hypernetworks_mlps_{nullptr};
  SamMlp iou_prediction_head_{nullptr};
};
TORCH_MODULE(SamMaskDecoder);

}  // namespace clisc::models
