#include "workers/models/cam/slice_classifier.h"

#include <torch/torch.h>

#include <set>
#include <string>
#include <vector>

namespace clisc::models {
namespace {

namespace nn = torch::nn;

constexpr std::array<std::string_view, 4> kStageNames = {"layer1", "layer2", "layer3", "layer4"};
constexpr std::array<int64_t, 4> kResNetPlanes = {64, 128, 256, 512};
constexpr std::array<int64_t, 4> kSmallChannels = {16, 32, 64, 128};
constexpr std::array<int64_t, 4> kStageStrides = {1, 2, 2, 2};

int StageIndex(std::string_view stage) {
  for (size_t i = 0; i < kStageNames.size(); ++i) {
    if (kStageNames[i] == stage) return static_cast<int>(i);
  }
  return -1;
}

nn::Conv2d Conv(int64_t in, int64_t out, int64_t kernel, int64_t stride) {
  return nn::Conv2d(
      nn::Conv2dOptions(in, out, kernel).stride(stride).padding(kernel / 2).bias(false));
}

// torchvision's shortcut when the block changes resolution or width: 1x1 conv (stride) + BN.
nn::Sequential Downsample(int64_t in, int64_t out, int64_t stride) {
  return nn::Sequential(Conv(in, out, 1, stride), nn::BatchNorm2d(out));
}

bool StartsWith(const std::string& text, std::string_view prefix) {
  return text.compare(0, prefix.size(), prefix) == 0;
}

bool EndsWith(const std::string& text, std::string_view suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string KeyList(const std::vector<std::string>& keys) {
  std::string out;
  for (size_t i = 0; i < keys.size() && i < 5; ++i) out += (i ? ", '" : "'") + keys[i] + "'";
  if (keys.size() > 5) out += " and " + std::to_string(keys.size() - 5) + " more";
  return out;
}

Status CheckOptions(const SliceClassifierOptions& options) {
  if (options.num_classes < 1) return InvalidArgumentError("classifier: num_classes must be >= 1");
  if (options.head_units < 1) return InvalidArgumentError("classifier: head_units must be >= 1");
  if (!(options.head_dropout >= 0.0 && options.head_dropout < 1.0)) {
    return InvalidArgumentError("classifier: head_dropout must lie in [0, 1)");
  }
  if (options.kind != SliceClassifierOptions::Kind::kSmall) {
    for (int64_t blocks : options.blocks_per_stage) {
      if (blocks < 1) return InvalidArgumentError("classifier: every stage needs >= 1 block");
    }
  }
  return OkStatus();
}

}  // namespace

StatusOr<SliceClassifierOptions> SliceClassifierOptionsFor(std::string_view arch,
                                                           int64_t num_classes) {
  SliceClassifierOptions options;
  options.num_classes = num_classes;
  if (arch == "resnet50") {
    options.kind = SliceClassifierOptions::Kind::kResNetBottleneck;
    options.blocks_per_stage = {3, 4, 6, 3};
  } else if (arch == "resnet18") {
    options.kind = SliceClassifierOptions::Kind::kResNetBasic;
    options.blocks_per_stage = {2, 2, 2, 2};
  } else if (arch == "small") {
    options.kind = SliceClassifierOptions::Kind::kSmall;
    options.blocks_per_stage = {1, 1, 1, 1};
  } else {
    return InvalidArgumentError("classifier: unknown arch '" + std::string(arch) +
                                "' (expected resnet50, resnet18 or small)");
  }
  return options;
}

StatusOr<SliceClassifierOptions::GlobalPool> ParseGlobalPool(std::string_view name) {
  if (name == "avg") return SliceClassifierOptions::GlobalPool::kAverage;
  if (name == "max") return SliceClassifierOptions::GlobalPool::kMax;
  return InvalidArgumentError("classifier: unknown global_pool '" + std::string(name) +
                              "' (expected avg or max)");
}

BasicBlockImpl::BasicBlockImpl(int64_t in_channels, int64_t planes, int64_t stride) {
  conv1_ = register_module("conv1", Conv(in_channels, planes, 3, stride));
  bn1_ = register_module("bn1", nn::BatchNorm2d(planes));
  conv2_ = register_module("conv2", Conv(planes, planes, 3, 1));
  bn2_ = register_module("bn2", nn::BatchNorm2d(planes));
  if (stride != 1 || in_channels != planes * kExpansion) {
    downsample_ =
        register_module("downsample", Downsample(in_channels, planes * kExpansion, stride));
  }
}

torch::Tensor BasicBlockImpl::forward(const torch::Tensor& x) {
  torch::Tensor out = torch::relu(bn1_(conv1_(x)));
  out = bn2_(conv2_(out));
  return torch::relu(out + (downsample_ ? downsample_->forward(x) : x));
}

BottleneckImpl::BottleneckImpl(int64_t in_channels, int64_t planes, int64_t stride) {
  conv1_ = register_module("conv1", Conv(in_channels, planes, 1, 1));
  bn1_ = register_module("bn1", nn::BatchNorm2d(planes));
  conv2_ = register_module("conv2", Conv(planes, planes, 3, stride));
  bn2_ = register_module("bn2", nn::BatchNorm2d(planes));
  conv3_ = register_module("conv3", Conv(planes, planes * kExpansion, 1, 1));
  bn3_ = register_module("bn3", nn::BatchNorm2d(planes * kExpansion));
  if (stride != 1 || in_channels != planes * kExpansion) {
    downsample_ =
        register_module("downsample", Downsample(in_channels, planes * kExpansion, stride));
  }
}

torch::Tensor BottleneckImpl::forward(const torch::Tensor& x) {
  torch::Tensor out = torch::relu(bn1_(conv1_(x)));
  out = torch::relu(bn2_(conv2_(out)));
  out = bn3_(conv3_(out));
  return torch::relu(out + (downsample_ ? downsample_->forward(x) : x));
}

SliceClassifierImpl::SliceClassifierImpl(const SliceClassifierOptions& options)
    : options_(options) {
  const Status valid = CheckOptions(options);
  TORCH_CHECK(valid.ok(), valid.message());
  const bool small = options.kind == SliceClassifierOptions::Kind::kSmall;
  in_channels_ = small ? kSmallChannels[0] : 64;
  conv1_ = register_module("conv1", small ? Conv(3, in_channels_, 3, 2) : Conv(3, 64, 7, 2));
  bn1_ = register_module("bn1", nn::BatchNorm2d(in_channels_));
  for (size_t i = 0; i < stages_.size(); ++i) {
    nn::Sequential stage;
    if (small) {
      stage = nn::Sequential(Conv(in_channels_, kSmallChannels[i], 3, kStageStrides[i]),
                             nn::BatchNorm2d(kSmallChannels[i]), nn::ReLU());
      in_channels_ = kSmallChannels[i];
    } else {
      stage = MakeResNetStage(kResNetPlanes[i], options.blocks_per_stage[i], kStageStrides[i]);
    }
    stage_channels_[i] = in_channels_;
    stages_[i] = register_module(std::string(kStageNames[i]), stage);
  }
  fc_ = register_module(
      "fc", nn::Sequential(nn::Flatten(), nn::Linear(in_channels_, options.head_units), nn::ReLU(),
                           nn::Dropout(options.head_dropout),
                           nn::Linear(options.head_units, options.num_classes)));

  // torchvision's ResNet initialization; Linear layers keep PyTorch's default.
  torch::NoGradGuard no_grad;
  for (auto& module : modules(/*include_self=*/false)) {
    if (auto* conv = module->as<nn::Conv2d>()) {
      nn::init::kaiming_normal_(conv->weight, 0.0, torch::kFanOut, torch::kReLU);
    } else if (auto* bn = module->as<nn::BatchNorm2d>()) {
      nn::init::ones_(bn->weight);
      nn::init::zeros_(bn->bias);
    }
  }
}

nn::Sequential SliceClassifierImpl::MakeResNetStage(int64_t planes, int64_t blocks,
                                                    int64_t stride) {
  const bool bottleneck = options_.kind == SliceClassifierOptions::Kind::kResNetBottleneck;
  nn::Sequential stage;
  for (int64_t i = 0; i < blocks; ++i) {
    const int64_t block_stride = i == 0 ? stride : 1;
    if (bottleneck) {
      stage->push_back(Bottleneck(in_channels_, planes, block_stride));
      in_channels_ = planes * BottleneckImpl::kExpansion;
    } else {
      stage->push_back(BasicBlock(in_channels_, planes, block_stride));
      in_channels_ = planes * BasicBlockImpl::kExpansion;
    }
  }
  return stage;
}

torch::Tensor SliceClassifierImpl::Stem(const torch::Tensor& x) {
  return torch::max_pool2d(torch::relu(bn1_(conv1_(x))), /*kernel_size=*/3, /*stride=*/2,
                           /*padding=*/1);
}

torch::Tensor SliceClassifierImpl::Head(const torch::Tensor& features) {
  if (options_.global_pool == SliceClassifierOptions::GlobalPool::kMax) {
    return fc_->forward(std::get<0>(torch::adaptive_max_pool2d(features, {1, 1})));
  }
  return fc_->forward(torch::adaptive_avg_pool2d(features, {1, 1}));
}

torch::Tensor SliceClassifierImpl::forward(const torch::Tensor& x) {
  torch::Tensor h = Stem(x);
  for (auto& stage : stages_) h = stage->forward(h);
  return Head(h);
}

namespace {

int CheckedStageIndex(std::string_view stage) {
  const int index = StageIndex(stage);
  TORCH_CHECK(index >= 0, "unknown classifier stage '", std::string(stage),
              "' (expected layer1..layer4)");
  return index;
}

}  // namespace

torch::Tensor SliceClassifierImpl::ForwardToStage(const torch::Tensor& x, std::string_view stage) {
  const int last = CheckedStageIndex(stage);
  torch::Tensor h = Stem(x);
  for (int i = 0; i <= last; ++i) h = stages_[i]->forward(h);
  return h;
}

torch::Tensor SliceClassifierImpl::ForwardFromStage(const torch::Tensor& stage_output,
                                                    std::string_view stage) {
  torch::Tensor h = stage_output;
  for (int i = CheckedStageIndex(stage) + 1; i < static_cast<int>(stages_.size()); ++i) {
    h = stages_[i]->forward(h);
  }
  return Head(h);
}

std::pair<torch::Tensor, torch::Tensor> SliceClassifierImpl::ForwardWithStage(
    const torch::Tensor& x, std::string_view stage) {
  torch::Tensor features = ForwardToStage(x, stage);
  return {ForwardFromStage(features, stage), features};
}

bool SliceClassifierImpl::IsStageName(std::string_view stage) { return StageIndex(stage) >= 0; }

int64_t SliceClassifierImpl::StageChannels(std::string_view stage) const {
  const int index = StageIndex(stage);
  return index < 0 ? 0 : stage_channels_[index];
}

StatusOr<SliceClassifier> MakeSliceClassifier(const SliceClassifierOptions& options) {
  RETURN_IF_ERROR(CheckOptions(options));
  try {
    return SliceClassifier(options);
  } catch (const c10::Error& e) {
    return InternalError(std::string("classifier: ") + e.what_without_backtrace());
  }
}

StatusOr<SliceClassifier> MakeSliceClassifier(std::string_view arch, int64_t num_classes) {
  ASSIGN_OR_RETURN(SliceClassifierOptions options, SliceClassifierOptionsFor(arch, num_classes));
  return MakeSliceClassifier(options);
}

Status LoadImageNetBackbone(SliceClassifierImpl& model, const std::filesystem::path& path) {
  const std::string where = "ImageNet weights " + path.string();
  if (model.options().kind == SliceClassifierOptions::Kind::kSmall) {
    return FailedPreconditionError(where +
                                   ": the small classifier has no ImageNet weights; "
                                   "use resnet18 or resnet50, or no pretrained file");
  }
  ASSIGN_OR_RETURN(StateDict file, ReadCheckpoint(path));
  // The ImageNet head is 1000-way and CLISC replaces it, so fc.* is skipped on both sides.
  StateDict backbone;
  std::set<std::string> in_file;
  for (auto& [key, value] : file) {
    if (StartsWith(key, "fc.")) continue;
    in_file.insert(key);
    backbone.emplace_back(key, value);
  }
  std::set<std::string> in_module;
  std::vector<std::string> missing;
  auto note = [&](const std::string& key) {
    if (StartsWith(key, "fc.")) return;
    in_module.insert(key);
    // Weights saved before PyTorch 0.4.1 lack the counter; PyTorch itself accepts that.
    if (!in_file.count(key) && !EndsWith(key, ".num_batches_tracked")) missing.push_back(key);
  };
  for (const auto& p : model.named_parameters()) note(p.key());
  for (const auto& b : model.named_buffers()) note(b.key());
  std::vector<std::string> unexpected;
  for (const auto& [key, value] : backbone) {
    if (!in_module.count(key)) unexpected.push_back(key);
  }
  if (!missing.empty()) {
    return NotFoundError(where + ": " + std::to_string(missing.size()) +
                         " backbone key(s) missing: " + KeyList(missing));
  }
  if (!unexpected.empty()) {
    return InvalidArgumentError(
        where + ": " + std::to_string(unexpected.size()) +
        " key(s) this classifier lacks (another architecture?): " + KeyList(unexpected));
  }
  return LoadStateDict(model, backbone, /*strict=*/false).WithContext(where);
}

Status LoadClassifierWeights(SliceClassifierImpl& model, const std::filesystem::path& path,
                             const CheckpointOptions& options) {
  const std::string where = "classifier weights " + path.string();
  ASSIGN_OR_RETURN(StateDict dict, ReadCheckpoint(path, options));
  bool data_parallel = !dict.empty();
  for (const auto& entry : dict)
    data_parallel = data_parallel && StartsWith(entry.first, "module.");
  if (data_parallel) {
    for (auto& entry : dict) entry.first.erase(0, std::string_view("module.").size());
  }
  return LoadStateDict(model, dict, /*strict=*/true).WithContext(where);
}

StatusOr<SliceClassifier> LoadSliceClassifier(const std::filesystem::path& path,
                                              const SliceClassifierOptions& architecture,
                                              const CheckpointOptions& options) {
  ASSIGN_OR_RETURN(SliceClassifier model, MakeSliceClassifier(architecture));
  RETURN_IF_ERROR(LoadClassifierWeights(*model, path, options));
  model->eval();
  return model;
}

StatusOr<SliceClassifier> LoadSliceClassifier(const std::filesystem::path& path,
                                              std::string_view arch,
                                              const CheckpointOptions& options) {
  ASSIGN_OR_RETURN(SliceClassifierOptions architecture, SliceClassifierOptionsFor(arch));
  return LoadSliceClassifier(path, architecture, options);
}

}  // namespace clisc::models
