#include "workers/method/axial_slices.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <string>

#include "common/pil_resample.h"

namespace clisc::method {
namespace {

bool SliceInRange(const Dims& size, int64_t z) { return z >= 0 && z < size.z; }

std::vector<uint8_t> ResizedUint8(const backends::FloatSlice& slice, int size, double eps,
                                  PilFilter filter) {
  const size_t count = static_cast<size_t>(slice.width) * static_cast<size_t>(slice.height);
  if (size < 1 || slice.width < 1 || slice.height < 1 || slice.values.size() != count) return {};
  const std::vector<uint8_t> u8 = MinMaxToUint8(slice.values.data(), count, eps);
  return PilResize(u8.data(), slice.width, slice.height, /*channels=*/1, size, size, filter);
}

}  // namespace

backends::FloatSlice AxialSlice(const FloatVolume& volume, int64_t z) {
  const Dims& d = volume.size();
  if (!SliceInRange(d, z)) return {};
  const size_t plane = static_cast<size_t>(d.x * d.y);
  const float* begin = volume.data() + static_cast<size_t>(z) * plane;
  return backends::FloatSlice{static_cast<int>(d.x), static_cast<int>(d.y),
                              std::vector<float>(begin, begin + plane)};
}

backends::BinaryMask AxialMask(const LabelVolume& volume, int64_t z) {
  const Dims& d = volume.size();
  if (!SliceInRange(d, z)) return {};
  const size_t plane = static_cast<size_t>(d.x * d.y);
  const uint8_t* begin = volume.data() + static_cast<size_t>(z) * plane;
  backends::BinaryMask mask{static_cast<int>(d.x), static_cast<int>(d.y),
                            std::vector<uint8_t>(plane)};
  for (size_t i = 0; i < plane; ++i) mask.pixels[i] = begin[i] != 0;
  return mask;
}

Status SetAxialMask(LabelVolume& volume, int64_t z, const backends::BinaryMask& mask) {
  const Dims& d = volume.size();
  if (!SliceInRange(d, z)) {
    return InvalidArgumentError("slice " + std::to_string(z) + " is outside a volume of " +
                                std::to_string(d.z) + " slices");
  }
  const size_t plane = static_cast<size_t>(d.x * d.y);
  if (mask.width != d.x || mask.height != d.y || mask.pixels.size() != plane) {
    return InvalidArgumentError("mask of " + std::to_string(mask.width) + "x" +
                                std::to_string(mask.height) + " does not fit a slice of " +
                                std::to_string(d.x) + "x" + std::to_string(d.y));
  }
  uint8_t* begin = volume.data() + static_cast<size_t>(z) * plane;
  for (size_t i = 0; i < plane; ++i) begin[i] = mask.pixels[i] != 0;
  return OkStatus();
}

std::optional<PixelBox> TightBox(const backends::BinaryMask& mask) {
  PixelBox box{mask.width, mask.height, -1, -1};
  for (int y = 0; y < mask.height; ++y) {
    const uint8_t* row = mask.pixels.data() + static_cast<size_t>(y) * mask.width;
    for (int x = 0; x < mask.width; ++x) {
      if (!row[x]) continue;
      box.x0 = std::min(box.x0, x);
      box.x1 = std::max(box.x1, x);
      box.y0 = std::min(box.y0, y);
      box.y1 = std::max(box.y1, y);
    }
  }
  if (box.x1 < 0) return std::nullopt;
  return box;
}

std::vector<uint8_t> MinMaxToUint8(const float* values, size_t count, double eps) {
  std::vector<uint8_t> out(count, 0);
  if (count == 0) return out;
  const auto [lo_it, hi_it] = std::minmax_element(values, values + count);
  const double lo = *lo_it;
  const double range = static_cast<double>(*hi_it) - lo + eps;
  if (!(range > 0)) return out;  // constant input with eps = 0
  for (size_t i = 0; i < count; ++i) {
    const double scaled = (static_cast<double>(values[i]) - lo) / range * 255.0;
    out[i] = static_cast<uint8_t>(std::clamp(scaled, 0.0, 255.0));
  }
  return out;
}

std::vector<uint8_t> EqualizeHist(const std::vector<uint8_t>& pixels) {
  if (pixels.empty()) return {};
  std::array<int64_t, 256> hist{};
  for (uint8_t v : pixels) ++hist[v];
  int first = 0;
  while (hist[first] == 0) ++first;
  const int64_t total = static_cast<int64_t>(pixels.size());
  if (hist[first] == total) return pixels;
  std::array<uint8_t, 256> lut{};
  const float scale = 255.0f / static_cast<float>(total - hist[first]);
  int64_t sum = 0;
  for (int g = first + 1; g < 256; ++g) {
    sum += hist[g];
    // cvRound: round to nearest, ties to even (the default floating-point rounding mode).
    const long rounded = std::lrint(static_cast<float>(sum) * scale);
    lut[g] = static_cast<uint8_t>(std::clamp(rounded, 0L, 255L));
  }
  std::vector<uint8_t> out(pixels.size());
  for (size_t i = 0; i < pixels.size(); ++i) out[i] = lut[pixels[i]];
  return out;
}

backends::GrayImage EqualizedSlice(const backends::FloatSlice& slice) {
  const size_t count = std::min(
      slice.values.size(), static_cast<size_t>(slice.width) * static_cast<size_t>(slice.height));
  return backends::GrayImage{slice.width, slice.height,
                             EqualizeHist(MinMaxToUint8(slice.values.data(), count))};
}

std::vector<uint8_t> ClassifierTrainingImage(const backends::FloatSlice& slice, int size) {
  return ResizedUint8(slice, size, /*eps=*/0.0, PilFilter::kBicubic);
}

std::vector<uint8_t> CamInputImage(const backends::FloatSlice& slice, int size) {
  return ResizedUint8(slice, size, /*eps=*/1e-6, PilFilter::kBilinear);
}

}  // namespace clisc::method
