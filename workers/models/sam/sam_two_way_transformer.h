// SAM's two-way transformer (segment_anything/modeling/transformer.py): prompt tokens and image
// tokens attend to each other in turn. Parameter names follow the official modules so official
// checkpoints load by name under "mask_decoder.transformer.".
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <cstdint>
#include <utility>
#include <vector>

namespace clisc::models {

// The official `Attention`: multi-head attention whose q/k/v projections map embedding_dim to
// embedding_dim / downsample_rate (the cross attentions use 2, halving their cost), and whose
// out_proj maps back. No dropout, no mask.
class SamDecoderAttentionImpl : public torch::nn::Module {
 public:
  SamDecoderAttentionImpl(int64_t embedding_dim, int64_t num_heads, int64_t downsample_rate = 1);
  // q [B, Nq, C], k and v [B or 1, Nk, C] -> [B, Nq, C].
  torch::Tensor forward(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v);

 private:
  int64_t num_heads_;
  torch::nn::Linear q_proj_{nullptr}, k_proj_{nullptr}, v_proj_{nullptr}, out_proj_{nullptr};
};
TORCH_MODULE(SamDecoderAttention);

// The official `MLPBlock` as the transformer uses it: lin1, ReLU, lin2.
class SamDecoderMlpBlockImpl : public torch::nn::Module {
 public:
  SamDecoderMlpBlockImpl(int64_t embedding_dim, int64_t mlp_dim);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::Linear lin1_{nullptr}, lin2_{nullptr};
};
TORCH_MODULE(SamDecoderMlpBlock);

// One `TwoWayAttentionBlock`: self-attention of the tokens, token-to-image cross attention, MLP,
// image-to-token cross attention, each followed by a residual add and a LayerNorm (eps 1e-5).
// The first block of the stack skips the positional encoding and the residual of its
// self-attention (skip_first_layer_pe), as the official one does.
class SamTwoWayAttentionBlockImpl : public torch::nn::Module {
 public:
  SamTwoWayAttentionBlockImpl(int64_t embedding_dim, int64_t num_heads, int64_t mlp_dim,
                              int64_t attention_downsample_rate, bool skip_first_layer_pe);
  // queries [B, Nq, C], keys [B, HW, C], query_pe like queries, key_pe [B or 1, HW, C].
  // Returns the updated {queries, keys}.
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& queries,
                                                  const torch::Tensor& keys,
                                                  const torch::Tensor& query_pe,
                                                  const torch::Tensor& key_pe);

 private:
  bool skip_first_layer_pe_;
  SamDecoderAttention self_attn_{nullptr};
  torch::nn::LayerNorm norm1_{nullptr};
  SamDecoderAttention cross_attn_token_to_image_{nullptr};
  torch::nn::LayerNorm norm2_{nullptr};
  SamDecoderMlpBlock mlp_{nullptr};
  torch::nn::LayerNorm norm3_{nullptr};
  torch::nn::LayerNorm norm4_{nullptr};
  SamDecoderAttention cross_attn_image_to_token_{nullptr};
};
TORCH_MODULE(SamTwoWayAttentionBlock);

// Optional record of the intermediate tensors, for tests against the official goldens.
struct SamTwoWayTransformerTrace {
  std::vector<torch::Tensor> layer_queries;  // output of each block, [B, Nq, C]
  std::vector<torch::Tensor> layer_keys;     // [B, HW, C]
};

class SamTwoWayTransformerImpl : public torch::nn::Module {
 public:
  SamTwoWayTransformerImpl(int64_t depth, int64_t embedding_dim, int64_t num_heads, int64_t mlp_dim,
                           int64_t attention_downsample_rate = 2);
  // image_embedding [B, C, h, w], image_pe [B or 1, C, h, w] (a single PE is broadcast, not
  // copied), point_embedding [B, Nq, C]. Returns {queries [B, Nq, C], keys [B, h*w, C]}: the
  // tokens after the final token-to-image attention and LayerNorm, and the image tokens.
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& image_embedding,
                                                  const torch::Tensor& image_pe,
                                                  const torch::Tensor& point_embedding,
                                                  SamTwoWayTransformerTrace* trace = nullptr);

 private:
  std::vector<SamTwoWayAttentionBlock> blocks_;
  torch::nn::ModuleList layers_{nullptr};
  SamDecoderAttention final_attn_token_to_image_{nullptr};
  torch::nn::LayerNorm norm_final_attn_{nullptr};
};
TORCH_MODULE(SamTwoWayTransformer);

}  // namespace clisc::models
