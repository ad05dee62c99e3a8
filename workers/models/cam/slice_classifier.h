// The slice classifier whose LayerCAMs seed SAM (METHOD.md stages 2-7): torchvision's ResNet
// (BasicBlock for resnet18, Bottleneck for resnet50, any block counts) with CLISC's head in place
// of fc, and a few-layer CNN for CPU demos. Parameter and buffer names are torchvision's
// (`conv1`, `bn1`, `layerK.i.conv1`, `layerK.0.downsample.{0,1}`, BN running statistics and an
// int64 `num_batches_tracked`), and the head is `fc = Sequential(Flatten, Linear(in, 256), ReLU,
// Dropout(0.5), Linear(256, 2))`, i.e. keys `fc.1.*` and `fc.4.*`, so CLISC's `best_model.pth`
// and torchvision's ImageNet weights load as they are.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <array>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>

#include "common/status.h"
#include "workers/models/checkpoint_reader.h"

namespace clisc::models {

struct SliceClassifierOptions {
  enum class Kind {
    kResNetBasic,       // torchvision BasicBlock (resnet18/34)
    kResNetBottleneck,  // torchvision Bottleneck (resnet50/101/152)
    kSmall,             // the CPU demo net: one conv+BN+ReLU per stage
  };
  Kind kind = Kind::kResNetBottleneck;
  // Blocks in layer1..layer4 (ResNet kinds; each >= 1). The small net always has one.
  std::array<int64_t, 4> blocks_per_stage = {3, 4, 6, 3};
  int64_t num_classes = 2;
  int64_t head_units = 256;
  double head_dropout = 0.5;
  // The pooling between the last stage and the head. torchvision and CLISC average; a max makes
  // the tumor logit follow the strongest local evidence, which a small net trained briefly on
  // few positives learns where an average of mostly normal tissue does not.
  enum class GlobalPool { kAverage, kMax };
  GlobalPool global_pool = GlobalPool::kAverage;
};

// `classifier.global_pool`: "avg" or "max"; INVALID_ARGUMENT otherwise.
StatusOr<SliceClassifierOptions::GlobalPool> ParseGlobalPool(std::string_view name);

// Options for `classifier.arch`: "resnet50", "resnet18" or "small"; INVALID_ARGUMENT otherwise.
StatusOr<SliceClassifierOptions> SliceClassifierOptionsFor(std::string_view arch,
                                                           int64_t num_classes = 2);

// torchvision's BasicBlock: 3x3 conv (stride) + BN + ReLU, 3x3 conv + BN, identity or
// downsample shortcut, ReLU.
class BasicBlockImpl : public torch::nn::Module {
 public:
  static constexpr int64_t kExpansion = 1;
  BasicBlockImpl(int64_t in_channels, int64_t planes, int64_t stride);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr};
  torch::nn::BatchNorm2d bn1_{nullptr}, bn2_{nullptr};
  torch::nn::Sequential downsample_{nullptr};
};
TORCH_MODULE(BasicBlock);

// torchvision's Bottleneck (ResNet V1.5: the stride sits on the 3x3 conv): 1x1 reduce, 3x3,
// 1x1 expand by 4, each with BN, identity or downsample shortcut, ReLU.
class BottleneckImpl : public torch::nn::Module {
 public:
  static constexpr int64_t kExpansion = 4;
  BottleneckImpl(int64_t in_channels, int64_t planes, int64_t stride);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr}, conv3_{nullptr};
  torch::nn::BatchNorm2d bn1_{nullptr}, bn2_{nullptr}, bn3_{nullptr};
  torch::nn::Sequential downsample_{nullptr};
};
TORCH_MODULE(Bottleneck);

// stem (conv1, bn1, ReLU, 3x3 max pool, stride 4 in all) -> layer1..layer4 (strides 1, 2, 2, 2)
// -> global average (or max) pool -> fc. A 224 input gives 56, 28, 14 and 7 pixel stages, for the
// small net too, so `cam.layer` means the same resolution for every arch.
class SliceClassifierImpl : public torch::nn::Module {
 public:
  // Constructors throw (c10::Error) on invalid options; MakeSliceClassifier checks them first.
  // Initialization is torchvision's: Kaiming-normal (fan_out) convs, BN weight 1 and bias 0,
  // PyTorch's default Linear; it draws from torch's global generator.
  explicit SliceClassifierImpl(const SliceClassifierOptions& options);

  // x: [N, 3, H, W] float -> logits [N, num_classes].
  torch::Tensor forward(const torch::Tensor& x);

  // The network split at the output of one stage ("layer1".."layer4"): ForwardToStage gives
  // that output, ForwardFromStage continues from it to the logits. LayerCAM makes the stage
  // output a leaf in between, so its gradient needs no graph of the earlier stages. Both throw
  // on an unknown stage name; see IsStageName.
  torch::Tensor ForwardToStage(const torch::Tensor& x, std::string_view stage);
  torch::Tensor ForwardFromStage(const torch::Tensor& stage_output, std::string_view stage);
  // {logits, the stage's output} from one pass.
  std::pair<torch::Tensor, torch::Tensor> ForwardWithStage(const torch::Tensor& x,
                                                           std::string_view stage);

  static bool IsStageName(std::string_view stage);

  const SliceClassifierOptions& options() const { return options_; }
  // Channels of a stage's output (e.g. 1024 for resnet50's layer3); 0 for an unknown name.
  int64_t StageChannels(std::string_view stage) const;

 private:
  torch::nn::Sequential MakeResNetStage(int64_t planes, int64_t blocks, int64_t stride);
  torch::Tensor Stem(const torch::Tensor& x);
  torch::Tensor Head(const torch::Tensor& features);

  SliceClassifierOptions options_;
  int64_t in_channels_ = 64;  // running channel count while stages are built
  std::array<int64_t, 4> stage_channels_{};
  torch::nn::Conv2d conv1_{nullptr};
  torch::nn::BatchNorm2d bn1_{nullptr};
  std::array<torch::nn::Sequential, 4> stages_{nullptr, nullptr, nullptr, nullptr};
  torch::nn::Sequential fc_{nullptr};
};
TORCH_MODULE(SliceClassifier);

// A freshly initialized classifier for `classifier.arch`. INVALID_ARGUMENT for an unknown arch or
// num_classes < 1.
StatusOr<SliceClassifier> MakeSliceClassifier(std::string_view arch, int64_t num_classes = 2);
StatusOr<SliceClassifier> MakeSliceClassifier(const SliceClassifierOptions& options);

// Loads torchvision ImageNet weights (`resnet50-*.pth`, zip or legacy pre-1.6 format) into every
// parameter and buffer except the head `fc.*`: the file's 1000-way `fc.weight`/`fc.bias` are
// skipped. Every other module key must be in the file (NOT_FOUND names the missing ones) and
// every other file key in the module (INVALID_ARGUMENT names them, e.g. resnet18 weights offered
// to a resnet50); shapes must match. Old files without `num_batches_tracked` are accepted, as
// PyTorch accepts them. FAILED_PRECONDITION for the small net, which has no ImageNet weights.
// Nothing is copied unless every check passes.
Status LoadImageNetBackbone(SliceClassifierImpl& model, const std::filesystem::path& path);

// Loads a whole classifier state_dict (CLISC's `best_model.pth`, an OrderedDict, or a plain
// dict) strictly into `model`. Keys saved from nn.DataParallel (`module.` before every key) are
// accepted. `options.prefix` selects a nested entry, e.g. "model." of a training checkpoint.
Status LoadClassifierWeights(SliceClassifierImpl& model, const std::filesystem::path& path,
                             const CheckpointOptions& options = {});

// MakeSliceClassifier + LoadClassifierWeights: a trained classifier in eval mode on the CPU.
StatusOr<SliceClassifier> LoadSliceClassifier(const std::filesystem::path& path,
                                              std::string_view arch,
                                              const CheckpointOptions& options = {});
StatusOr<SliceClassifier> LoadSliceClassifier(const std::filesystem::path& path,
                                              const SliceClassifierOptions& architecture,
                                              const CheckpointOptions& options = {});

}  // namespace clisc::models
