#include "workers/models/sam/sam_model.h"

#include <torch/torch.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

namespace clisc::models {

namespace {

// The shared part of build_sam.py's _build_sam.
SamConfig BuildSam(std::string model_type, int64_t embed_dim, int64_t depth, int64_t num_heads,
                   std::vector<int64_t> global_attn_indexes) {
  SamConfig config;
  config.model_type = std::move(model_type);
  SamImageEncoderOptions& encoder = config.image_encoder;
  encoder.img_size = 1024;
  encoder.patch_size = 16;
  encoder.embed_dim = embed_dim;
  encoder.depth = depth;
  encoder.num_heads = num_heads;
  encoder.mlp_ratio = 4.0;
  encoder.out_chans = 256;
  encoder.qkv_bias = true;
  encoder.norm_eps = 1e-6;
  encoder.use_abs_pos = true;
  encoder.use_rel_pos = true;
  encoder.window_size = 14;
  encoder.global_attn_indexes = std::move(global_attn_indexes);
  config.prompt_encoder = SamPromptEncoderOptions{
      .embed_dim = 256, .image_embedding_size = 64, .input_image_size = 1024, .mask_in_chans = 16};
  config.mask_decoder = SamMaskDecoderOptions{.transformer_dim = 256,
                                              .num_multimask_outputs = 3,
                                              .iou_head_depth = 3,
                                              .iou_head_hidden_dim = 256,
                                              .transformer_depth = 2,
                                              .transformer_mlp_dim = 2048,
                                              .transformer_num_heads = 8,
                                              .attention_downsample_rate = 2};
  return config;
}

// Width of the image encoder and number of its blocks; {0, 0} without a patch embedding.
std::pair<int64_t, int64_t> EncoderSize(const StateDict& dict) {
  int64_t width = 0;
  std::set<int64_t> blocks;
  const std::string block_prefix = "image_encoder.blocks.";
  for (const auto& [name, tensor] : dict) {
    if (name == "image_encoder.patch_embed.proj.weight" && tensor.dim() > 0) width = tensor.size(0);
    if (name.rfind(block_prefix, 0) == 0) {
      const size_t end = name.find('.', block_prefix.size());
      const std::string index = name.substr(block_prefix.size(), end - block_prefix.size());
      if (!index.empty() && index.find_first_not_of("0123456789") == std::string::npos)
        blocks.insert(std::stoll(index));
    }
  }
  return {width, static_cast<int64_t>(blocks.size())};
}

// Strips a prefix that every key shares, repeatedly: {"model": state_dict} saved alone reads as
// "model.image_encoder...", and a model wrapped in DataParallel saves "module.image_encoder...".
StateDict StripWrapperPrefixes(StateDict dict) {
  for (bool stripped = true; stripped && !dict.empty();) {
    stripped = false;
    for (const std::string prefix : {"model.", "state_dict.", "module."}) {
      const bool all = std::all_of(dict.begin(), dict.end(), [&](const auto& entry) {
        return entry.first.rfind(prefix, 0) == 0;
      });
      if (!all) continue;
      for (auto& entry : dict) entry.first.erase(0, prefix.size());
      stripped = true;
      break;
    }
  }
  return dict;
}

// Training scripts save {"epoch": ..., "model": state_dict, "optimizer": ...}: non-tensor entries
// beside the weights, which the reader refuses unless told the prefix of the tensors wanted.
StatusOr<StateDict> ReadSamStateDict(const std::filesystem::path& path) {
  StatusOr<StateDict> dict = ReadCheckpoint(path);
  if (!dict.ok() && dict.status().code() == StatusCode::kInvalidArgument) {
    for (const char* prefix : {"model.", "state_dict."}) {
      StatusOr<StateDict> wrapped = ReadCheckpoint(path, {prefix});
      if (wrapped.ok()) return StripWrapperPrefixes(std::move(wrapped).value());
    }
  }
  if (!dict.ok()) return dict.status();
  return StripWrapperPrefixes(std::move(dict).value());
}

}  // namespace

SamConfig SamConfig::VitB() { return BuildSam("vit_b", 768, 12, 12, {2, 5, 8, 11}); }
SamConfig SamConfig::VitL() { return BuildSam("vit_l", 1024, 24, 16, {5, 11, 17, 23}); }
SamConfig SamConfig::VitH() { return BuildSam("vit_h", 1280, 32, 16, {7, 15, 23, 31}); }

StatusOr<SamConfig> SamConfig::FromName(std::string_view name) {
  if (name == "vit_b") return VitB();
  if (name == "vit_l") return VitL();
  if (name == "vit_h" || name == "default") return VitH();
  return InvalidArgumentError("unknown SAM model type '" + std::string(name) +
                              "': expected vit_b, vit_l or vit_h");
}

StatusOr<SamConfig> SamConfig::FromJsonFile(const std::filesystem::path& path,
                                            std::string model_type) {
  try {
    std::ifstream in(path);
    const nlohmann::json model = nlohmann::json::parse(in).at("model");
    const nlohmann::json& e = model.at("image_encoder");
    const nlohmann::json& p = model.at("prompt_encoder");
    const nlohmann::json& d = model.at("mask_decoder");
    const nlohmann::json& t = model.at("transformer");
    SamConfig config;
    config.model_type = std::move(model_type);
    SamImageEncoderOptions& encoder = config.image_encoder;
    encoder.img_size = e.at("img_size");
    encoder.patch_size = e.at("patch_size");
    encoder.in_chans = e.at("in_chans");
    encoder.embed_dim = e.at("embed_dim");
    encoder.depth = e.at("depth");
    encoder.num_heads = e.at("num_heads");
    encoder.mlp_ratio = e.at("mlp_ratio");
    encoder.out_chans = e.at("out_chans");
    encoder.qkv_bias = e.at("qkv_bias");
    encoder.norm_eps = e.at("norm_eps");
    encoder.use_abs_pos = e.at("use_abs_pos");
    encoder.use_rel_pos = e.at("use_rel_pos");
    encoder.window_size = e.at("window_size");
    encoder.global_attn_indexes = e.at("global_attn_indexes").get<std::vector<int64_t>>();
    config.prompt_encoder.embed_dim = p.at("embed_dim");
    config.prompt_encoder.image_embedding_size = p.at("image_embedding_size").at(0);
    config.prompt_encoder.input_image_size = p.at("input_image_size").at(0);
    config.prompt_encoder.mask_in_chans = p.at("mask_in_chans");
    config.mask_decoder.transformer_dim = d.at("transformer_dim");
    config.mask_decoder.num_multimask_outputs = d.at("num_multimask_outputs");
    config.mask_decoder.iou_head_depth = d.at("iou_head_depth");
    config.mask_decoder.iou_head_hidden_dim = d.at("iou_head_hidden_dim");
    config.mask_decoder.transformer_depth = t.at("depth");
    config.mask_decoder.transformer_mlp_dim = t.at("mlp_dim");
    config.mask_decoder.transformer_num_heads = t.at("num_heads");
    config.mask_decoder.attention_downsample_rate = t.at("attention_downsample_rate");
    for (int c = 0; c < 3; ++c) {
      config.pixel_mean[c] = model.at("pixel_mean").at(c);
      config.pixel_std[c] = model.at("pixel_std").at(c);
    }
    config.mask_threshold = model.at("mask_threshold");
    RETURN_IF_ERROR(config.Validate());
    return config;
  } catch (const nlohmann::json::exception& e) {
    return InvalidArgumentError("SAM config " + path.string() + ": " + e.what());
  }
}

Status SamConfig::Validate() const {
  const SamImageEncoderOptions& e = image_encoder;
  const auto fail = [&](const std::string& what) {
    return InvalidArgumentError("SAM config " + model_type + ": " + what);
  };
  if (e.img_size <= 0 || e.patch_size <= 0 || e.img_size % e.patch_size != 0)
    return fail("img_size must be a positive multiple of patch_size");
  if (e.embed_dim <= 0 || e.num_heads <= 0 || e.embed_dim % e.num_heads != 0)
    return fail("embed_dim must be a positive multiple of num_heads");
  if (e.depth <= 0 || e.out_chans <= 0 || e.window_size < 0 || e.mlp_ratio <= 0)
    return fail("depth, out_chans and mlp_ratio must be positive, window_size not negative");
  for (int64_t index : e.global_attn_indexes) {
    if (index < 0 || index >= e.depth) return fail("global attention index out of range");
  }
  if (prompt_encoder.embed_dim != e.out_chans || mask_decoder.transformer_dim != e.out_chans)
    return fail("prompt embed_dim and transformer_dim must equal the encoder's out_chans");
  if (prompt_encoder.image_embedding_size != e.grid_size())
    return fail("image_embedding_size must be img_size / patch_size");
  if (prompt_encoder.input_image_size != e.img_size)
    return fail("prompt input_image_size must equal img_size");
  for (double s : pixel_std) {
    if (!(s > 0)) return fail("pixel_std must be positive");
  }
  return OkStatus();
}

SamImpl::SamImpl(const SamConfig& config) : config_(config) {
  const Status valid = config.Validate();
  TORCH_CHECK(valid.ok(), valid.message());
  image_encoder = register_module("image_encoder", SamImageEncoder(config.image_encoder));
  prompt_encoder = register_module("prompt_encoder", SamPromptEncoder(config.prompt_encoder));
  mask_decoder = register_module("mask_decoder", SamMaskDecoder(config.mask_decoder));
}

torch::Tensor SamImpl::Preprocess(const torch::Tensor& image) const {
  return SamPreprocess(image, config_.pixel_mean, config_.pixel_std, config_.img_size());
}

torch::Tensor SamImpl::PostprocessMasks(const torch::Tensor& masks, SamImageSize input_size,
                                        SamImageSize original_size) const {
  return SamPostprocessMasks(masks, config_.img_size(), input_size, original_size);
}

std::string DescribeSamCheckpoint(const StateDict& dict) {
  const auto [width, blocks] = EncoderSize(dict);
  for (const SamConfig& known : {SamConfig::VitB(), SamConfig::VitL(), SamConfig::VitH()}) {
    if (width == known.image_encoder.embed_dim && blocks == known.image_encoder.depth)
      return known.model_type;
  }
  if (width == 0) return "model without image_encoder.patch_embed.proj.weight";
  return "embed_dim " + std::to_string(width) + " with " + std::to_string(blocks) + " blocks";
}

StatusOr<Sam> LoadSam(const std::filesystem::path& checkpoint, std::string_view model_type,
                      const ComputeDevice& compute) {
  ASSIGN_OR_RETURN(SamConfig config, SamConfig::FromName(model_type));
  return LoadSam(checkpoint, config, compute);
}

StatusOr<Sam> LoadSam(const std::filesystem::path& checkpoint, const SamConfig& config,
                      const ComputeDevice& compute) {
  const std::string context = "SAM checkpoint " + checkpoint.string();
  RETURN_IF_ERROR(config.Validate());
  ASSIGN_OR_RETURN(StateDict dict, ReadSamStateDict(checkpoint));
  const auto [width, blocks] = EncoderSize(dict);
  if (width != config.image_encoder.embed_dim || blocks != config.image_encoder.depth) {
    const std::string looks_like = DescribeSamCheckpoint(dict);
    const bool known = looks_like.rfind("vit_", 0) == 0;
    return InvalidArgumentError(
        context + " does not fit model type " + config.model_type + " (image encoder width " +
        std::to_string(config.image_encoder.embed_dim) + ", " +
        std::to_string(config.image_encoder.depth) + " blocks): it holds a " + looks_like +
        (known ? " model (width " + std::to_string(width) + ", " + std::to_string(blocks) +
                     " blocks); load it with model type " + looks_like
               : " model"));
  }
  try {
    torch::NoGradGuard no_grad;
    Sam sam(config);
    const Status loaded = LoadStateDict(*sam, dict, /*strict=*/true);
    if (!loaded.ok())
      return loaded.WithContext(context + " (model type " + config.model_type + ")");
    dict.clear();
    sam->to(compute.device);
    sam->eval();
    return sam;
  } catch (const c10::Error& e) {
    return InternalError(context + ": " + e.what_without_backtrace());
  }
}

}  // namespace clisc::models
