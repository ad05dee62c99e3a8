#include "workers/models/sam/sam_transforms.h"

#include <torch/torch.h>

#include <algorithm>
#include <vector>

#include "common/pil_resample.h"

namespace clisc::models {

namespace F = torch::nn::functional;

SamImageSize ResizeLongestSide::GetPreprocessShape(int64_t old_h, int64_t old_w,
                                                   int64_t long_side_length) {
  const double scale =
      static_cast<double>(long_side_length) * 1.0 / static_cast<double>(std::max(old_h, old_w));
  const double new_h = static_cast<double>(old_h) * scale;
  const double new_w = static_cast<double>(old_w) * scale;
  // Python's int() truncates; the + 0.5 makes it round half up for these positive sizes.
  return {static_cast<int64_t>(new_h + 0.5), static_cast<int64_t>(new_w + 0.5)};
}

torch::Tensor ResizeLongestSide::ApplyImage(const torch::Tensor& image) const {
  TORCH_CHECK(image.dim() == 3 && image.size(2) == 3 && image.scalar_type() == torch::kUInt8,
              "ResizeLongestSide: expected a uint8 [H, W, 3] image, got ", image.scalar_type(), " ",
              image.sizes());
  const int64_t height = image.size(0), width = image.size(1);
  TORCH_CHECK(height > 0 && width > 0, "ResizeLongestSide: empty image ", image.sizes());
  const auto [new_h, new_w] = GetPreprocessShape(height, width, target_length_);
  TORCH_CHECK(new_h > 0 && new_w > 0, "ResizeLongestSide: ", height, "x", width,
              " resized to a longest side of ", target_length_, " has an empty side");
  const torch::Tensor pixels = image.to(torch::kCPU).contiguous();
  std::vector<uint8_t> resized =
      PilResize(pixels.data_ptr<uint8_t>(), static_cast<int>(width), static_cast<int>(height), 3,
                static_cast<int>(new_w), static_cast<int>(new_h), PilFilter::kBilinear);
  return torch::from_blob(resized.data(), {new_h, new_w, 3}, torch::kUInt8).clone();
}

torch::Tensor ResizeLongestSide::ApplyCoords(const torch::Tensor& coords,
                                             SamImageSize original_size) const {
  TORCH_CHECK(coords.dim() >= 1 && coords.size(-1) == 2,
              "ResizeLongestSide: coordinates must be [..., 2], got ", coords.sizes());
  const auto [old_h, old_w] = original_size;
  const auto [new_h, new_w] = GetPreprocessShape(old_h, old_w, target_length_);
  torch::Tensor out = coords.to(torch::kDouble).clone();
  out.select(-1, 0).mul_(static_cast<double>(new_w) / static_cast<double>(old_w));
  out.select(-1, 1).mul_(static_cast<double>(new_h) / static_cast<double>(old_h));
  return out;
}

torch::Tensor ResizeLongestSide::ApplyBoxes(const torch::Tensor& boxes,
                                            SamImageSize original_size) const {
  TORCH_CHECK(boxes.numel() % 4 == 0, "ResizeLongestSide: boxes must be [..., 4], got ",
              boxes.sizes());
  return ApplyCoords(boxes.reshape({-1, 2, 2}), original_size).reshape({-1, 4});
}

torch::Tensor SamPreprocess(const torch::Tensor& image, const std::array<double, 3>& pixel_mean,
                            const std::array<double, 3>& pixel_std, int64_t img_size) {
  TORCH_CHECK(image.dim() == 4 && image.size(1) == 3, "SAM preprocess: expected [B, 3, h, w], got ",
              image.sizes());
  const auto options = torch::TensorOptions().dtype(torch::kFloat).device(image.device());
  // float32 constants, as the official registered buffers.
  const torch::Tensor mean =
      torch::tensor({pixel_mean[0], pixel_mean[1], pixel_mean[2]}, options).view({3, 1, 1});
  const torch::Tensor std =
      torch::tensor({pixel_std[0], pixel_std[1], pixel_std[2]}, options).view({3, 1, 1});
  const torch::Tensor normalized = (image.to(torch::kFloat) - mean) / std;
  const int64_t pad_h = img_size - image.size(2);
  const int64_t pad_w = img_size - image.size(3);
  TORCH_CHECK(pad_h >= 0 && pad_w >= 0, "SAM preprocess: image ", image.sizes(), " is larger than ",
              img_size);
  return F::pad(normalized, F::PadFuncOptions({0, pad_w, 0, pad_h}));
}

torch::Tensor SamPostprocessMasks(const torch::Tensor& masks, int64_t img_size,
                                  SamImageSize input_size, SamImageSize original_size) {
  const auto bilinear = [](const torch::Tensor& x, int64_t h, int64_t w) {
    return F::interpolate(x, F::InterpolateFuncOptions()
                                 .size(std::vector<int64_t>{h, w})
                                 .mode(torch::kBilinear)
                                 .align_corners(false));
  };
  torch::Tensor out = bilinear(masks.to(torch::kFloat), img_size, img_size);
  out = out.slice(2, 0, input_size.first).slice(3, 0, input_size.second);
  return bilinear(out, original_size.first, original_size.second);
}

}  // namespace clisc::models
