#include "workers/models/sam/sam_two_way_transformer.h"

#include <torch/torch.h>

#include <cmath>
#include <string>

namespace clisc::models {
namespace {

// [B, N, C] -> [B, heads, N, C / heads].
torch::Tensor SeparateHeads(const torch::Tensor& x, int64_t num_heads) {
  const int64_t b = x.size(0), n = x.size(1), c = x.size(2);
  return x.reshape({b, n, num_heads, c / num_heads}).transpose(1, 2);
}

// [B, heads, N, c] -> [B, N, heads * c].
torch::Tensor RecombineHeads(const torch::Tensor& x) {
  const int64_t b = x.size(0), heads = x.size(1), n = x.size(2), c = x.size(3);
  return x.transpose(1, 2).reshape({b, n, heads * c});
}

torch::nn::LayerNorm TransformerLayerNorm(int64_t dim) {
  // torch's default eps (1e-5), unlike the 1e-6 of SAM's LayerNorm2d.
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}));
}

// CPU autocast in LibTorch 1.13 leaves layer_norm's input in bf16, which layer_norm_cpu refuses
// next to float32 weights; CUDA autocast would upcast it. Normalizing in the weights' dtype does
// what CUDA autocast does, on both, and is a no-op in float32.
torch::Tensor Normalize(torch::nn::LayerNorm& norm, const torch::Tensor& x) {
  const auto dtype = norm->weight.scalar_type();
  return norm->forward(x.scalar_type() == dtype ? x : x.to(dtype));
}

}  // namespace

SamDecoderAttentionImpl::SamDecoderAttentionImpl(int64_t embedding_dim, int64_t num_heads,
                                                 int64_t downsample_rate)
    : num_heads_(num_heads) {
  TORCH_CHECK(downsample_rate > 0 && embedding_dim % downsample_rate == 0,
              "SAM attention: embedding_dim ", embedding_dim, " is not divisible by downsample ",
              "rate ", downsample_rate);
  const int64_t internal_dim = embedding_dim / downsample_rate;
  TORCH_CHECK(num_heads > 0 && internal_dim % num_heads == 0, "SAM attention: num_heads ",
              num_heads, " must divide the internal width ", internal_dim);
  q_proj_ = register_module("q_proj", torch::nn::Linear(embedding_dim, internal_dim));
  k_proj_ = register_module("k_proj", torch::nn::Linear(embedding_dim, internal_dim));
  v_proj_ = register_module("v_proj", torch::nn::Linear(embedding_dim, internal_dim));
  out_proj_ = register_module("out_proj", torch::nn::Linear(internal_dim, embedding_dim));
}

torch::Tensor SamDecoderAttentionImpl::forward(const torch::Tensor& q, const torch::Tensor& k,
                                               const torch::Tensor& v) {
  const torch::Tensor qh = SeparateHeads(q_proj_(q), num_heads_);
  const torch::Tensor kh = SeparateHeads(k_proj_(k), num_heads_);
  const torch::Tensor vh = SeparateHeads(v_proj_(v), num_heads_);
  const int64_t c_per_head = qh.size(3);
  // Same operation order as the official code (q k^T, then divide), so results match to the
  // last bits rather than only within rounding.
  torch::Tensor attn = torch::matmul(qh, kh.permute({0, 1, 3, 2}));
  attn = attn / std::sqrt(static_cast<double>(c_per_head));
  attn = torch::softmax(attn, -1);
  return out_proj_(RecombineHeads(torch::matmul(attn, vh)));
}

SamDecoderMlpBlockImpl::SamDecoderMlpBlockImpl(int64_t embedding_dim, int64_t mlp_dim) {
  lin1_ = register_module("lin1", torch::nn::Linear(embedding_dim, mlp_dim));
  lin2_ = register_module("lin2", torch::nn::Linear(mlp_dim, embedding_dim));
}

torch::Tensor SamDecoderMlpBlockImpl::forward(const torch::Tensor& x) {
  return lin2_(torch::relu(lin1_(x)));
}

SamTwoWayAttentionBlockImpl::SamTwoWayAttentionBlockImpl(int64_t embedding_dim, int64_t num_heads,
                                                         int64_t mlp_dim,
                                                         int64_t attention_downsample_rate,
                                                         bool skip_first_layer_pe)
    : skip_first_layer_pe_(skip_first_layer_pe) {
  // Registration order is the official attribute order, hence the state_dict order.
  self_attn_ = register_module("self_attn", SamDecoderAttention(embedding_dim, num_heads));
  norm1_ = register_module("norm1", TransformerLayerNorm(embedding_dim));
  cross_attn_token_to_image_ =
      register_module("cross_attn_token_to_image",
                      SamDecoderAttention(embedding_dim, num_heads, attention_downsample_rate));
  norm2_ = register_module("norm2", TransformerLayerNorm(embedding_dim));
  mlp_ = register_module("mlp", SamDecoderMlpBlock(embedding_dim, mlp_dim));
  norm3_ = register_module("norm3", TransformerLayerNorm(embedding_dim));
  norm4_ = register_module("norm4", TransformerLayerNorm(embedding_dim));
  cross_attn_image_to_token_ =
      register_module("cross_attn_image_to_token",
                      SamDecoderAttention(embedding_dim, num_heads, attention_downsample_rate));
}

std::pair<torch::Tensor, torch::Tensor> SamTwoWayAttentionBlockImpl::forward(
    const torch::Tensor& queries_in, const torch::Tensor& keys_in, const torch::Tensor& query_pe,
    const torch::Tensor& key_pe) {
  torch::Tensor queries;
  if (skip_first_layer_pe_) {
    // The first block replaces the tokens with their self-attention: no PE, no residual.
    queries = self_attn_(queries_in, queries_in, queries_in);
  } else {
    const torch::Tensor q = queries_in + query_pe;
    queries = queries_in + self_attn_(q, q, queries_in);
  }
  queries = Normalize(norm1_, queries);

  // Tokens attend to the image.
  torch::Tensor q = queries + query_pe;
  torch::Tensor k = keys_in + key_pe;
  queries = Normalize(norm2_, queries + cross_attn_token_to_image_(q, k, keys_in));

  queries = Normalize(norm3_, queries + mlp_(queries));

  // The image attends to the tokens.
  q = queries + query_pe;
  const torch::Tensor keys = Normalize(norm4_, keys_in + cross_attn_image_to_token_(k, q, queries));
  return {queries, keys};
}

SamTwoWayTransformerImpl::SamTwoWayTransformerImpl(int64_t depth, int64_t embedding_dim,
                                                   int64_t num_heads, int64_t mlp_dim,
                                                   int64_t attention_downsample_rate) {
  TORCH_CHECK(depth > 0, "SAM two-way transformer: depth must be positive, got ", depth);
  layers_ = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < depth; ++i) {
    SamTwoWayAttentionBlock block(embedding_dim, num_heads, mlp_dim, attention_downsample_rate,
                                  /*skip_first_layer_pe=*/i == 0);
    layers_->push_back(block);
    blocks_.push_back(block);
  }
  final_attn_token_to_image_ =
      register_module("final_attn_token_to_image",
                      SamDecoderAttention(embedding_dim, num_heads, attention_downsample_rate));
  norm_final_attn_ = register_module("norm_final_attn", TransformerLayerNorm(embedding_dim));
}

std::pair<torch::Tensor, torch::Tensor> SamTwoWayTransformerImpl::forward(
    const torch::Tensor& image_embedding, const torch::Tensor& image_pe,
    const torch::Tensor& point_embedding, SamTwoWayTransformerTrace* trace) {
  TORCH_CHECK(image_embedding.dim() == 4 && image_pe.dim() == 4 && point_embedding.dim() == 3,
              "SAM two-way transformer: expected image_embedding [B,C,h,w], image_pe [B,C,h,w] ",
              "and point_embedding [B,N,C], got ", image_embedding.sizes(), ", ", image_pe.sizes(),
              " and ", point_embedding.sizes());
  // [B, C, h, w] -> [B, h*w, C]. A PE with batch 1 stays batch 1 and broadcasts in the adds.
  const torch::Tensor image_tokens = image_embedding.flatten(2).permute({0, 2, 1});
  const torch::Tensor key_pe = image_pe.flatten(2).permute({0, 2, 1});

  torch::Tensor queries = point_embedding;
  torch::Tensor keys = image_tokens;
  for (auto& block : blocks_) {
    std::tie(queries, keys) = block(queries, keys, point_embedding, key_pe);
    if (trace) {
      trace->layer_queries.push_back(queries);
      trace->layer_keys.push_back(keys);
    }
  }
  const torch::Tensor q = queries + point_embedding;
  const torch::Tensor k = keys + key_pe;
  queries = Normalize(norm_final_attn_, queries + final_attn_token_to_image_(q, k, keys));
  return {queries, keys};
}

}  // namespace clisc::models
