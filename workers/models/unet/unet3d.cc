#include "workers/models/unet/unet3d.h"

#include <torch/torch.h>

#include <array>
#include <string>
#include <utility>

#include "workers/models/checkpoint_reader.h"

namespace clisc::models {
namespace {

namespace F = torch::nn::functional;

torch::nn::Sequential ConvNormRelu(int64_t in_channels, int64_t out_channels) {
  return torch::nn::Sequential(
      torch::nn::Conv3d(torch::nn::Conv3dOptions(in_channels, out_channels, 3).padding(1)),
      torch::nn::InstanceNorm3d(torch::nn::InstanceNorm3dOptions(out_channels)),
      torch::nn::ReLU(torch::nn::ReLUOptions(/*inplace=*/true)));
}

// Python's floor division, which the reference's offset // 2 uses (offsets can be negative).
int64_t FloorHalf(int64_t value) { return value >= 0 ? value / 2 : -((-value + 1) / 2); }

std::string ShapeText(torch::IntArrayRef sizes) {
  std::string out = "[";
  for (size_t i = 0; i < sizes.size(); ++i) out += (i ? ", " : "") + std::to_string(sizes[i]);
  return out + "]";
}

bool AllKeysStartWith(const StateDict& dict, const std::string& prefix) {
  if (dict.empty()) return false;
  for (const auto& [name, tensor] : dict) {
    if (name.rfind(prefix, 0) != 0) return false;
  }
  return true;
}

// Strips wrappers' key prefixes shared by every key: DataParallel's "module.", and "model." or
// "state_dict." of a dict saved flat, in any nesting ("state_dict.module.conv1...").
void StripWrapperPrefixes(StateDict& dict) {
  static const std::array<std::string, 3> kPrefixes = {"module.", "model.", "state_dict."};
  for (bool stripped = true; stripped;) {
    stripped = false;
    for (const std::string& prefix : kPrefixes) {
      if (!AllKeysStartWith(dict, prefix)) continue;
      for (auto& entry : dict) entry.first.erase(0, prefix.size());
      stripped = true;
    }
  }
}

// The state dict of a plain torch.save(model.state_dict()) file, or of a training checkpoint
// that nests it under "state_dict" or "model" beside non-tensor entries (epoch, optimizer...).
StatusOr<StateDict> ReadUNetStateDict(const std::filesystem::path& path) {
  StatusOr<StateDict> plain = ReadCheckpoint(path);
  if (plain.ok()) return std::move(*plain);
  // A non-tensor leaf is INVALID_ARGUMENT for the plain read: try the usual nestings.
  if (plain.status().code() != StatusCode::kInvalidArgument) return plain.status();
  for (const char* prefix : {"state_dict.", "model."}) {
    StatusOr<StateDict> nested = ReadCheckpoint(path, {.prefix = prefix});
    if (nested.ok()) return std::move(*nested);
    if (nested.status().code() != StatusCode::kNotFound) return nested.status();
  }
  return plain.status().WithContext(
      "not a state dict, and no \"state_dict\" or \"model\" entry holds one");
}

}  // namespace

Status ValidateUNet3dOptions(const UNet3dOptions& options) {
  if (options.feature_channels.size() < 2) {
    return InvalidArgumentError("unet feature_channels needs at least 2 levels, got " +
                                std::to_string(options.feature_channels.size()));
  }
  for (int64_t channels : options.feature_channels) {
    if (channels < 1) {
      return InvalidArgumentError("unet feature_channels must be >= 1, got " +
                                  std::to_string(channels));
    }
  }
  if (options.in_channels < 1) {
    return InvalidArgumentError("unet in_channels must be >= 1, got " +
                                std::to_string(options.in_channels));
  }
  if (options.num_classes < 1) {
    return InvalidArgumentError("unet num_classes must be >= 1, got " +
                                std::to_string(options.num_classes));
  }
  if (!(options.dropout >= 0.0 && options.dropout < 1.0)) {
    return InvalidArgumentError("unet dropout must be in [0, 1), got " +
                                std::to_string(options.dropout));
  }
  return OkStatus();
}

UNetConvBlockImpl::UNetConvBlockImpl(int64_t in_channels, int64_t out_channels)
    : conv1(register_module("conv1", ConvNormRelu(in_channels, out_channels))),
      conv2(register_module("conv2", ConvNormRelu(out_channels, out_channels))) {}

torch::Tensor UNetConvBlockImpl::forward(const torch::Tensor& x) {
  return conv2->forward(conv1->forward(x));
}

UNetUpBlockImpl::UNetUpBlockImpl(int64_t in_channels, int64_t out_channels)
    : conv(register_module("conv", UNetConvBlock(in_channels + out_channels, out_channels))),
      up(register_module("up", torch::nn::Upsample(torch::nn::UpsampleOptions()
                                                       .scale_factor(std::vector<double>{2, 2, 2})
                                                       .mode(torch::kTrilinear)
                                                       .align_corners(false)))) {}

torch::Tensor UNetUpBlockImpl::forward(const torch::Tensor& skip, const torch::Tensor& deeper) {
  torch::Tensor upsampled = up->forward(deeper);
  // The reference pads the skip by 2 * [offset // 2, offset // 2, 0], i.e. W by (h, h), H by
  // (0, h) and D by (h, 0); h is 0 for the sizes forward() accepts, kept for fidelity.
  const int64_t half = FloorHalf(upsampled.size(2) - skip.size(2));
  torch::Tensor padded = skip;
  if (half != 0) padded = F::pad(skip, F::PadFuncOptions({half, half, 0, half, half, 0}));
  return conv->forward(torch::cat({padded, upsampled}, 1));
}

UNet3dImpl::UNet3dImpl(const UNet3dOptions& options) : options_(options) {
  const Status valid = ValidateUNet3dOptions(options);
  TORCH_CHECK(valid.ok(), valid.message());
  const std::vector<int64_t>& channels = options.feature_channels;
  const size_t levels = channels.size() - 1;
  // Registration order is the reference's attribute order, which fixes the state_dict order.
  int64_t in = options.in_channels;
  for (size_t i = 0; i < levels; ++i) {
    const std::string level = std::to_string(i + 1);
    encoders_.push_back(register_module("conv" + level, UNetConvBlock(in, channels[i])));
    pools_.push_back(
        register_module("maxpool" + level, torch::nn::MaxPool3d(torch::nn::MaxPool3dOptions(2))));
    in = channels[i];
  }
  center_ = register_module("center", UNetConvBlock(channels[levels - 1], channels[levels]));
  decoders_.resize(levels, nullptr);
  for (size_t i = levels; i-- > 0;) {
    decoders_[i] = register_module("up_concat" + std::to_string(i + 1),
                                   UNetUpBlock(channels[i + 1], channels[i]));
  }
  final_ = register_module(
      "final", torch::nn::Conv3d(torch::nn::Conv3dOptions(channels[0], options.num_classes, 1)));
  dropout1_ = register_module("dropout1", torch::nn::Dropout(options.dropout));
  dropout2_ = register_module("dropout2", torch::nn::Dropout(options.dropout));

  // init_weights(m, 'kaiming') on every Conv3d: kaiming_normal_(a=0, mode='fan_in'); the
  // biases keep the uniform default the Conv3d constructor gave them.
  torch::NoGradGuard no_grad;
  for (const auto& module : modules(/*include_self=*/false)) {
    if (auto* conv = module->as<torch::nn::Conv3d>()) {
      torch::nn::init::kaiming_normal_(conv->weight, 0.0, torch::kFanIn, torch::kLeakyReLU);
    }
  }
}

torch::Tensor UNet3dImpl::forward(const torch::Tensor& input) {
  TORCH_CHECK(input.dim() == 5, "unet input must be [N, C, D, H, W], got ",
              ShapeText(input.sizes()));
  TORCH_CHECK(input.size(1) == options_.in_channels, "unet input has ", input.size(1),
              " channels, the network takes ", options_.in_channels);
  for (int64_t axis = 2; axis < 5; ++axis) {
    TORCH_CHECK(input.size(axis) > 0 && input.size(axis) % size_multiple() == 0, "unet input size ",
                ShapeText(input.sizes()), " must be a positive multiple of ", size_multiple(),
                " on each spatial axis");
  }
  std::vector<torch::Tensor> skips;
  torch::Tensor x = input;
  for (size_t i = 0; i < encoders_.size(); ++i) {
    skips.push_back(encoders_[i]->forward(x));
    x = pools_[i]->forward(skips.back());
  }
  x = dropout1_->forward(center_->forward(x));
  for (size_t i = decoders_.size(); i-- > 0;) x = decoders_[i]->forward(skips[i], x);
  return final_->forward(dropout2_->forward(x));
}

StatusOr<UNet3d> MakeUNet3d(const UNet3dOptions& options) {
  if (Status valid = ValidateUNet3dOptions(options); !valid.ok()) return valid;
  try {
    return UNet3d(options);
  } catch (const c10::Error& e) {
    return InternalError(std::string("building the unet: ") + e.what_without_backtrace());
  }
}

StatusOr<UNet3d> LoadUNet3d(const std::filesystem::path& path, const UNet3dOptions& options) {
  StatusOr<UNet3d> net = MakeUNet3d(options);
  if (!net.ok()) return net.status();
  try {
    StatusOr<StateDict> dict = ReadUNetStateDict(path);
    if (!dict.ok()) return dict.status();
    StripWrapperPrefixes(*dict);
    if (Status loaded = LoadStateDict(**net, *dict, /*strict=*/true); !loaded.ok()) {
      return loaded.WithContext("unet checkpoint " + path.string());
    }
    (*net)->eval();
    return net;
  } catch (const c10::Error& e) {
    return InternalError("loading unet checkpoint " + path.string() + ": " +
                         e.what_without_backtrace());
  }
}

}  // namespace clisc::models
