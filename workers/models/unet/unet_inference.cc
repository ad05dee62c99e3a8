#include "workers/models/unet/unet_inference.h"

#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "workers/models/compute_device.h"
#include "workers/models/tensor_bridge.h"
#include "workers/segmentation/sliding_window_grid.h"

namespace clisc::models {
namespace {

using Shape3 = std::array<int64_t, 3>;  // (z, y, x)

std::string ShapeText(const Shape3& s) {
  return std::to_string(s[0]) + "x" + std::to_string(s[1]) + "x" + std::to_string(s[2]);
}

// eval() for the scope, then the caller's mode again, on every way out (errors included).
class EvalModeScope {
 public:
  explicit EvalModeScope(UNet3d& model) : model_(model), was_training_(model->is_training()) {
    model_->eval();
  }
  ~EvalModeScope() { model_->train(was_training_); }
  EvalModeScope(const EvalModeScope&) = delete;
  EvalModeScope& operator=(const EvalModeScope&) = delete;

 private:
  UNet3d& model_;
  bool was_training_;
};

// Everything that can be refused before any work: returns the device to run on.
StatusOr<ComputeDevice> ValidateRequest(const UNet3d& model,
                                        const std::vector<FloatVolume>& channels,
                                        const roles::UNetInferenceOptions& options) {
  if (model.is_empty()) return InvalidArgumentError("U-Net inference: the model is null");
  const UNet3dOptions& arch = model->options();
  if (channels.empty()) return InvalidArgumentError("U-Net inference: no input channels");
  if (static_cast<int64_t>(channels.size()) != arch.in_channels) {
    return InvalidArgumentError("U-Net inference: " + std::to_string(channels.size()) +
                                " input channels given, the model takes " +
                                std::to_string(arch.in_channels));
  }
  if (arch.num_classes < 2) {
    return InvalidArgumentError("U-Net inference needs num_classes >= 2, the model has " +
                                std::to_string(arch.num_classes));
  }
  const Dims& size = channels[0].size();
  if (size.count() <= 0) return InvalidArgumentError("U-Net inference: the volume is empty");
  for (size_t c = 1; c < channels.size(); ++c) {
    const Dims& other = channels[c].size();
    if (!(other == size)) {
      return InvalidArgumentError(
          "U-Net inference: channel " + std::to_string(c) + " is " + std::to_string(other.x) + "x" +
          std::to_string(other.y) + "x" + std::to_string(other.z) + " (x,y,z), channel 0 is " +
          std::to_string(size.x) + "x" + std::to_string(size.y) + "x" + std::to_string(size.z));
    }
    if (!channels[c].geometry().NearlyEquals(channels[0].geometry())) {
      return DataLossError("U-Net inference: channel " + std::to_string(c) +
                           " has the voxel grid of channel 0 but a different geometry "
                           "(spacing, origin or direction); the modalities are not registered");
    }
  }
  if (options.mode != "sliding_window" && options.mode != "reference_resize") {
    return InvalidArgumentError("U-Net inference: unknown mode '" + options.mode +
                                "' (sliding_window | reference_resize)");
  }
  const int64_t multiple = model->size_multiple();
  for (int64_t p : options.patch_size) {
    if (p < 1 || p % multiple != 0) {
      return InvalidArgumentError("U-Net inference: patch size " + ShapeText(options.patch_size) +
                                  " is not made of positive multiples of " +
                                  std::to_string(multiple) + " (2^levels of this network)");
    }
  }
  if (!(options.overlap >= 0.0 && options.overlap < 1.0)) {
    return InvalidArgumentError("U-Net inference: overlap " + std::to_string(options.overlap) +
                                " is outside [0, 1)");
  }
  if (options.batch_size < 1) {
    return InvalidArgumentError("U-Net inference: batch_size " +
                                std::to_string(options.batch_size) + " < 1");
  }
  ASSIGN_OR_RETURN(ComputeDevice compute, ParseComputeDevice(options.device, options.precision));
  const auto parameters = model->parameters();
  if (!parameters.empty() && parameters.front().device() != compute.device) {
    return InvalidArgumentError("U-Net inference: the model is on " +
                                parameters.front().device().str() + " but inference.device is " +
                                compute.device.str() + "; move the model first");
  }
  return compute;
}

// The channels as one [C, z, y, x] float tensor (a copy; the volumes stay untouched).
torch::Tensor StackChannels(const std::vector<FloatVolume>& channels) {
  std::vector<torch::Tensor> views;
  views.reserve(channels.size());
  for (const FloatVolume& channel : channels) views.push_back(AsReadOnlyTensor(channel));
  return torch::stack(views);
}

// [N, C, z, y, x] logits -> float32 softmax over classes, with the forward pass under autocast
// when a reduced precision was asked for.
torch::Tensor ForwardSoftmax(UNet3d& model, const torch::Tensor& batch,
                             const ComputeDevice& compute) {
  torch::Tensor logits;
  {
    InferenceAutocast autocast(compute);
    logits = model->forward(batch);
  }
  return torch::softmax(logits.to(torch::kFloat), 1);
}

// Native-resolution tiling: [C_in, z, y, x] on the CPU -> [classes, z, y, x] probabilities.
torch::Tensor SlidingWindowProbabilities(UNet3d& model, const torch::Tensor& image,
                                         const roles::UNetInferenceOptions& options,
                                         const ComputeDevice& compute) {
  const Shape3& patch = options.patch_size;
  const Shape3 size = {image.size(1), image.size(2), image.size(3)};
  Shape3 padded, before;
  for (int a = 0; a < 3; ++a) {
    padded[a] = std::max(size[a], patch[a]);
    before[a] = segmentation::PaddingBefore(size[a], patch[a]);
  }
  // An axis shorter than the patch is padded with each channel's minimum, the background of a
  // z-scored (or raw) MRI, so the network sees what it saw around the brain in training.
  torch::Tensor input = image;
  if (padded != size) {
    const torch::Tensor minima = std::get<0>(image.flatten(1).min(1));
    input = minima.view({-1, 1, 1, 1})
                .expand({image.size(0), padded[0], padded[1], padded[2]})
                .contiguous();
    input.slice(1, before[0], before[0] + size[0])
        .slice(2, before[1], before[1] + size[1])
        .slice(3, before[2], before[2] + size[2])
        .copy_(image);
  }

  std::array<std::vector<int64_t>, 3> starts;
  for (int a = 0; a < 3; ++a) {
    starts[a] = segmentation::SlidingWindowStarts(padded[a], patch[a], options.overlap);
  }
  std::vector<Shape3> windows;
  for (int64_t z : starts[0]) {
    for (int64_t y : starts[1]) {
      for (int64_t x : starts[2]) windows.push_back({z, y, x});
    }
  }

  std::vector<float> weights =
      segmentation::GaussianImportanceMap(patch, options.gaussian_sigma_scale);
  const auto float_on_device = torch::TensorOptions().dtype(torch::kFloat).device(compute.device);
  const torch::Tensor gaussian =
      torch::from_blob(weights.data(), {patch[0], patch[1], patch[2]}, torch::kFloat)
          .to(compute.device, /*non_blocking=*/false, /*copy=*/true);
  const int64_t classes = model->options().num_classes;
  torch::Tensor probability_sum =
      torch::zeros({classes, padded[0], padded[1], padded[2]}, float_on_device);
  torch::Tensor weight_sum = torch::zeros({padded[0], padded[1], padded[2]}, float_on_device);

  auto window_of = [&](const torch::Tensor& t, int first_axis, const Shape3& at) {
    return t.slice(first_axis, at[0], at[0] + patch[0])
        .slice(first_axis + 1, at[1], at[1] + patch[1])
        .slice(first_axis + 2, at[2], at[2] + patch[2]);
  };
  const size_t batch_size = static_cast<size_t>(options.batch_size);
  for (size_t first = 0; first < windows.size(); first += batch_size) {
    const size_t last = std::min(windows.size(), first + batch_size);
    std::vector<torch::Tensor> crops;
    for (size_t w = first; w < last; ++w) crops.push_back(window_of(input, 1, windows[w]));
    const torch::Tensor batch = torch::stack(crops).to(compute.device);
    const torch::Tensor weighted = ForwardSoftmax(model, batch, compute) * gaussian;
    for (size_t w = first; w < last; ++w) {
      window_of(probability_sum, 1, windows[w]).add_(weighted[static_cast<int64_t>(w - first)]);
      window_of(weight_sum, 0, windows[w]).add_(gaussian);
    }
  }
  return (probability_sum / weight_sum)
      .slice(1, before[0], before[0] + size[0])
      .slice(2, before[1], before[1] + size[1])
      .slice(3, before[2], before[2] + size[2])
      .to(torch::kCPU)
      .contiguous();
}

// scipy.ndimage.zoom(order=0) of a [C, z, y, x] tensor to `out` (z, y, x). Outputs that scipy's
// constant mode fills (the index map's -1) take fill[c] in channel c.
torch::Tensor NearestZoom(torch::Tensor t, const Shape3& out, const std::vector<float>& fill) {
  for (int a = 0; a < 3; ++a) {
    const std::vector<int64_t> map = segmentation::NearestZoomIndices(t.size(a + 1), out[a]);
    std::vector<int64_t> clamped(map.size()), outside;
    for (size_t i = 0; i < map.size(); ++i) {
      clamped[i] = std::max<int64_t>(map[i], 0);
      if (map[i] < 0) outside.push_back(static_cast<int64_t>(i));
    }
    t = t.index_select(a + 1, torch::tensor(clamped, torch::kLong).to(t.device()));
    if (!outside.empty()) {
      const torch::Tensor positions = torch::tensor(outside, torch::kLong).to(t.device());
      for (int64_t c = 0; c < t.size(0); ++c) t[c].index_fill_(a, positions, fill[c]);
    }
  }
  return t;
}

// The reference's test_single_volume: [C_in, z, y, x] -> [classes, z, y, x] probabilities.
torch::Tensor ReferenceResizeProbabilities(UNet3d& model, const torch::Tensor& image,
                                           const roles::UNetInferenceOptions& options,
                                           const ComputeDevice& compute) {
  const Shape3 size = {image.size(1), image.size(2), image.size(3)};
  const std::vector<float> zero_fill(static_cast<size_t>(image.size(0)), 0.0f);
  const torch::Tensor resized = NearestZoom(image, options.patch_size, zero_fill);
  const torch::Tensor probabilities =
      ForwardSoftmax(model, resized.unsqueeze(0).to(compute.device), compute)[0].to(torch::kCPU);
  // Where scipy writes cval 0 into the zoomed-back labels the voxel is background, i.e.
  // probability 1 for class 0.
  std::vector<float> background_fill(static_cast<size_t>(probabilities.size(0)), 0.0f);
  background_fill[0] = 1.0f;
  return NearestZoom(probabilities, size, background_fill).contiguous();
}

StatusOr<torch::Tensor> PredictClassProbabilities(UNet3d& model,
                                                  const std::vector<FloatVolume>& channels,
                                                  const roles::UNetInferenceOptions& options) {
  ASSIGN_OR_RETURN(ComputeDevice compute, ValidateRequest(model, channels, options));
  try {
    torch::NoGradGuard no_grad;
    EvalModeScope eval(model);
    const torch::Tensor image = StackChannels(channels);
    if (options.mode == "reference_resize") {
      return ReferenceResizeProbabilities(model, image, options, compute);
    }
    return SlidingWindowProbabilities(model, image, options, compute);
  } catch (const c10::Error& e) {
    return InternalError(std::string("U-Net inference (") + options.mode +
                         ") failed in LibTorch: " + e.what_without_backtrace());
  }
}

}  // namespace

StatusOr<LabelVolume> PredictUNetLabels(UNet3d& model, const std::vector<FloatVolume>& channels,
                                        const roles::UNetInferenceOptions& options) {
  ASSIGN_OR_RETURN(torch::Tensor probabilities,
                   PredictClassProbabilities(model, channels, options));
  try {
    // argmax keeps the first class on exact ties, i.e. background.
    return LabelsFromTensor(probabilities.argmax(0), channels[0].geometry());
  } catch (const c10::Error& e) {
    return InternalError(std::string("U-Net inference argmax failed in LibTorch: ") +
                         e.what_without_backtrace());
  }
}

StatusOr<FloatVolume> PredictUNetProbabilities(UNet3d& model,
                                               const std::vector<FloatVolume>& channels,
                                               const roles::UNetInferenceOptions& options) {
  ASSIGN_OR_RETURN(torch::Tensor probabilities,
                   PredictClassProbabilities(model, channels, options));
  return VolumeFromTensor(probabilities[1], channels[0].geometry());
}

}  // namespace clisc::models
