// The tiny random SAM of the golden fixtures: its SamConfig read from tiny_config.json (every
// hyperparameter the generator used), and the model loaded from tiny_sam.pth.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/support/torch_fixtures.h"
#include "workers/models/sam/sam_model.h"

namespace clisc::testing {

inline models::SamConfig TinySamConfig(const std::filesystem::path& json_path) {
  std::ifstream in(json_path);
  const nlohmann::json model = nlohmann::json::parse(in).at("model");
  const nlohmann::json& e = model.at("image_encoder");
  const nlohmann::json& p = model.at("prompt_encoder");
  const nlohmann::json& d = model.at("mask_decoder");
  const nlohmann::json& t = model.at("transformer");
  models::SamConfig config;
  config.model_type = "tiny";
  models::SamImageEncoderOptions& encoder = config.image_encoder;
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
  return config;
}

inline models::SamConfig TinySamConfig() { return TinySamConfig(Fixture("sam/tiny_config.json")); }

// Fails the calling test (ASSERT_NO_FATAL_FAILURE) when the model does not load.
inline void LoadTinySam(models::Sam& out, const models::ComputeDevice& compute = {}) {
  auto sam = models::LoadSam(Fixture("sam/tiny_sam.pth"), TinySamConfig(), compute);
  ASSERT_TRUE(sam.ok()) << sam.status().ToString();
  out = *sam;
}

}  // namespace clisc::testing
