// The 3D U-Net the reference trains on the pseudo-labels: SSL4MIS's `unet_3D` (networks/unet_3D.py
// with UnetConv3 and UnetUp3_CT from networks/utils.py), REFERENCE.md section 7.1. Module and
// parameter names follow the Python ones, so a `torch.save(model.state_dict())` of the reference
// loads strictly: conv1..conv4, maxpool1..4, center, up_concat4..1 (each `conv` + `up`), final,
// dropout1, dropout2; a conv block holds `conv1` and `conv2`, each Sequential(Conv3d,
// InstanceNorm3d without affine, ReLU), so the names read e.g. `conv1.conv1.0.weight`,
// `up_concat4.conv.conv2.0.bias`, `final.weight`. InstanceNorm without affine or running stats has
// no parameters or buffers.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/pooling.h>
#include <torch/nn/modules/upsampling.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <vector>

#include "common/status.h"

namespace clisc::models {

struct UNet3dOptions {
  int64_t in_channels = 1;  // one per modality (data.modalities)
  int64_t num_classes = 2;  // unet.num_classes: background and whole tumor
  // unet.feature_channels: channels per level from the top to the bottleneck. The reference's
  // feature_scale 4 gives [16, 32, 64, 128, 256]: four pooled levels and the centre block.
  std::vector<int64_t> feature_channels = {16, 32, 64, 128, 256};
  double dropout = 0.3;  // unet.dropout: after the centre block and before the final conv
};

// INVALID_ARGUMENT naming the field: at least two feature levels, every count >= 1,
// in_channels >= 1, num_classes >= 1, dropout in [0, 1).
Status ValidateUNet3dOptions(const UNet3dOptions& options);

// UnetConv3: two [Conv3d 3x3x3 pad 1 with bias -> InstanceNorm3d(affine=False) -> ReLU].
class UNetConvBlockImpl : public torch::nn::Module {
 public:
  UNetConvBlockImpl(int64_t in_channels, int64_t out_channels);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Sequential conv1{nullptr};
  torch::nn::Sequential conv2{nullptr};
};
TORCH_MODULE(UNetConvBlock);

// UnetUp3_CT: trilinear x2 upsampling of the deeper input (align_corners=False), the skip padded
// as the reference pads it (by offset // 2, which is 0 whenever the input size is a multiple of
// 2^levels), concatenated as [skip, upsampled], then a conv block (in + out -> out).
class UNetUpBlockImpl : public torch::nn::Module {
 public:
  UNetUpBlockImpl(int64_t in_channels, int64_t out_channels);
  torch::Tensor forward(const torch::Tensor& skip, const torch::Tensor& deeper);

  UNetConvBlock conv{nullptr};
  torch::nn::Upsample up{nullptr};
};
TORCH_MODULE(UNetUpBlock);

// Input [N, in_channels, D, H, W] with D, H and W multiples of size_multiple() (16 for the
// default channels); output: logits [N, num_classes, D, H, W]. Dropout acts in train() mode only.
// Weights start as the reference's: Kaiming normal (fan_in, a = 0) on every conv weight, PyTorch's
// default uniform init on the biases. The constructor throws c10::Error for invalid options and
// forward() for a malformed input (wrong rank, channels, or a size that does not divide).
class UNet3dImpl : public torch::nn::Module {
 public:
  explicit UNet3dImpl(const UNet3dOptions& options = {});
  torch::Tensor forward(const torch::Tensor& input);

  const UNet3dOptions& options() const { return options_; }
  int64_t levels() const { return static_cast<int64_t>(encoders_.size()); }
  // Spatial sizes must be multiples of this: 2^levels().
  int64_t size_multiple() const { return int64_t{1} << levels(); }

 private:
  UNet3dOptions options_;
  std::vector<UNetConvBlock> encoders_;  // conv1..convL, top level first
  std::vector<torch::nn::MaxPool3d> pools_;
  UNetConvBlock center_{nullptr};
  std::vector<UNetUpBlock> decoders_;  // up_concat1..up_concatL, top level first
  torch::nn::Conv3d final_{nullptr};
  torch::nn::Dropout dropout1_{nullptr};
  torch::nn::Dropout dropout2_{nullptr};
};
TORCH_MODULE(UNet3d);

// A freshly initialized network; INVALID_ARGUMENT for bad options.
StatusOr<UNet3d> MakeUNet3d(const UNet3dOptions& options);

// Builds a network with `options` and loads a reference checkpoint into it strictly (every
// parameter present with its shape, nothing extra). Reads torch.save(model.state_dict()) files
// (OrderedDict, zip or legacy format), training checkpoints that hold the state dict under
// "state_dict" or "model", and DataParallel's "module." key prefix. Returned in eval() mode.
// Errors: INVALID_ARGUMENT for bad options or a checkpoint that does not match them (naming the
// key and shapes), NOT_FOUND for a missing file or parameter, DATA_LOSS for a corrupt file.
StatusOr<UNet3d> LoadUNet3d(const std::filesystem::path& path, const UNet3dOptions& options);

}  // namespace clisc::models
