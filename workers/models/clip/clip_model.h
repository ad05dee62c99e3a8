// OpenAI CLIP with a ViT image tower (clip/model.py), with the official parameter names so the
// released checkpoints load by name: visual.* (conv1, class_embedding, positional_embedding,
// ln_pre, transformer.resblocks.N.{attn.in_proj_weight, attn.in_proj_bias, attn.out_proj, ln_1,
// mlp.c_fc, mlp.c_proj, ln_2}, ln_post, proj), transformer.*, token_embedding,
// positional_embedding, ln_final, text_projection, logit_scale.
//
// The official code runs sequence-first (LND) through nn.MultiheadAttention; these modules run
// batch-first with the same packed q/k/v projection and per-head softmax(q k^T / sqrt(d) + mask) v,
// which agrees within float rounding. The text tower's causal mask is built here, as it is not
// part of the state dict.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "common/status.h"
#include "workers/models/clip/clip_config.h"
#include "workers/models/compute_device.h"

namespace clisc::models {

// Intermediate outputs a forward pass records when asked, named as in fixtures/clip/clip_io.pth
// ("visual_conv1", "visual_ln_pre", "visual_block<i>", "visual_ln_post", "encode_image",
// "text_embed_plus_pos", "text_block<i>", "text_ln_final", "text_eot_index", "encode_text").
// Sequence tensors are batch-first [N, L, width].
using ClipActivations = std::map<std::string, torch::Tensor>;

// CLIP's LayerNorm (eps 1e-5) always computes in float32 and returns the input's dtype. Autocast
// is bypassed inside: LibTorch 1.13's CPU autocast would otherwise fail on a float32 layer_norm.
class ClipLayerNormImpl : public torch::nn::Module {
 public:
  explicit ClipLayerNormImpl(int64_t width);
  torch::Tensor forward(const torch::Tensor& x);

  torch::Tensor weight, bias;
};
TORCH_MODULE(ClipLayerNorm);

// nn.MultiheadAttention's parameter layout (in_proj_weight packs q, k, v rows in that order),
// self-attention only, batch-first.
class ClipAttentionImpl : public torch::nn::Module {
 public:
  ClipAttentionImpl(int64_t width, int64_t heads);
  // x: [N, L, width]; mask: [L, L] added to the attention logits, or undefined.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask);

  torch::Tensor in_proj_weight, in_proj_bias;
  torch::nn::Linear out_proj{nullptr};

 private:
  int64_t heads_;
};
TORCH_MODULE(ClipAttention);

// c_fc (4x width), QuickGELU x * sigmoid(1.702 x), c_proj.
class ClipMlpImpl : public torch::nn::Module {
 public:
  explicit ClipMlpImpl(int64_t width);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Linear c_fc{nullptr}, c_proj{nullptr};
};
TORCH_MODULE(ClipMlp);

// Pre-LN block: x + attn(ln_1(x)), then x + mlp(ln_2(x)).
class ResidualAttentionBlockImpl : public torch::nn::Module {
 public:
  ResidualAttentionBlockImpl(int64_t width, int64_t heads);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask);

  ClipAttention attn{nullptr};
  ClipLayerNorm ln_1{nullptr}, ln_2{nullptr};
  ClipMlp mlp{nullptr};
};
TORCH_MODULE(ResidualAttentionBlock);

class ClipTransformerImpl : public torch::nn::Module {
 public:
  ClipTransformerImpl(int64_t width, int64_t layers, int64_t heads);
  // Records block i's output as "<tap_prefix><i>" when `activations` is given.
  torch::Tensor forward(torch::Tensor x, const torch::Tensor& mask, ClipActivations* activations,
                        const std::string& tap_prefix);

  torch::nn::ModuleList resblocks;
};
TORCH_MODULE(ClipTransformer);

class VisionTransformerImpl : public torch::nn::Module {
 public:
  explicit VisionTransformerImpl(const ClipConfig& config);
  // images: [N, 3, R, R] float -> [N, embed_dim].
  torch::Tensor forward(const torch::Tensor& images, ClipActivations* activations = nullptr);

  torch::nn::Conv2d conv1{nullptr};
  torch::Tensor class_embedding, positional_embedding, proj;
  ClipLayerNorm ln_pre{nullptr}, ln_post{nullptr};
  ClipTransformer transformer{nullptr};
};
TORCH_MODULE(VisionTransformer);

class ClipImpl : public torch::nn::Module {
 public:
  explicit ClipImpl(const ClipConfig& config);

  const ClipConfig& config() const { return config_; }

  // images: [N, 3, R, R] with R = image_resolution, already normalized (clip_preprocess.h).
  // Returns [N, embed_dim] float32 features (not normalized). Throws c10::Error on a bad shape.
  torch::Tensor EncodeImage(const torch::Tensor& images, ClipActivations* activations = nullptr);

  // tokens: [N, context_length] integer ids (int32 as clip.tokenize returns, or int64). Features
  // are taken at each row's EOT token, found as the argmax of the ids (EOT is the largest id).
  torch::Tensor EncodeText(const torch::Tensor& tokens, ClipActivations* activations = nullptr);

  // exp(logit_scale) * normalized image features . normalized text features: logits_per_image
  // [N_images, N_texts] (logits_per_text is its transpose). Computed in float32.
  torch::Tensor LogitsFromFeatures(const torch::Tensor& image_features,
                                   const torch::Tensor& text_features);

  // model(images, tokens)[0] of the official code.
  torch::Tensor forward(const torch::Tensor& images, const torch::Tensor& tokens);

  VisionTransformer visual{nullptr};
  ClipTransformer transformer{nullptr};
  torch::nn::Embedding token_embedding{nullptr};
  torch::Tensor positional_embedding, text_projection, logit_scale;
  ClipLayerNorm ln_final{nullptr};

 private:
  ClipConfig config_;
};
TORCH_MODULE(Clip);

// Loads a CLIP checkpoint: an OpenAI TorchScript archive (ViT-B-32.pt; its input_resolution,
// context_length and vocab_size buffers are dropped, as build_model does) or a state dict .pth
// (OrderedDict or plain dict). float16 weights are converted to float32, as clip.load does on
// the CPU. The hyperparameters come from `config` when given, otherwise from
// ClipConfig::InferFromStateDict. The model is moved to `compute.device` in float32 and set to
// eval mode; reduced precision is applied at inference (InferenceAutocast).
// Errors: NOT_FOUND (no file), UNIMPLEMENTED (ModifiedResNet checkpoint), INVALID_ARGUMENT or
// NOT_FOUND (keys or shapes that do not match the config), DATA_LOSS (corrupt file).
StatusOr<Clip> LoadClip(const std::filesystem::path& path, const ComputeDevice& compute,
                        std::optional<ClipConfig> config = std::nullopt);

}  // namespace clisc::models
