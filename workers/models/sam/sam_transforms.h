// SAM's input and output transforms, as the official code does them
// (segment_anything/utils/transforms.py and Sam.preprocess / Sam.postprocess_masks):
// resize the longest side through Pillow's bilinear filter, map prompt coordinates into the
// resized frame, normalize and pad the image, and bring mask logits back to the original size.
#pragma once

#include <torch/types.h>

#include <array>
#include <cstdint>
#include <utility>

namespace clisc::models {

// (height, width) of an image.
using SamImageSize = std::pair<int64_t, int64_t>;

class ResizeLongestSide {
 public:
  explicit ResizeLongestSide(int64_t target_length) : target_length_(target_length) {}

  int64_t target_length() const { return target_length_; }

  // The official get_preprocess_shape: s = L / max(H, W) in double, then each side scaled and
  // rounded half up, int(x + 0.5). A side can become 0 (1 x 1000 at 128); callers check.
  static SamImageSize GetPreprocessShape(int64_t old_h, int64_t old_w, int64_t long_side_length);

  // uint8 [H, W, 3] on the CPU -> uint8 [h, w, 3], resized exactly as torchvision's resize on a
  // PIL RGB image (Pillow 9.4 bilinear, bit for bit). Throws c10::Error on a bad shape or dtype.
  torch::Tensor ApplyImage(const torch::Tensor& image) const;

  // Points [..., 2] (x, y) in the original image's pixels, any real or integer dtype ->
  // float64 in the resized frame: x * (new_w / old_w), y * (new_h / old_h), unclipped.
  torch::Tensor ApplyCoords(const torch::Tensor& coords, SamImageSize original_size) const;

  // Boxes [..., 4] XYXY, transformed as two points each -> float64 [N, 4].
  torch::Tensor ApplyBoxes(const torch::Tensor& boxes, SamImageSize original_size) const;

 private:
  int64_t target_length_;
};

// Sam.preprocess: image [B, 3, h, w] (uint8 or float, any device) -> float32
// (x - mean) / std, then zero-padded on the bottom and right to img_size x img_size.
torch::Tensor SamPreprocess(const torch::Tensor& image, const std::array<double, 3>& pixel_mean,
                            const std::array<double, 3>& pixel_std, int64_t img_size);

// Sam.postprocess_masks: low-res logits [B, C, h, w] -> bilinear (align_corners=False, no
// antialias) to img_size^2, crop to input_size, bilinear to original_size. Float32 out.
torch::Tensor SamPostprocessMasks(const torch::Tensor& masks, int64_t img_size,
                                  SamImageSize input_size, SamImageSize original_size);

}  // namespace clisc::models
