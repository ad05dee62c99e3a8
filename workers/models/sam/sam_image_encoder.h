// SAM's image encoder, the official ImageEncoderViT (segment_anything/modeling/image_encoder.py):
// a ViT over 16x16 patches with an absolute position embedding, blocks that alternate windowed
// and global attention with decomposed relative positions, and a convolutional neck down to the
// prompt embedding width. Module and parameter names equal the official ones, so a SAM or MedSAM
// state dict loads under "image_encoder." unchanged.
//
// Tensors inside the trunk are channels-last [B, H, W, C], as in the official code.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <utility>
#include <vector>

namespace clisc::models {

// The official constructor arguments. The defaults are vit_b's as build_sam_vit_b passes them.
struct SamImageEncoderOptions {
  int64_t img_size = 1024;
  int64_t patch_size = 16;
  int64_t in_chans = 3;
  int64_t embed_dim = 768;
  int64_t depth = 12;
  int64_t num_heads = 12;
  double mlp_ratio = 4.0;
  int64_t out_chans = 256;
  bool qkv_bias = true;
  double norm_eps = 1e-6;  // the blocks' LayerNorms (partial(nn.LayerNorm, eps=1e-6))
  bool use_abs_pos = true;
  bool use_rel_pos = true;
  int64_t window_size = 14;  // 0: every block attends globally
  std::vector<int64_t> global_attn_indexes{2, 5, 8, 11};

  int64_t grid_size() const { return img_size / patch_size; }
  int64_t head_dim() const { return embed_dim / num_heads; }
  bool IsGlobal(int64_t block) const;
};

// The official LayerNorm2d (modeling/common.py): normalizes [B, C, H, W] over C with the biased
// variance, eps inside the square root. Parameters "weight" and "bias".
class SamLayerNorm2dImpl : public torch::nn::Module {
 public:
  explicit SamLayerNorm2dImpl(int64_t num_channels, double eps = 1e-6);
  torch::Tensor forward(const torch::Tensor& x);

  torch::Tensor weight, bias;

 private:
  double eps_;
};
TORCH_MODULE(SamLayerNorm2d);

// Zero-pads [B, H, W, C] on the bottom and right to multiples of `window` and cuts it into
// [B * nH * nW, window, window, C] windows in row-major window order. Returns the padded (Hp, Wp).
std::pair<torch::Tensor, std::pair<int64_t, int64_t>> SamWindowPartition(const torch::Tensor& x,
                                                                         int64_t window);
// The inverse: stitches windows back into [B, Hp, Wp, C] and crops to (H, W).
torch::Tensor SamWindowUnpartition(const torch::Tensor& windows, int64_t window,
                                   std::pair<int64_t, int64_t> padded_hw,
                                   std::pair<int64_t, int64_t> hw);

// The official get_rel_pos: the [q_size, k_size, head_dim] table of relative-position embeddings,
// linearly resampled (align_corners=False) when `rel_pos` has not 2 * max(q, k) - 1 rows.
torch::Tensor SamGetRelPos(int64_t q_size, int64_t k_size, const torch::Tensor& rel_pos);

// The official add_decomposed_rel_pos, in place: attn [B, qh*qw, kh*kw] gets
// rel_h[b, h, w, kh] + rel_w[b, h, w, kw], computed from the unscaled queries q [B, qh*qw, dim].
void SamAddDecomposedRelPos(torch::Tensor& attn, const torch::Tensor& q,
                            const torch::Tensor& rel_pos_h, const torch::Tensor& rel_pos_w,
                            std::pair<int64_t, int64_t> q_size, std::pair<int64_t, int64_t> k_size);

// Multi-head attention over a [B, H, W, C] token grid with one fused qkv projection.
class SamAttentionImpl : public torch::nn::Module {
 public:
  // `input_size` is the grid the relative-position tables cover: the window, or the whole grid.
  SamAttentionImpl(int64_t dim, int64_t num_heads, bool qkv_bias, bool use_rel_pos,
                   std::pair<int64_t, int64_t> input_size);
  torch::Tensor forward(const torch::Tensor& x);

  torch::Tensor rel_pos_h, rel_pos_w;  // undefined without use_rel_pos
  torch::nn::Linear qkv{nullptr}, proj{nullptr};

 private:
  int64_t num_heads_;
  double scale_;
  bool use_rel_pos_;
};
TORCH_MODULE(SamAttention);

// lin1 -> GELU (exact erf form) -> lin2.
class SamMlpBlockImpl : public torch::nn::Module {
 public:
  SamMlpBlockImpl(int64_t embedding_dim, int64_t mlp_dim);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Linear lin1{nullptr}, lin2{nullptr};
};
TORCH_MODULE(SamMlpBlock);

// x = x + Attn(LN1(x)) (per window when window_size > 0), then x = x + MLP(LN2(x)).
class SamVitBlockImpl : public torch::nn::Module {
 public:
  SamVitBlockImpl(const SamImageEncoderOptions& options, int64_t window_size);
  torch::Tensor forward(const torch::Tensor& x);

  int64_t window_size() const { return window_size_; }

  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  SamAttention attn{nullptr};
  SamMlpBlock mlp{nullptr};

 private:
  int64_t window_size_;
};
TORCH_MODULE(SamVitBlock);

// The patch embedding: a conv with kernel and stride patch_size, output made channels-last.
class SamPatchEmbedImpl : public torch::nn::Module {
 public:
  SamPatchEmbedImpl(int64_t patch_size, int64_t in_chans, int64_t embed_dim);
  torch::Tensor forward(const torch::Tensor& x);  // [B, C, H, W] -> [B, H/p, W/p, embed_dim]

  torch::nn::Conv2d proj{nullptr};
};
TORCH_MODULE(SamPatchEmbed);

class SamImageEncoderImpl : public torch::nn::Module {
 public:
  explicit SamImageEncoderImpl(const SamImageEncoderOptions& options);

  // [B, in_chans, img_size, img_size] (normalized and padded) -> [B, out_chans, grid, grid].
  torch::Tensor forward(const torch::Tensor& x);

  const SamImageEncoderOptions& options() const { return options_; }
  const std::vector<SamVitBlock>& block_list() const { return block_list_; }
  std::vector<SamVitBlock>& block_list() { return block_list_; }

  torch::Tensor pos_embed;  // [1, grid, grid, embed_dim], channels-last; undefined without abs pos
  SamPatchEmbed patch_embed{nullptr};
  torch::nn::ModuleList blocks{nullptr};
  // 0: conv1x1 (no bias), 1: LayerNorm2d, 2: conv3x3 (no bias), 3: LayerNorm2d.
  torch::nn::Sequential neck{nullptr};

 private:
  SamImageEncoderOptions options_;
  std::vector<SamVitBlock> block_list_;
};
TORCH_MODULE(SamImageEncoder);

}  // namespace clisc::models
