#include "workers/models/clip/clip_preprocess.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "common/pil_resample.h"

namespace clisc::models {
namespace {

using backends::FloatSlice;
using backends::GrayImage;

// Python's int(round(d / 2.0)) for a non-negative integer d: halves go to the even neighbour.
int HalfRoundedToEven(int d) {
  const int half = d / 2;
  if (d % 2 == 0) return half;
  return half % 2 == 0 ? half : half + 1;
}

template <typename Image>
Status CheckImage(const Image& image, size_t size, int n_px) {
  if (n_px <= 0) return InvalidArgumentError("CLIP preprocessing: n_px must be positive");
  if (image.width <= 0 || image.height <= 0)
    return InvalidArgumentError("CLIP preprocessing: empty image " + std::to_string(image.width) +
                                "x" + std::to_string(image.height));
  if (size != static_cast<size_t>(image.width) * static_cast<size_t>(image.height))
    return InvalidArgumentError("CLIP preprocessing: " + std::to_string(size) + " pixels for a " +
                                std::to_string(image.width) + "x" + std::to_string(image.height) +
                                " image");
  return OkStatus();
}

// CenterCrop of either image type; `field` names its pixel vector.
template <typename Image, typename Pixels>
Image Crop(const Image& image, Pixels Image::*field, int n_px) {
  const Pixels& pixels = image.*field;
  const CropOffset offset = ClipCropOffset(image.height, image.width, n_px);
  Image out;
  out.width = n_px;
  out.height = n_px;
  (out.*field).resize(static_cast<size_t>(n_px) * n_px);
  for (int y = 0; y < n_px; ++y) {
    const auto row =
        pixels.begin() + static_cast<size_t>(y + offset.top) * image.width + offset.left;
    std::copy(row, row + n_px, (out.*field).begin() + static_cast<size_t>(y) * n_px);
  }
  return out;
}

}  // namespace

ImageSize ClipResizedSize(int height, int width, int n_px) {
  const int shorter = std::min(height, width), longer = std::max(height, width);
  // Python: int(n_px * long / short), a correctly rounded double division, then truncation.
  const int new_long = static_cast<int>(static_cast<double>(int64_t{n_px} * longer) / shorter);
  return width <= height ? ImageSize{new_long, n_px} : ImageSize{n_px, new_long};
}

CropOffset ClipCropOffset(int height, int width, int n_px) {
  return CropOffset{HalfRoundedToEven(height - n_px), HalfRoundedToEven(width - n_px)};
}

GrayImage ClipResize(const GrayImage& image, int n_px) {
  const ImageSize size = ClipResizedSize(image.height, image.width, n_px);
  if (size.height == image.height && size.width == image.width) return image;
  return GrayImage{size.width, size.height,
                   PilResize(image.pixels.data(), image.width, image.height, /*channels=*/1,
                             size.width, size.height, PilFilter::kBicubic)};
}

FloatSlice ClipResize(const FloatSlice& image, int n_px) {
  const ImageSize size = ClipResizedSize(image.height, image.width, n_px);
  if (size.height == image.height && size.width == image.width) return image;
  return FloatSlice{size.width, size.height,
                    PilResize(image.values.data(), image.width, image.height, size.width,
                              size.height, PilFilter::kBicubic)};
}

GrayImage ClipCenterCrop(const GrayImage& image, int n_px) {
  return Crop(image, &GrayImage::pixels, n_px);
}

FloatSlice ClipCenterCrop(const FloatSlice& image, int n_px) {
  return Crop(image, &FloatSlice::values, n_px);
}

GrayImage PilFloatToGray(const FloatSlice& image) {
  GrayImage out{image.width, image.height, std::vector<uint8_t>(image.values.size())};
  std::transform(image.values.begin(), image.values.end(), out.pixels.begin(), [](float v) {
    if (!(v > 0.0f)) return uint8_t{0};  // also NaN
    if (v >= 255.0f) return uint8_t{255};
    return static_cast<uint8_t>(v);
  });
  return out;
}

torch::Tensor ClipNormalize(const GrayImage& image) {
  const int64_t plane = static_cast<int64_t>(image.width) * image.height;
  torch::Tensor out = torch::empty({3, image.height, image.width}, torch::kFloat);
  float* data = out.data_ptr<float>();
  for (int c = 0; c < 3; ++c) {
    // 256 possible values per channel; each computed in float32 like ToTensor + Normalize.
    std::array<float, 256> table;
    for (int v = 0; v < 256; ++v)
      table[v] = (static_cast<float>(v) / 255.0f - kClipMean[c]) / kClipStd[c];
    float* channel = data + c * plane;
    for (int64_t i = 0; i < plane; ++i) channel[i] = table[image.pixels[i]];
  }
  return out;
}

StatusOr<torch::Tensor> ClipPreprocess(const GrayImage& image, int n_px) {
  RETURN_IF_ERROR(CheckImage(image, image.pixels.size(), n_px));
  return ClipNormalize(ClipCenterCrop(ClipResize(image, n_px), n_px));
}

StatusOr<torch::Tensor> ClipPreprocess(const FloatSlice& image, int n_px) {
  RETURN_IF_ERROR(CheckImage(image, image.values.size(), n_px));
  return ClipNormalize(PilFloatToGray(ClipCenterCrop(ClipResize(image, n_px), n_px)));
}

StatusOr<ClipInputMode> ParseClipInputMode(std::string_view text) {
  if (text == "standard") return ClipInputMode::kStandard;
  if (text == "reference_pil") return ClipInputMode::kReferencePil;
  return InvalidArgumentError("clip.input '" + std::string(text) +
                              "': expected standard or reference_pil");
}

std::string_view ClipInputModeName(ClipInputMode mode) {
  return mode == ClipInputMode::kReferencePil ? "reference_pil" : "standard";
}

GrayImage MinMaxToGray(const FloatSlice& slice) {
  GrayImage out{slice.width, slice.height, std::vector<uint8_t>(slice.values.size())};
  if (slice.values.empty()) return out;
  const auto [lo_it, hi_it] = std::minmax_element(slice.values.begin(), slice.values.end());
  const float lo = *lo_it;
  // numpy: (max - min) is a float32 scalar, + 1e-6 promotes it to float64, and dividing the
  // float32 array casts the result back to float32.
  const float denominator = static_cast<float>(static_cast<double>(*hi_it - lo) + 1e-6);
  std::transform(slice.values.begin(), slice.values.end(), out.pixels.begin(), [&](float v) {
    const float scaled = (v - lo) / denominator * 255.0f;
    return static_cast<uint8_t>(std::clamp(scaled, 0.0f, 255.0f));
  });
  return out;
}

StatusOr<torch::Tensor> ClipSliceInput(const FloatSlice& slice, ClipInputMode mode, int n_px) {
  RETURN_IF_ERROR(CheckImage(slice, slice.values.size(), n_px));
  for (float v : slice.values) {
    if (!std::isfinite(v))
      return InvalidArgumentError("CLIP slice input: the slice holds a non-finite value");
  }
  if (mode == ClipInputMode::kReferencePil) return ClipPreprocess(slice, n_px);
  return ClipPreprocess(MinMaxToGray(slice), n_px);
}

}  // namespace clisc::models
