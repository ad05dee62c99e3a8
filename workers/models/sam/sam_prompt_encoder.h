// SAM's prompt encoder (segment_anything/modeling/prompt_encoder.py): points, boxes and a
// low-resolution mask become sparse tokens and a dense embedding for the mask decoder.
// Parameter names follow the official module, so the "prompt_encoder." entries of an official
// checkpoint load by name. The positional encodings are computed in float32 even inside a
// reduced-precision autocast scope (phases of sin/cos need the precision; the cost is nil).
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

namespace clisc::models {

// The official PositionEmbeddingRandom: random Fourier features of normalized (x, y)
// coordinates. Holds the persistent buffer `positional_encoding_gaussian_matrix` [2, C/2].
class SamPositionEmbeddingRandomImpl : public torch::nn::Module {
 public:
  explicit SamPositionEmbeddingRandomImpl(int64_t num_pos_feats, double scale = 1.0);
  // Encoding of the cell centres of an h x w grid: [C, h, w].
  torch::Tensor forward(int64_t h, int64_t w);
  // coords [B, N, 2] in input pixels (x, y), normalized by the input width and height:
  // [B, N, C].
  torch::Tensor forward_with_coords(const torch::Tensor& coords, int64_t image_h, int64_t image_w);

 private:
  // coords in [0, 1], [..., 2] -> [..., C]: [sin(2 pi (2c - 1) G), cos(...)].
  torch::Tensor Encode(const torch::Tensor& coords);
  torch::Tensor gaussian_matrix_;
};
TORCH_MODULE(SamPositionEmbeddingRandom);

struct SamPromptEncoderOptions {
  int64_t embed_dim = 256;
  int64_t image_embedding_size = 64;  // square grid (h = w)
  int64_t input_image_size = 1024;    // square padded input
  int64_t mask_in_chans = 16;
};

class SamPromptEncoderImpl : public torch::nn::Module {
 public:
  explicit SamPromptEncoderImpl(const SamPromptEncoderOptions& options);

  // points: {coords [B,N,2] float, input-frame pixels (already transformed), labels [B,N] int
  // (1 fg, 0 bg, -1 padding; any other label gets the positional encoding alone)}; boxes [B,4]
  // (or [B,1,4]) XYXY; masks [B,1,4h,4w] low-res mask logits. Returns {sparse [B, n_tokens, C],
  // dense [B, C, h, w]} exactly as the official forward: point tokens, then two box-corner
  // tokens; a (0,0)/-1 padding point is appended when points come without a box; without a mask
  // the dense embedding is no_mask_embed broadcast (an expanded view, not a copy). The batch
  // size comes from the points, else the boxes, else the masks, else 1.
  std::pair<torch::Tensor, torch::Tensor> forward(
      const std::optional<std::pair<torch::Tensor, torch::Tensor>>& points,
      const std::optional<torch::Tensor>& boxes, const std::optional<torch::Tensor>& masks);

  // The positional encoding of the image embedding grid: [1, C, h, w].
  torch::Tensor get_dense_pe();

  const SamPromptEncoderOptions& options() const { return options_; }

 private:
  torch::Tensor EmbedPoints(const torch::Tensor& coords, const torch::Tensor& labels, bool pad);
  torch::Tensor EmbedBoxes(const torch::Tensor& boxes);

  SamPromptEncoderOptions options_;
  SamPositionEmbeddingRandom pe_layer_{nullptr};
  std::vector<torch::nn::Embedding> point_embeddings_;  // 0 bg, 1 fg, 2 and 3 box corners
  torch::nn::ModuleList point_embeddings_list_{nullptr};
  torch::nn::Embedding not_a_point_embed_{nullptr};
  torch::nn::Sequential mask_downscaling_{nullptr};
  torch::nn::Embedding no_mask_embed_{nullptr};
};
TORCH_MODULE(SamPromptEncoder);

}  // namespace clisc::models
