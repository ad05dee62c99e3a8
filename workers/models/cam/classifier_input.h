// The classifier's input image, as CLISC step1-2 (L58-68) makes it from an axial slice:
// the float slice (PIL mode "F", float32) min-max scaled to 8 bits with
// `(x - min) / (max - min + 1e-6) * 255` and truncated, then torchvision's Resize((224, 224)) on
// the "L" image (Pillow bilinear, antialiased when shrinking), then ToTensor ([0, 1]) repeated to
// three channels. The 8-bit steps are torch-free so they can also feed image writers and the
// masking of AMDA; ClassifierInputs makes the batch tensor.
#pragma once

#include <torch/types.h>

#include <vector>

#include "common/status.h"
#include "workers/backends/slice_image.h"

namespace clisc::models {

inline constexpr int kClassifierImageSize = 224;

// CLISC's min-max to uint8. In float32 as numpy computes it, except the denominator
// `max - min + 1e-6`, which numpy forms in double and rounds to float32 once. A constant slice
// gives all zeros. INVALID_ARGUMENT when the pixel count does not match the size or is zero.
StatusOr<backends::GrayImage> SliceToGray(const backends::FloatSlice& slice);

// Pillow-exact bilinear resize of an 8-bit image to size x size (common/pil_resample.h).
StatusOr<backends::GrayImage> ResizeForClassifier(const backends::GrayImage& image,
                                                  int size = kClassifierImageSize);

// ToTensor and the three-channel repeat: [3, H, W] float32, pixel / 255.
torch::Tensor GrayToInputTensor(const backends::GrayImage& image);

// The whole transform for a batch: [N, 3, size, size] float32 on the CPU. INVALID_ARGUMENT for an
// empty batch or a malformed slice (naming its index).
StatusOr<torch::Tensor> ClassifierInputs(const std::vector<backends::FloatSlice>& slices,
                                         int size = kClassifierImageSize);

}  // namespace clisc::models
