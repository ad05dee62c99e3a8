// The whole Segment Anything model (segment_anything/modeling/sam.py and build_sam.py): its
// hyperparameters, the module tree whose state dict names equal an official checkpoint's, and
// loading of official sam_vit_{b,l,h} and MedSAM checkpoints.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <array>
#include <filesystem>
#include <string>
#include <string_view>

#include "common/status.h"
#include "workers/models/checkpoint_reader.h"
#include "workers/models/compute_device.h"
#include "workers/models/sam/sam_image_encoder.h"
#include "workers/models/sam/sam_mask_decoder.h"
#include "workers/models/sam/sam_prompt_encoder.h"
#include "workers/models/sam/sam_transforms.h"

namespace clisc::models {

struct SamConfig {
  // "vit_b", "vit_l", "vit_h", or a name of the caller's choosing for other sizes.
  std::string model_type = "vit_b";
  SamImageEncoderOptions image_encoder;
  SamPromptEncoderOptions prompt_encoder;
  SamMaskDecoderOptions mask_decoder;
  // Non-persistent buffers in the official Sam, so no checkpoint carries them.
  std::array<double, 3> pixel_mean{123.675, 116.28, 103.53};
  std::array<double, 3> pixel_std{58.395, 57.12, 57.375};
  double mask_threshold = 0.0;

  // The official builders build_sam_vit_b/l/h: a 1024 px input, 16 px patches, windows of 14,
  // a 256-wide prompt embedding on a 64x64 grid.
  static SamConfig VitB();
  static SamConfig VitL();
  static SamConfig VitH();
  // "vit_b", "vit_l" or "vit_h" (also "default", which the official registry maps to vit_h).
  static StatusOr<SamConfig> FromName(std::string_view name);
  // Every hyperparameter from a JSON file in the layout of the golden fixtures' tiny_config.json
  // ({"model": {"image_encoder", "prompt_encoder", "mask_decoder", "transformer", "pixel_mean",
  // "pixel_std", "mask_threshold"}}), for checkpoints the three names cannot describe.
  // INVALID_ARGUMENT for a missing key, a wrong type or a config that does not fit together.
  static StatusOr<SamConfig> FromJsonFile(const std::filesystem::path& path,
                                          std::string model_type);

  // INVALID_ARGUMENT when the three parts do not fit together (embedding widths, grid, input).
  Status Validate() const;

  int64_t img_size() const { return image_encoder.img_size; }
  // The low-res mask side: 4 x the embedding grid (256 for the real models).
  int64_t low_res_size() const { return 4 * prompt_encoder.image_embedding_size; }
};

class SamImpl : public torch::nn::Module {
 public:
  // Throws c10::Error on an inconsistent config (use LoadSam for a Status).
  explicit SamImpl(const SamConfig& config);

  const SamConfig& config() const { return config_; }

  // Sam.preprocess: uint8 or float [B, 3, h, w] -> normalized, padded [B, 3, img, img].
  torch::Tensor Preprocess(const torch::Tensor& image) const;
  // Sam.postprocess_masks: low-res logits [B, C, 4g, 4g] -> logits [B, C, H, W].
  torch::Tensor PostprocessMasks(const torch::Tensor& masks, SamImageSize input_size,
                                 SamImageSize original_size) const;

  SamImageEncoder image_encoder{nullptr};
  SamPromptEncoder prompt_encoder{nullptr};
  SamMaskDecoder mask_decoder{nullptr};

 private:
  SamConfig config_;
};
TORCH_MODULE(Sam);

// The official model type a state dict (keys as in a SAM checkpoint) was made for, from the
// width of image_encoder.patch_embed.proj.weight and the number of encoder blocks: "vit_b",
// "vit_l", "vit_h", or a description such as "embed_dim 48 with 4 blocks" for anything else.
std::string DescribeSamCheckpoint(const StateDict& dict);

// Reads an official SAM or MedSAM checkpoint (a plain state dict, or a training checkpoint with
// the state dict under "model." or "state_dict.", or keys prefixed "module."), builds the model
// for `model_type` ("vit_b", "vit_l", "vit_h"), loads it strictly, puts it on compute.device in
// float32 and in eval mode. A checkpoint of another size is INVALID_ARGUMENT naming the type it
// looks like; read errors keep the reader's code (NOT_FOUND, DATA_LOSS, ...).
StatusOr<Sam> LoadSam(const std::filesystem::path& checkpoint, std::string_view model_type,
                      const ComputeDevice& compute);
// The same for any configuration (a tiny test model, a MedSAM variant).
StatusOr<Sam> LoadSam(const std::filesystem::path& checkpoint, const SamConfig& config,
                      const ComputeDevice& compute);

}  // namespace clisc::models
