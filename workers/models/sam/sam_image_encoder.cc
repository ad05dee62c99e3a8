#include "workers/models/sam/sam_image_encoder.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <string>

namespace clisc::models {

namespace F = torch::nn::functional;

namespace {

// Global attention at 1024 px has 4096 tokens, so one head's logits are 64 MiB in float32 and
// all of vit_h's 16 heads would need 1 GiB, twice over across the softmax. Heads are attended in
// groups that keep the logits of one group under this many elements; each head's arithmetic is
// the same either way, so the grouping does not change results.
constexpr int64_t kMaxAttentionLogits = int64_t{1} << 26;

}  // namespace

bool SamImageEncoderOptions::IsGlobal(int64_t block) const {
  return std::find(global_attn_indexes.begin(), global_attn_indexes.end(), block) !=
         global_attn_indexes.end();
}

SamLayerNorm2dImpl::SamLayerNorm2dImpl(int64_t num_channels, double eps) : eps_(eps) {
  weight = register_parameter("weight", torch::ones({num_channels}));
  bias = register_parameter("bias", torch::zeros({num_channels}));
}

torch::Tensor SamLayerNorm2dImpl::forward(const torch::Tensor& x) {
  const torch::Tensor centered = x - x.mean(1, /*keepdim=*/true);
  const torch::Tensor variance = centered.pow(2).mean(1, /*keepdim=*/true);
  const torch::Tensor normalized = centered / torch::sqrt(variance + eps_);
  return weight.view({-1, 1, 1}) * normalized + bias.view({-1, 1, 1});
}

std::pair<torch::Tensor, std::pair<int64_t, int64_t>> SamWindowPartition(const torch::Tensor& x,
                                                                         int64_t window) {
  const int64_t batch = x.size(0), height = x.size(1), width = x.size(2), channels = x.size(3);
  const int64_t pad_h = (window - height % window) % window;
  const int64_t pad_w = (window - width % window) % window;
  torch::Tensor padded = x;
  if (pad_h > 0 || pad_w > 0) padded = F::pad(x, F::PadFuncOptions({0, 0, 0, pad_w, 0, pad_h}));
  const int64_t padded_h = height + pad_h, padded_w = width + pad_w;
  torch::Tensor windows =
      padded.reshape({batch, padded_h / window, window, padded_w / window, window, channels})
          .permute({0, 1, 3, 2, 4, 5})
          .contiguous()
          .view({-1, window, window, channels});
  return {windows, {padded_h, padded_w}};
}

torch::Tensor SamWindowUnpartition(const torch::Tensor& windows, int64_t window,
                                   std::pair<int64_t, int64_t> padded_hw,
                                   std::pair<int64_t, int64_t> hw) {
  const auto [padded_h, padded_w] = padded_hw;
  const auto [height, width] = hw;
  const int64_t batch = windows.size(0) / (padded_h * padded_w / window / window);
  torch::Tensor x =
      windows.reshape({batch, padded_h / window, padded_w / window, window, window, -1})
          .permute({0, 1, 3, 2, 4, 5})
          .contiguous()
          .view({batch, padded_h, padded_w, -1});
  if (padded_h > height || padded_w > width)
    x = x.slice(1, 0, height).slice(2, 0, width).contiguous();
  return x;
}

torch::Tensor SamGetRelPos(int64_t q_size, int64_t k_size, const torch::Tensor& rel_pos) {
  const int64_t max_rel_dist = 2 * std::max(q_size, k_size) - 1;
  torch::Tensor table = rel_pos;
  if (rel_pos.size(0) != max_rel_dist) {
    table = F::interpolate(rel_pos.reshape({1, rel_pos.size(0), -1}).permute({0, 2, 1}),
                           F::InterpolateFuncOptions()
                               .size(std::vector<int64_t>{max_rel_dist})
                               .mode(torch::kLinear)
                               .align_corners(false));
    table = table.reshape({-1, max_rel_dist}).permute({1, 0});
  }
  // As the official code: integer aranges times Python floats give float32 coordinates, which
  // are then truncated to indices.
  const double q_scale = std::max(static_cast<double>(k_size) / q_size, 1.0);
  const double k_scale = std::max(static_cast<double>(q_size) / k_size, 1.0);
  const torch::Tensor q_coords = torch::arange(q_size).unsqueeze(1) * q_scale;
  const torch::Tensor k_coords = torch::arange(k_size).unsqueeze(0) * k_scale;
  const torch::Tensor relative = (q_coords - k_coords) + static_cast<double>(k_size - 1) * k_scale;
  return table.index({relative.to(torch::kLong).to(table.device())});
}

void SamAddDecomposedRelPos(torch::Tensor& attn, const torch::Tensor& q,
                            const torch::Tensor& rel_pos_h, const torch::Tensor& rel_pos_w,
                            std::pair<int64_t, int64_t> q_size,
                            std::pair<int64_t, int64_t> k_size) {
  const auto [q_h, q_w] = q_size;
  const auto [k_h, k_w] = k_size;
  const torch::Tensor table_h = SamGetRelPos(q_h, k_h, rel_pos_h);
  const torch::Tensor table_w = SamGetRelPos(q_w, k_w, rel_pos_w);
  const int64_t batch = q.size(0), dim = q.size(2);
  const torch::Tensor grid_q = q.reshape({batch, q_h, q_w, dim});
  const torch::Tensor rel_h = torch::einsum("bhwc,hkc->bhwk", {grid_q, table_h});
  const torch::Tensor rel_w = torch::einsum("bhwc,wkc->bhwk", {grid_q, table_w});
  // Two broadcast adds in place rather than one [B, qh, qw, kh, kw] bias tensor: the same sum,
  // (attn + rel_h) + rel_w, as the official expression, without a second logits-sized buffer.
  torch::Tensor grid_attn = attn.view({batch, q_h, q_w, k_h, k_w});
  grid_attn.add_(rel_h.unsqueeze(4)).add_(rel_w.unsqueeze(3));
}

SamAttentionImpl::SamAttentionImpl(int64_t dim, int64_t num_heads, bool qkv_bias, bool use_rel_pos,
                                   std::pair<int64_t, int64_t> input_size)
    : num_heads_(num_heads), use_rel_pos_(use_rel_pos) {
  const int64_t head_dim = dim / num_heads;
  scale_ = std::pow(static_cast<double>(head_dim), -0.5);  // head_dim**-0.5, as official
  // Registration order follows the official state dict: own parameters before children.
  if (use_rel_pos) {
    rel_pos_h = register_parameter("rel_pos_h", torch::zeros({2 * input_size.first - 1, head_dim}));
    rel_pos_w =
        register_parameter("rel_pos_w", torch::zeros({2 * input_size.second - 1, head_dim}));
  }
  qkv = register_module("qkv",
                        torch::nn::Linear(torch::nn::LinearOptions(dim, 3 * dim).bias(qkv_bias)));
  proj = register_module("proj", torch::nn::Linear(dim, dim));
}

torch::Tensor SamAttentionImpl::forward(const torch::Tensor& x) {
  const int64_t batch = x.size(0), height = x.size(1), width = x.size(2);
  const int64_t tokens = height * width;
  const int64_t groups = batch * num_heads_;
  // [B, HW, 3, heads, hd] -> [3, B * heads, HW, hd]
  const torch::Tensor qkv_all = qkv->forward(x)
                                    .reshape({batch, tokens, 3, num_heads_, -1})
                                    .permute({2, 0, 3, 1, 4})
                                    .reshape({3, groups, tokens, -1});
  const torch::Tensor q = qkv_all[0], k = qkv_all[1], v = qkv_all[2];

  auto attend = [&](int64_t begin, int64_t end) {
    const torch::Tensor q_part = q.slice(0, begin, end);
    torch::Tensor logits = torch::matmul(q_part * scale_, k.slice(0, begin, end).transpose(-2, -1));
    if (use_rel_pos_)
      SamAddDecomposedRelPos(logits, q_part, rel_pos_h, rel_pos_w, {height, width},
                             {height, width});
    return torch::matmul(logits.softmax(-1), v.slice(0, begin, end));
  };
  const int64_t step = std::max<int64_t>(1, kMaxAttentionLogits / (tokens * tokens));
  torch::Tensor out;
  if (step >= groups) {
    out = attend(0, groups);
  } else {
    std::vector<torch::Tensor> parts;
    for (int64_t begin = 0; begin < groups; begin += step)
      parts.push_back(attend(begin, std::min(groups, begin + step)));
    out = torch::cat(parts);
  }
  out = out.view({batch, num_heads_, height, width, -1})
            .permute({0, 2, 3, 1, 4})
            .reshape({batch, height, width, -1});
  return proj->forward(out);
}

SamMlpBlockImpl::SamMlpBlockImpl(int64_t embedding_dim, int64_t mlp_dim) {
  lin1 = register_module("lin1", torch::nn::Linear(embedding_dim, mlp_dim));
  lin2 = register_module("lin2", torch::nn::Linear(mlp_dim, embedding_dim));
}

torch::Tensor SamMlpBlockImpl::forward(const torch::Tensor& x) {
  return lin2->forward(torch::gelu(lin1->forward(x)));
}

SamVitBlockImpl::SamVitBlockImpl(const SamImageEncoderOptions& options, int64_t window_size)
    : window_size_(window_size) {
  const int64_t dim = options.embed_dim;
  const auto layer_norm = [&] {
    return torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(options.norm_eps));
  };
  const int64_t grid = options.grid_size();
  const std::pair<int64_t, int64_t> rel_pos_size =
      window_size == 0 ? std::pair{grid, grid} : std::pair{window_size, window_size};
  norm1 = register_module("norm1", layer_norm());
  attn = register_module("attn", SamAttention(dim, options.num_heads, options.qkv_bias,
                                              options.use_rel_pos, rel_pos_size));
  norm2 = register_module("norm2", layer_norm());
  mlp = register_module(
      "mlp", SamMlpBlock(dim, static_cast<int64_t>(static_cast<double>(dim) * options.mlp_ratio)));
}

torch::Tensor SamVitBlockImpl::forward(const torch::Tensor& x) {
  torch::Tensor h = norm1->forward(x);
  if (window_size_ > 0) {
    const int64_t height = h.size(1), width = h.size(2);
    auto [windows, padded_hw] = SamWindowPartition(h, window_size_);
    h = SamWindowUnpartition(attn->forward(windows), window_size_, padded_hw, {height, width});
  } else {
    h = attn->forward(h);
  }
  const torch::Tensor y = x + h;
  return y + mlp->forward(norm2->forward(y));
}

SamPatchEmbedImpl::SamPatchEmbedImpl(int64_t patch_size, int64_t in_chans, int64_t embed_dim) {
  proj = register_module(
      "proj", torch::nn::Conv2d(
                  torch::nn::Conv2dOptions(in_chans, embed_dim, patch_size).stride(patch_size)));
}

torch::Tensor SamPatchEmbedImpl::forward(const torch::Tensor& x) {
  return proj->forward(x).permute({0, 2, 3, 1});
}

SamImageEncoderImpl::SamImageEncoderImpl(const SamImageEncoderOptions& options)
    : options_(options) {
  const int64_t grid = options.grid_size();
  if (options.use_abs_pos)
    pos_embed = register_parameter("pos_embed", torch::zeros({1, grid, grid, options.embed_dim}));
  patch_embed = register_module(
      "patch_embed", SamPatchEmbed(options.patch_size, options.in_chans, options.embed_dim));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < options.depth; ++i) {
    SamVitBlock block(options, options.IsGlobal(i) ? 0 : options.window_size);
    blocks->push_back(block);
    block_list_.push_back(block);
  }
  const int64_t out = options.out_chans;
  neck = register_module(
      "neck",
      torch::nn::Sequential(
          torch::nn::Conv2d(torch::nn::Conv2dOptions(options.embed_dim, out, 1).bias(false)),
          SamLayerNorm2d(out),
          torch::nn::Conv2d(torch::nn::Conv2dOptions(out, out, 3).padding(1).bias(false)),
          SamLayerNorm2d(out)));
}

torch::Tensor SamImageEncoderImpl::forward(const torch::Tensor& x) {
  torch::Tensor tokens = patch_embed->forward(x);
  if (pos_embed.defined()) tokens = tokens + pos_embed;
  for (SamVitBlock& block : block_list_) tokens = block->forward(tokens);
  return neck->forward(tokens.permute({0, 3, 1, 2}));
}

}  // namespace clisc::models
