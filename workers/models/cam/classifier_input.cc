#include "workers/models/cam/classifier_input.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "common/pil_resample.h"

namespace clisc::models {
namespace {

Status CheckSize(int width, int height, size_t count, const char* what) {
  if (width < 1 || height < 1 ||
      count != static_cast<size_t>(width) * static_cast<size_t>(height)) {
    return InvalidArgumentError(std::string(what) + ": " + std::to_string(count) +
                                " pixels for a " + std::to_string(width) + " x " +
                                std::to_string(height) + " image");
  }
  return OkStatus();
}

}  // namespace

StatusOr<backends::GrayImage> SliceToGray(const backends::FloatSlice& slice) {
  RETURN_IF_ERROR(CheckSize(slice.width, slice.height, slice.values.size(), "slice"));
  const auto [low, high] = std::minmax_element(slice.values.begin(), slice.values.end());
  const float min = *low;
  const float range = *high - *low;  // a float32 subtraction, as numpy's on float32 scalars
  const float denominator = static_cast<float>(static_cast<double>(range) + 1e-6);
  backends::GrayImage image{slice.width, slice.height, {}};
  image.pixels.resize(slice.values.size());
  for (size_t i = 0; i < slice.values.size(); ++i) {
    // float32 all the way, then astype(uint8): truncation; the value lies in [0, 255).
    const float scaled = (slice.values[i] - min) / denominator * 255.0f;
    image.pixels[i] = static_cast<uint8_t>(std::clamp(scaled, 0.0f, 255.0f));
  }
  return image;
}

StatusOr<backends::GrayImage> ResizeForClassifier(const backends::GrayImage& image, int size) {
  RETURN_IF_ERROR(CheckSize(image.width, image.height, image.pixels.size(), "gray image"));
  if (size < 1) return InvalidArgumentError("classifier image size must be >= 1");
  backends::GrayImage out{size, size, {}};
  out.pixels = PilResize(image.pixels.data(), image.width, image.height, /*channels=*/1, size, size,
                         PilFilter::kBilinear);
  return out;
}

torch::Tensor GrayToInputTensor(const backends::GrayImage& image) {
  torch::Tensor pixels = torch::from_blob(const_cast<uint8_t*>(image.pixels.data()),
                                          {1, image.height, image.width}, torch::kUInt8);
  // ToTensor: float32 division by 255, then the gray channel three times.
  return pixels.to(torch::kFloat).div(255).repeat({3, 1, 1});
}

StatusOr<torch::Tensor> ClassifierInputs(const std::vector<backends::FloatSlice>& slices,
                                         int size) {
  if (slices.empty()) return InvalidArgumentError("classifier input: no slices");
  torch::Tensor batch = torch::empty({static_cast<int64_t>(slices.size()), 3, size, size});
  for (size_t i = 0; i < slices.size(); ++i) {
    auto gray = SliceToGray(slices[i]);
    if (!gray.ok()) return gray.status().WithContext("slice " + std::to_string(i));
    ASSIGN_OR_RETURN(backends::GrayImage resized, ResizeForClassifier(*gray, size));
    batch[static_cast<int64_t>(i)].copy_(GrayToInputTensor(resized));
  }
  return batch;
}

}  // namespace clisc::models
