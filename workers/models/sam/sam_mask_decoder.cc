#include "workers/models/sam/sam_mask_decoder.h"

#include <torch/torch.h>

#include <string>

#include "workers/models/sam/sam_image_encoder.h"  // SamLayerNorm2d, shared with the neck

namespace clisc::models {

SamMlpImpl::SamMlpImpl(int64_t input_dim, int64_t hidden_dim, int64_t output_dim,
                       int64_t num_layers) {
  TORCH_CHECK(num_layers > 0, "SAM MLP: num_layers must be positive, got ", num_layers);
  layers_ = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < num_layers; ++i) {
    const int64_t in = i == 0 ? input_dim : hidden_dim;
    const int64_t out = i == num_layers - 1 ? output_dim : hidden_dim;
    torch::nn::Linear linear(in, out);
    layers_->push_back(linear);
    linears_.push_back(linear);
  }
}

torch::Tensor SamMlpImpl::forward(torch::Tensor x) {
  for (size_t i = 0; i < linears_.size(); ++i) {
    x = linears_[i](x);
    if (i + 1 < linears_.size()) x = torch::relu(x);
  }
  return x;
}

SamMaskDecoderImpl::SamMaskDecoderImpl(const SamMaskDecoderOptions& options)
    : options_(options), num_mask_tokens_(options.num_multimask_outputs + 1) {
  const int64_t dim = options.transformer_dim;
  TORCH_CHECK(dim > 0 && dim % 8 == 0, "SAM mask decoder: transformer_dim must be a positive ",
              "multiple of 8, got ", dim);
  TORCH_CHECK(options.num_multimask_outputs > 0, "SAM mask decoder: num_multimask_outputs must ",
              "be positive, got ", options.num_multimask_outputs);
  // Registration order is the official attribute order, hence the state_dict order.
  transformer_ = register_module(
      "transformer",
      SamTwoWayTransformer(options.transformer_depth, dim, options.transformer_num_heads,
                           options.transformer_mlp_dim, options.attention_downsample_rate));
  iou_token_ = register_module("iou_token", torch::nn::Embedding(1, dim));
  mask_tokens_ = register_module("mask_tokens", torch::nn::Embedding(num_mask_tokens_, dim));
  using torch::nn::ConvTranspose2dOptions;
  output_upscaling_ = register_module(
      "output_upscaling",
      torch::nn::Sequential(
          torch::nn::ConvTranspose2d(ConvTranspose2dOptions(dim, dim / 4, 2).stride(2)),
          SamLayerNorm2d(dim / 4), torch::nn::GELU(),
          torch::nn::ConvTranspose2d(ConvTranspose2dOptions(dim / 4, dim / 8, 2).stride(2)),
          torch::nn::GELU()));
  output_hypernetworks_mlps_ =
      register_module("output_hypernetworks_mlps", torch::nn::ModuleList());
  for (int64_t i = 0; i < num_mask_tokens_; ++i) {
    SamMlp mlp(dim, dim, dim / 8, 3);
    output_hypernetworks_mlps_->push_back(mlp);
    hypernetworks_.push_back(mlp);
  }
  iou_prediction_head_ = register_module(
      "iou_prediction_head",
      SamMlp(dim, options.iou_head_hidden_dim, num_mask_tokens_, options.iou_head_depth));
}

std::pair<torch::Tensor, torch::Tensor> SamMaskDecoderImpl::forward(
    const torch::Tensor& image_embeddings, const torch::Tensor& image_pe,
    const torch::Tensor& sparse_prompt_embeddings, const torch::Tensor& dense_prompt_embeddings,
    bool multimask_output) {
  auto [masks, iou_pred] =
      predict_masks(image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings);
  // Multimask returns tokens 1.. in token order (not sorted by IoU); otherwise token 0.
  const int64_t begin = multimask_output ? 1 : 0;
  const int64_t end = multimask_output ? num_mask_tokens_ : 1;
  return {masks.slice(1, begin, end), iou_pred.slice(1, begin, end)};
}

std::pair<torch::Tensor, torch::Tensor> SamMaskDecoderImpl::predict_masks(
    const torch::Tensor& image_embeddings, const torch::Tensor& image_pe,
    const torch::Tensor& sparse_prompt_embeddings, const torch::Tensor& dense_prompt_embeddings,
    SamMaskDecoderTrace* trace) {
  const int64_t dim = options_.transformer_dim;
  TORCH_CHECK(sparse_prompt_embeddings.dim() == 3 && sparse_prompt_embeddings.size(2) == dim,
              "SAM mask decoder: sparse prompt embeddings must be [B, n, ", dim, "], got ",
              sparse_prompt_embeddings.sizes());
  TORCH_CHECK(image_embeddings.dim() == 4 && image_embeddings.size(1) == dim,
              "SAM mask decoder: image embeddings must be [1 or B, ", dim, ", h, w], got ",
              image_embeddings.sizes());
  TORCH_CHECK(dense_prompt_embeddings.dim() == 4 && image_pe.dim() == 4,
              "SAM mask decoder: dense prompt embeddings and image_pe must be 4-D, got ",
              dense_prompt_embeddings.sizes(), " and ", image_pe.sizes());
  const int64_t batch = sparse_prompt_embeddings.size(0);
  TORCH_CHECK(image_embeddings.size(0) == 1 || image_embeddings.size(0) == batch,
              "SAM mask decoder: ", image_embeddings.size(0), " image embeddings for ", batch,
              " prompt sets (expected 1 or ", batch, ")");

  // Tokens: [iou token, mask tokens, sparse prompt tokens].
  const torch::Tensor output_tokens = torch::cat({iou_token_->weight, mask_tokens_->weight}, 0)
                                          .unsqueeze(0)
                                          .expand({batch, -1, -1});
  const torch::Tensor tokens =
      torch::cat({output_tokens, sparse_prompt_embeddings.to(output_tokens.dtype())}, 1);

  // One embedding serves all prompt sets: broadcasting it into the add of the dense prompt
  // makes the only per-prompt copy, where the official repeat_interleave makes two. The
  // positional encoding stays batch 1 and broadcasts inside the transformer.
  const torch::Tensor src = image_embeddings.expand({batch, -1, -1, -1}) + dense_prompt_embeddings;
  const int64_t h = src.size(2), w = src.size(3);

  auto [hs, image_tokens] =
      transformer_(src, image_pe, tokens, trace ? &trace->transformer : nullptr);
  const torch::Tensor iou_token_out = hs.select(1, 0);
  const torch::Tensor mask_tokens_out = hs.slice(1, 1, 1 + num_mask_tokens_);

  const torch::Tensor upscaled =
      output_upscaling_->forward(image_tokens.transpose(1, 2).reshape({batch, dim, h, w}));
  std::vector<torch::Tensor> hyper_in_list;
  hyper_in_list.reserve(hypernetworks_.size());
  for (int64_t i = 0; i < num_mask_tokens_; ++i)
    hyper_in_list.push_back(hypernetworks_[i](mask_tokens_out.select(1, i)));
  const torch::Tensor hyper_in = torch::stack(hyper_in_list, 1);  // [B, tokens, C/8]
  const int64_t up_c = upscaled.size(1), up_h = upscaled.size(2), up_w = upscaled.size(3);
  const torch::Tensor masks = torch::matmul(hyper_in, upscaled.reshape({batch, up_c, up_h * up_w}))
                                  .view({batch, -1, up_h, up_w});
  const torch::Tensor iou_pred = iou_prediction_head_(iou_token_out);
  if (trace) {
    trace->hs = hs;
    trace->src = image_tokens;
    trace->upscaled = upscaled;
  }
  return {masks, iou_pred};
}

}  // namespace clisc::models
