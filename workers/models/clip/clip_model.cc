#include "workers/models/clip/clip_model.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "workers/models/compute_device.h"

namespace clisc::models {
namespace {

namespace F = torch::nn::functional;

// Keys of OpenAI's TorchScript archives that are not parameters of CLIP (model.py L430-432).
constexpr const char* kJitOnlyKeys[] = {"input_resolution", "context_length", "vocab_size"};

void Record(ClipActivations* activations, const std::string& name, const torch::Tensor& value) {
  if (activations) (*activations)[name] = value;
}

}  // namespace

ClipLayerNormImpl::ClipLayerNormImpl(int64_t width) {
  weight = register_parameter("weight", torch::ones({width}));
  bias = register_parameter("bias", torch::zeros({width}));
}

torch::Tensor ClipLayerNormImpl::forward(const torch::Tensor& x) {
  Float32Scope float32_only;
  const torch::Tensor out = torch::layer_norm(x.to(torch::kFloat), {weight.size(0)},
                                              weight.to(torch::kFloat), bias.to(torch::kFloat),
                                              /*eps=*/1e-5);
  return out.to(x.scalar_type());
}

ClipAttentionImpl::ClipAttentionImpl(int64_t width, int64_t heads) : heads_(heads) {
  in_proj_weight = register_parameter("in_proj_weight", torch::empty({3 * width, width}));
  in_proj_bias = register_parameter("in_proj_bias", torch::zeros({3 * width}));
  out_proj = register_module("out_proj", torch::nn::Linear(width, width));
  torch::nn::init::xavier_uniform_(in_proj_weight);
}

torch::Tensor ClipAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& mask) {
  const int64_t batch = x.size(0), length = x.size(1), width = x.size(2);
  const int64_t head_dim = width / heads_;
  const std::vector<torch::Tensor> qkv = F::linear(x, in_proj_weight, in_proj_bias).chunk(3, -1);
  auto split_heads = [&](const torch::Tensor& t) {
    return t.reshape({batch, length, heads_, head_dim}).permute({0, 2, 1, 3});
  };
  // As torch 1.13's _scaled_dot_product_attention: q is scaled before the product.
  const torch::Tensor q = split_heads(qkv[0]) / std::sqrt(static_cast<double>(head_dim));
  const torch::Tensor k = split_heads(qkv[1]);
  const torch::Tensor v = split_heads(qkv[2]);
  torch::Tensor logits = torch::matmul(q, k.transpose(-2, -1));
  if (mask.defined()) logits = logits + mask.to(logits.scalar_type());
  const torch::Tensor attended = torch::matmul(torch::softmax(logits, -1), v);
  return out_proj(attended.permute({0, 2, 1, 3}).reshape({batch, length, width}));
}

ClipMlpImpl::ClipMlpImpl(int64_t width) {
  c_fc = register_module("c_fc", torch::nn::Linear(width, 4 * width));
  c_proj = register_module("c_proj", torch::nn::Linear(4 * width, width));
}

torch::Tensor ClipMlpImpl::forward(const torch::Tensor& x) {
  const torch::Tensor hidden = c_fc(x);
  return c_proj(hidden * torch::sigmoid(1.702 * hidden));
}

ResidualAttentionBlockImpl::ResidualAttentionBlockImpl(int64_t width, int64_t heads) {
  attn = register_module("attn", ClipAttention(width, heads));
  ln_1 = register_module("ln_1", ClipLayerNorm(width));
  mlp = register_module("mlp", ClipMlp(width));
  ln_2 = register_module("ln_2", ClipLayerNorm(width));
}

torch::Tensor ResidualAttentionBlockImpl::forward(const torch::Tensor& x,
                                                  const torch::Tensor& mask) {
  const torch::Tensor attended = x + attn(ln_1(x), mask);
  return attended + mlp(ln_2(attended));
}

ClipTransformerImpl::ClipTransformerImpl(int64_t width, int64_t layers, int64_t heads) {
  for (int64_t i = 0; i < layers; ++i) resblocks->push_back(ResidualAttentionBlock(width, heads));
  register_module("resblocks", resblocks);
}

torch::Tensor ClipTransformerImpl::forward(torch::Tensor x, const torch::Tensor& mask,
                                           ClipActivations* activations,
                                           const std::string& tap_prefix) {
  for (size_t i = 0; i < resblocks->size(); ++i) {
    x = resblocks->ptr<ResidualAttentionBlockImpl>(i)->forward(x, mask);
    Record(activations, tap_prefix + std::to_string(i), x);
  }
  return x;
}

VisionTransformerImpl::VisionTransformerImpl(const ClipConfig& config) {
  const int64_t width = config.vision_width;
  const int64_t tokens = static_cast<int64_t>(config.grid()) * config.grid() + 1;
  const double scale = 1.0 / std::sqrt(static_cast<double>(width));
  conv1 = register_module(
      "conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, width, config.vision_patch_size)
                                     .stride(config.vision_patch_size)
                                     .bias(false)));
  class_embedding = register_parameter("class_embedding", scale * torch::randn({width}));
  positional_embedding =
      register_parameter("positional_embedding", scale * torch::randn({tokens, width}));
  ln_pre = register_module("ln_pre", ClipLayerNorm(width));
  transformer = register_module(
      "transformer", ClipTransformer(width, config.vision_layers, config.vision_heads()));
  ln_post = register_module("ln_post", ClipLayerNorm(width));
  proj = register_parameter("proj", scale * torch::randn({width, int64_t{config.embed_dim}}));
}

torch::Tensor VisionTransformerImpl::forward(const torch::Tensor& images,
                                             ClipActivations* activations) {
  const int64_t expected_tokens = positional_embedding.size(0);
  const int64_t patch = conv1->options.kernel_size()->at(0);
  const int64_t resolution =
      patch * static_cast<int64_t>(std::lround(std::sqrt(double(expected_tokens - 1))));
  TORCH_CHECK(images.dim() == 4 && images.size(1) == 3 && images.size(2) == resolution &&
                  images.size(3) == resolution,
              "CLIP image input must be [N, 3, ", resolution, ", ", resolution, "], got ",
              images.sizes());
  const torch::Tensor patches =
      conv1(images.to(conv1->weight.device(), conv1->weight.scalar_type()));
  Record(activations, "visual_conv1", patches);
  torch::Tensor x = patches.flatten(2).permute({0, 2, 1});
  const torch::Tensor cls = class_embedding.to(x.scalar_type()).expand({x.size(0), 1, x.size(2)});
  x = torch::cat({cls, x}, 1) + positional_embedding.to(x.scalar_type());
  x = ln_pre(x);
  Record(activations, "visual_ln_pre", x);
  x = transformer(x, torch::Tensor(), activations, "visual_block");
  x = ln_post(x.select(1, 0));
  Record(activations, "visual_ln_post", x);
  return torch::matmul(x, proj);
}

ClipImpl::ClipImpl(const ClipConfig& config) : config_(config) {
  const int64_t width = config.transformer_width;
  visual = register_module("visual", VisionTransformer(config));
  transformer = register_module(
      "transformer", ClipTransformer(width, config.transformer_layers, config.transformer_heads));
  token_embedding =
      register_module("token_embedding", torch::nn::Embedding(config.vocab_size, width));
  positional_embedding = register_parameter(
      "positional_embedding", 0.01 * torch::randn({int64_t{config.context_length}, width}));
  ln_final = register_module("ln_final", ClipLayerNorm(width));
  text_projection = register_parameter(
      "text_projection", std::pow(width, -0.5) * torch::randn({width, int64_t{config.embed_dim}}));
  logit_scale = register_parameter("logit_scale", torch::full({}, std::log(1 / 0.07)));
}

torch::Tensor ClipImpl::EncodeImage(const torch::Tensor& images, ClipActivations* activations) {
  torch::Tensor features = visual(images, activations).to(torch::kFloat);
  Record(activations, "encode_image", features);
  return features;
}

torch::Tensor ClipImpl::EncodeText(const torch::Tensor& tokens, ClipActivations* activations) {
  TORCH_CHECK(tokens.dim() == 2 && tokens.size(1) == config_.context_length,
              "CLIP text input must be [N, ", config_.context_length, "] token ids, got ",
              tokens.sizes());
  TORCH_CHECK(!tokens.is_floating_point() && !tokens.is_complex(),
              "CLIP token ids must be integers, got ", tokens.scalar_type());
  const torch::Tensor ids = tokens.to(positional_embedding.device(), torch::kLong);
  torch::Tensor x = token_embedding(ids) + positional_embedding;
  Record(activations, "text_embed_plus_pos", x);
  const int64_t length = config_.context_length;
  // Causal mask: -inf strictly above the diagonal, 0 elsewhere (CLIP.build_attention_mask).
  const torch::Tensor mask = torch::full({length, length}, -std::numeric_limits<float>::infinity(),
                                         torch::TensorOptions().device(x.device()))
                                 .triu(1);
  x = transformer(x, mask, activations, "text_block");
  x = ln_final(x);
  Record(activations, "text_ln_final", x);
  const torch::Tensor eot = ids.argmax(-1);
  Record(activations, "text_eot_index", eot);
  const torch::Tensor rows = torch::arange(x.size(0), ids.options());
  torch::Tensor features = torch::matmul(x.index({rows, eot}), text_projection).to(torch::kFloat);
  Record(activations, "encode_text", features);
  return features;
}

torch::Tensor ClipImpl::LogitsFromFeatures(const torch::Tensor& image_features,
                                           const torch::Tensor& text_features) {
  Float32Scope float32_only;
  const torch::Tensor image = image_features.to(torch::kFloat);
  const torch::Tensor text = text_features.to(torch::kFloat);
  const torch::Tensor image_n = image / image.norm(2, 1, /*keepdim=*/true);
  const torch::Tensor text_n = text / text.norm(2, 1, /*keepdim=*/true);
  return logit_scale.to(torch::kFloat).exp() * torch::matmul(image_n, text_n.t());
}

torch::Tensor ClipImpl::forward(const torch::Tensor& images, const torch::Tensor& tokens) {
  return LogitsFromFeatures(EncodeImage(images), EncodeText(tokens));
}

StatusOr<Clip> LoadClip(const std::filesystem::path& path, const ComputeDevice& compute,
                        std::optional<ClipConfig> config) {
  ASSIGN_OR_RETURN(StateDict state, ReadCheckpoint(path));
  std::erase_if(state, [](const auto& entry) {
    for (const char* key : kJitOnlyKeys) {
      if (entry.first == key) return true;
    }
    return false;
  });
  const bool is_vit = std::any_of(state.begin(), state.end(),
                                  [](const auto& e) { return e.first == "visual.proj"; });
  if (!config || !is_vit) {
    // Inference also diagnoses a ModifiedResNet checkpoint, whatever config was asked for.
    StatusOr<ClipConfig> inferred = ClipConfig::InferFromStateDict(state);
    if (!inferred.ok()) return inferred.status().WithContext(path.string());
    if (!config) config = *inferred;
  }
  Status valid = config->Validate();
  if (!valid.ok()) return valid.WithContext(path.string());
  try {
    Clip model(*config);
    Status loaded = LoadStateDict(*model, state, /*strict=*/true);
    if (!loaded.ok())
      return loaded.WithContext("CLIP " + config->Name() + " from " + path.string());
    model->to(compute.device);
    model->eval();
    return model;
  } catch (const c10::Error& e) {
    return InternalError("CLIP " + path.string() + ": " + e.what_without_backtrace());
  } catch (const std::bad_alloc&) {
    return ResourceExhaustedError("CLIP " + config->Name() + " from " + path.string() +
                                  ": out of memory building the model");
  }
}

}  // namespace clisc::models
