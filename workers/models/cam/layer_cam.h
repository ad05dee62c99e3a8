// LayerCAM (Jiang et al. 2021) of the slice classifier, computed as pytorch_grad_cam's LayerCAM
// with ClassifierOutputTarget(c) computes it (fixtures/cam/README.md, "Exact LayerCAM
// computation"): in eval mode, A = a stage's output and G = d logit[c] / dA (the raw logit, no
// softmax); cam = relu(sum_c relu(G_c) * A_c); min-max scale (x - min, then / (1e-7 + max));
// bilinear resize (align_corners=False, no antialias) to the input size; min-max scale again.
// Every image is scaled on its own, so a batch gives the CAMs of its images one by one.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>

#include "common/status.h"
#include "workers/models/cam/slice_classifier.h"

namespace clisc::models {

struct LayerCamOptions {
  std::string layer = "layer3";  // `cam.layer`
  int64_t target_class = 1;      // CLISC: 1 = positive (tumor), ImageFolder's sorted classes
  // Also return the stage's activations and gradients (tests, debugging).
  bool keep_layer_tensors = false;
};

struct LayerCamResult {
  torch::Tensor logits;       // [N, num_classes] float32 of the CAM forward pass, detached
  torch::Tensor raw_cams;     // [N, h, w] float32 relu(sum_c relu(G_c) * A_c), before scaling
  torch::Tensor cams;         // [N, H, W] float32 in [0, 1), H x W the input's size
  torch::Tensor activations;  // [N, C, h, w] A, only with keep_layer_tensors
  torch::Tensor gradients;    // [N, C, h, w] G, only with keep_layer_tensors
};

// `inputs`: [N, 3, H, W] float on the model's device. Puts the model in eval mode for the pass
// and restores its previous mode. Runs with gradients enabled even inside a NoGradGuard; the
// parameters get no gradient. Switching modes makes concurrent calls on one model unsafe.
// INVALID_ARGUMENT for a bad shape, layer or target class; INTERNAL when LibTorch fails.
StatusOr<LayerCamResult> LayerCam(SliceClassifierImpl& model, const torch::Tensor& inputs,
                                  const LayerCamOptions& options = {});

// The logits alone, in eval mode and without gradients (which slices the classifier calls
// tumor). Restores the model's previous mode.
StatusOr<torch::Tensor> ClassifierLogits(SliceClassifierImpl& model, const torch::Tensor& inputs);

// The CAM arithmetic alone, from a stage's activations A and gradients G ([N, C, h, w]):
// raw = relu(sum_c relu(G_c) * A_c) [N, h, w], and the final maps [N, height, width]
// (min-max, bilinear resize, ReLU, min-max). In float32 whatever the input type.
struct LayerCamMaps {
  torch::Tensor raw_cams;
  torch::Tensor cams;
};
LayerCamMaps CamsFromLayer(const torch::Tensor& activations, const torch::Tensor& gradients,
                           int64_t height, int64_t width);

// pytorch_grad_cam's scale_cam_image without resizing, per map of a [N, h, w] batch:
// x - min, then x / (1e-7 + max), the denominator rounded to float32 once as numpy does.
torch::Tensor MinMaxScaleCams(const torch::Tensor& cams);

// Bilinear resize of [H, W] or [N, H, W] float maps to height x width with half-pixel centres and
// clamped edges (align_corners=False, no antialias), i.e. cv2.resize INTER_LINEAR on float32
// maps: a CAM from the classifier's 224 x 224 grid back onto the slice's native grid.
torch::Tensor ResizeCams(const torch::Tensor& cams, int64_t height, int64_t width);

}  // namespace clisc::models
