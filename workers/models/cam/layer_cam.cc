#include "workers/models/cam/layer_cam.h"

#include <torch/torch.h>

#include <sstream>
#include <string>
#include <utility>

namespace clisc::models {
namespace {

namespace F = torch::nn::functional;

// Eval mode for a scope, then the model's previous mode again.
class EvalModeScope {
 public:
  explicit EvalModeScope(torch::nn::Module& model)
      : model_(model), was_training_(model.is_training()) {
    model_.eval();
  }
  ~EvalModeScope() { model_.train(was_training_); }
  EvalModeScope(const EvalModeScope&) = delete;
  EvalModeScope& operator=(const EvalModeScope&) = delete;

 private:
  torch::nn::Module& model_;
  bool was_training_;
};

std::string ShapeText(const torch::Tensor& t) {
  std::ostringstream out;
  out << t.sizes();
  return out.str();
}

Status CheckInputs(const torch::Tensor& inputs) {
  if (!inputs.defined()) return InvalidArgumentError("classifier input: undefined tensor");
  if (inputs.dim() != 4 || inputs.size(1) != 3 || inputs.size(0) < 1 || inputs.size(2) < 1 ||
      inputs.size(3) < 1) {
    return InvalidArgumentError("classifier input: expected [N, 3, H, W] with N >= 1, got " +
                                ShapeText(inputs));
  }
  if (!inputs.is_floating_point()) {
    return InvalidArgumentError("classifier input: expected a float tensor");
  }
  return OkStatus();
}

std::string FirstLine(const std::string& text) { return text.substr(0, text.find('\n')); }

}  // namespace

torch::Tensor MinMaxScaleCams(const torch::Tensor& cams) {
  torch::Tensor x = cams - cams.amin({-2, -1}, /*keepdim=*/true);
  // numpy adds the Python float 1e-7 to the float32 max in double, then divides in float32.
  const torch::Tensor denominator =
      (x.amax({-2, -1}, /*keepdim=*/true).to(torch::kDouble) + 1e-7).to(x.scalar_type());
  return x / denominator;
}

torch::Tensor ResizeCams(const torch::Tensor& cams, int64_t height, int64_t width) {
  const bool single = cams.dim() == 2;
  torch::Tensor maps = (single ? cams.unsqueeze(0) : cams).unsqueeze(1);
  if (maps.size(2) != height || maps.size(3) != width) {
    maps = F::interpolate(maps, F::InterpolateFuncOptions()
                                    .size(std::vector<int64_t>{height, width})
                                    .mode(torch::kBilinear)
                                    .align_corners(false));
  }
  maps = maps.squeeze(1);
  return single ? maps.squeeze(0) : maps;
}

LayerCamMaps CamsFromLayer(const torch::Tensor& activations, const torch::Tensor& gradients,
                           int64_t height, int64_t width) {
  const torch::Tensor a = activations.to(torch::kFloat);
  const torch::Tensor g = gradients.to(torch::kFloat);
  LayerCamMaps maps;
  maps.raw_cams = torch::relu((torch::relu(g) * a).sum(1));
  const torch::Tensor upsampled = ResizeCams(MinMaxScaleCams(maps.raw_cams), height, width);
  // pytorch_grad_cam's multi-layer aggregation (ReLU, mean over one layer), then rescaling.
  maps.cams = MinMaxScaleCams(torch::relu(upsampled));
  return maps;
}

StatusOr<LayerCamResult> LayerCam(SliceClassifierImpl& model, const torch::Tensor& inputs,
                                  const LayerCamOptions& options) {
  RETURN_IF_ERROR(CheckInputs(inputs));
  if (!SliceClassifierImpl::IsStageName(options.layer)) {
    return InvalidArgumentError("LayerCAM: unknown layer '" + options.layer +
                                "' (expected layer1..layer4)");
  }
  const int64_t num_classes = model.options().num_classes;
  if (options.target_class < 0 || options.target_class >= num_classes) {
    return InvalidArgumentError("LayerCAM: target class " + std::to_string(options.target_class) +
                                " outside 0.." + std::to_string(num_classes - 1));
  }
  try {
    EvalModeScope eval(model);
    torch::Tensor activations;
    {
      torch::NoGradGuard no_grad;
      activations = model.ForwardToStage(inputs, options.layer);
    }
    // A leaf at the stage's output: its gradient is G, and nothing before it is recorded.
    activations.requires_grad_(true);
    torch::AutoGradMode grad_enabled(true);
    const torch::Tensor logits = model.ForwardFromStage(activations, options.layer);
    // Summing over the batch keeps the images apart: each logit depends on its own image only.
    const torch::Tensor target = logits.select(1, options.target_class).sum();
    const torch::Tensor gradients = torch::autograd::grad({target}, {activations})[0];

    LayerCamResult result;
    result.logits = logits.detach().to(torch::kFloat);
    LayerCamMaps maps =
        CamsFromLayer(activations.detach(), gradients, inputs.size(2), inputs.size(3));
    result.raw_cams = std::move(maps.raw_cams);
    result.cams = std::move(maps.cams);
    if (options.keep_layer_tensors) {
      result.activations = activations.detach().to(torch::kFloat);
      result.gradients = gradients.to(torch::kFloat);
    }
    return result;
  } catch (const c10::Error& e) {
    return InternalError("LayerCAM: " + FirstLine(e.what_without_backtrace()));
  }
}

StatusOr<torch::Tensor> ClassifierLogits(SliceClassifierImpl& model, const torch::Tensor& inputs) {
  RETURN_IF_ERROR(CheckInputs(inputs));
  try {
    EvalModeScope eval(model);
    torch::NoGradGuard no_grad;
    return model.forward(inputs).to(torch::kFloat);
  } catch (const c10::Error& e) {
    return InternalError("classifier: " + FirstLine(e.what_without_backtrace()));
  }
}

}  // namespace clisc::models
