#include "workers/models/sam/sam_prompt_encoder.h"

#include <torch/torch.h>

#include <numbers>
#include <string>

#include "workers/models/compute_device.h"
#include "workers/models/sam/sam_image_encoder.h"  // SamLayerNorm2d, shared with the neck

namespace clisc::models {

SamPositionEmbeddingRandomImpl::SamPositionEmbeddingRandomImpl(int64_t num_pos_feats,
                                                               double scale) {
  if (scale <= 0.0) scale = 1.0;
  // A persistent buffer in the official module, so it is in every checkpoint and gets loaded;
  // the random init only matters for an untrained model.
  gaussian_matrix_ = register_buffer("positional_encoding_gaussian_matrix",
                                     scale * torch::randn({2, num_pos_feats}));
}

torch::Tensor SamPositionEmbeddingRandomImpl::Encode(const torch::Tensor& coords) {
  Float32Scope float32_only;
  // The official operation order (2c - 1, @ G, * 2 pi).
  torch::Tensor projected = torch::matmul(2 * coords - 1, gaussian_matrix_);
  projected = (2 * std::numbers::pi) * projected;
  return torch::cat({torch::sin(projected), torch::cos(projected)}, -1);
}

torch::Tensor SamPositionEmbeddingRandomImpl::forward(int64_t h, int64_t w) {
  const auto options = gaussian_matrix_.options();
  // Cell centres, (i + 0.5) / h: the official cumsum of ones minus 0.5 gives the same exact
  // values.
  const torch::Tensor y = (torch::arange(h, options) + 0.5) / h;
  const torch::Tensor x = (torch::arange(w, options) + 0.5) / w;
  const torch::Tensor grid =
      torch::stack({x.view({1, w}).expand({h, w}), y.view({h, 1}).expand({h, w})}, -1);
  return Encode(grid).permute({2, 0, 1});
}

torch::Tensor SamPositionEmbeddingRandomImpl::forward_with_coords(const torch::Tensor& coords,
                                                                  int64_t image_h,
                                                                  int64_t image_w) {
  // Divide in the coordinates' own dtype, then go to float32, as the official code does.
  const torch::Tensor size =
      torch::tensor({static_cast<double>(image_w), static_cast<double>(image_h)}, coords.options());
  return Encode((coords / size).to(gaussian_matrix_.dtype()));
}

SamPromptEncoderImpl::SamPromptEncoderImpl(const SamPromptEncoderOptions& options)
    : options_(options) {
  const int64_t dim = options.embed_dim;
  TORCH_CHECK(dim > 0 && dim % 2 == 0, "SAM prompt encoder: embed_dim must be positive and ",
              "even, got ", dim);
  TORCH_CHECK(options.mask_in_chans >= 4 && options.mask_in_chans % 4 == 0,
              "SAM prompt encoder: mask_in_chans must be a positive multiple of 4, got ",
              options.mask_in_chans);
  TORCH_CHECK(options.image_embedding_size > 0 && options.input_image_size > 0,
              "SAM prompt encoder: sizes must be positive");
  // Registration order is the official attribute order, hence the state_dict order.
  pe_layer_ = register_module("pe_layer", SamPositionEmbeddingRandom(dim / 2));
  point_embeddings_list_ = register_module("point_embeddings", torch::nn::ModuleList());
  for (int i = 0; i < 4; ++i) {
    torch::nn::Embedding embedding(1, dim);
    point_embeddings_list_->push_back(embedding);
    point_embeddings_.push_back(embedding);
  }
  not_a_point_embed_ = register_module("not_a_point_embed", torch::nn::Embedding(1, dim));
  const int64_t chans = options.mask_in_chans;
  using torch::nn::Conv2dOptions;
  mask_downscaling_ = register_module(
      "mask_downscaling",
      torch::nn::Sequential(torch::nn::Conv2d(Conv2dOptions(1, chans / 4, 2).stride(2)),
                            SamLayerNorm2d(chans / 4), torch::nn::GELU(),
                            torch::nn::Conv2d(Conv2dOptions(chans / 4, chans, 2).stride(2)),
                            SamLayerNorm2d(chans), torch::nn::GELU(),
                            torch::nn::Conv2d(Conv2dOptions(chans, dim, 1))));
  no_mask_embed_ = register_module("no_mask_embed", torch::nn::Embedding(1, dim));
}

torch::Tensor SamPromptEncoderImpl::get_dense_pe() {
  return pe_layer_->forward(options_.image_embedding_size, options_.image_embedding_size)
      .unsqueeze(0);
}

torch::Tensor SamPromptEncoderImpl::EmbedPoints(const torch::Tensor& coords,
                                                const torch::Tensor& labels, bool pad) {
  TORCH_CHECK(coords.dim() == 3 && coords.size(2) == 2,
              "SAM prompt encoder: point coords must be [B, N, 2], got ", coords.sizes());
  TORCH_CHECK(
      labels.dim() == 2 && labels.size(0) == coords.size(0) && labels.size(1) == coords.size(1),
      "SAM prompt encoder: point labels must be [B, N] for coords ", coords.sizes(), ", got ",
      labels.sizes());
  torch::Tensor points = coords + 0.5;  // pixel centres
  torch::Tensor point_labels = labels;
  if (pad) {
    const int64_t batch = points.size(0);
    points = torch::cat({points, torch::zeros({batch, 1, 2}, points.options())}, 1);
    point_labels = torch::cat({point_labels, torch::full({batch, 1}, -1, labels.options())}, 1);
  }
  torch::Tensor embedding =
      pe_layer_->forward_with_coords(points, options_.input_image_size, options_.input_image_size);
  const torch::Tensor label = point_labels.unsqueeze(-1);
  // -1 replaces the encoding; 0 and 1 add their embedding; other labels keep the encoding alone.
  embedding = torch::where(label == -1, not_a_point_embed_->weight, embedding);
  embedding = torch::where(label == 0, embedding + point_embeddings_[0]->weight, embedding);
  embedding = torch::where(label == 1, embedding + point_embeddings_[1]->weight, embedding);
  return embedding;
}

torch::Tensor SamPromptEncoderImpl::EmbedBoxes(const torch::Tensor& boxes) {
  TORCH_CHECK(boxes.numel() % 4 == 0 && boxes.dim() >= 1 && boxes.size(-1) == 4,
              "SAM prompt encoder: boxes must be [B, 4], got ", boxes.sizes());
  const torch::Tensor corners = (boxes + 0.5).reshape({-1, 2, 2});
  const torch::Tensor embedding =
      pe_layer_->forward_with_coords(corners, options_.input_image_size, options_.input_image_size);
  return embedding + torch::cat({point_embeddings_[2]->weight, point_embeddings_[3]->weight}, 0);
}

std::pair<torch::Tensor, torch::Tensor> SamPromptEncoderImpl::forward(
    const std::optional<std::pair<torch::Tensor, torch::Tensor>>& points,
    const std::optional<torch::Tensor>& boxes, const std::optional<torch::Tensor>& masks) {
  int64_t batch = 1;
  if (points) {
    batch = points->first.size(0);
  } else if (boxes) {
    batch = boxes->size(0);
  } else if (masks) {
    batch = masks->size(0);
  }
  const int64_t dim = options_.embed_dim;
  const int64_t grid = options_.image_embedding_size;

  std::vector<torch::Tensor> parts;
  if (points) parts.push_back(EmbedPoints(points->first, points->second, /*pad=*/!boxes));
  if (boxes) {
    torch::Tensor box_tokens = EmbedBoxes(*boxes);
    TORCH_CHECK(box_tokens.size(0) == batch, "SAM prompt encoder: ", box_tokens.size(0),
                " boxes for a batch of ", batch, " prompt sets");
    parts.push_back(std::move(box_tokens));
  }
  torch::Tensor sparse = parts.empty()
                             ? torch::empty({batch, 0, dim}, no_mask_embed_->weight.options())
                         : parts.size() == 1 ? parts[0]
                                             : torch::cat(parts, 1);

  torch::Tensor dense;
  if (masks) {
    TORCH_CHECK(masks->dim() == 4 && masks->size(1) == 1 && masks->size(2) == 4 * grid &&
                    masks->size(3) == 4 * grid,
                "SAM prompt encoder: mask input must be [B, 1, ", 4 * grid, ", ", 4 * grid,
                "], got ", masks->sizes());
    dense = mask_downscaling_->forward(*masks);
  } else {
    dense = no_mask_embed_->weight.reshape({1, -1, 1, 1}).expand({batch, -1, grid, grid});
  }
  return {sparse, dense};
}

}  // namespace clisc::models
