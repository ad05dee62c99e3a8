#include "workers/models/cam/slice_augmentation.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace clisc::models {
namespace {

// SplitMix64 (Steele et al.): a well-mixed 64-bit stream from any seed, cheap to start per image.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t state) : state_(state) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1) with 53 random bits.
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  double Uniform(double low, double high) { return low + (high - low) * Uniform(); }

 private:
  uint64_t state_;
};

uint64_t ImageStreamSeed(uint64_t seed, int epoch, int64_t slice_index) {
  SplitMix64 mix(seed);
  uint64_t state = mix.Next();
  state ^= SplitMix64(static_cast<uint64_t>(epoch) + 0x5851F42D4C957F2DULL).Next();
  state = SplitMix64(state).Next();
  state ^= SplitMix64(static_cast<uint64_t>(slice_index) + 0x14057B7EF767814FULL).Next();
  return state;
}

// Bilinear sample at (u, v) with zero outside the image.
float Sample(const uint8_t* pixels, int size, double u, double v) {
  const double fu = std::floor(u), fv = std::floor(v);
  const int x0 = static_cast<int>(fu), y0 = static_cast<int>(fv);
  const float wx = static_cast<float>(u - fu), wy = static_cast<float>(v - fv);
  auto at = [&](int x, int y) -> float {
    if (x < 0 || y < 0 || x >= size || y >= size) return 0.0f;
    return static_cast<float>(pixels[static_cast<size_t>(y) * size + x]) / 255.0f;
  };
  const float top = (1.0f - wx) * at(x0, y0) + wx * at(x0 + 1, y0);
  const float bottom = (1.0f - wx) * at(x0, y0 + 1) + wx * at(x0 + 1, y0 + 1);
  return (1.0f - wy) * top + wy * bottom;
}

}  // namespace

Status CheckAugmentation(const roles::ClassifierAugmentation& o) {
  if (!(o.zoom_min > 0 && o.zoom_min <= o.zoom_max && std::isfinite(o.zoom_max)) ||
      !(o.shift >= 0 && o.shift < 1) || !(o.gamma >= 0 && std::isfinite(o.gamma)) ||
      !(o.contrast_min >= 0 && o.contrast_min <= o.contrast_max && std::isfinite(o.contrast_max))) {
    return InvalidArgumentError(
        "classifier.augment: need 0 < zoom_min <= zoom_max, 0 <= shift < 1, gamma >= 0 and "
        "0 <= contrast_min <= contrast_max");
  }
  return OkStatus();
}

SliceAugmentationDraw DrawSliceAugmentation(const roles::ClassifierAugmentation& o, int image_size,
                                            uint64_t seed, int epoch, int64_t slice_index) {
  SplitMix64 rng(ImageStreamSeed(seed, epoch, slice_index));
  // Always the same seven draws, so one part's settings do not move another part's numbers.
  const double flip_x = rng.Uniform(), flip_y = rng.Uniform();
  const double zoom = rng.Uniform(), shift_x = rng.Uniform(), shift_y = rng.Uniform();
  const double gamma = rng.Uniform(), contrast = rng.Uniform();
  SliceAugmentationDraw draw;
  if (!o.enabled) return draw;
  if (o.flip) {
    draw.flip_x = flip_x < 0.5;
    draw.flip_y = flip_y < 0.5;
  }
  if (o.zoom_min != o.zoom_max) {
    const double low = std::log(o.zoom_min), high = std::log(o.zoom_max);
    draw.zoom = std::exp(low + (high - low) * zoom);
  } else {
    draw.zoom = o.zoom_min;
  }
  const double max_shift = o.shift * image_size;
  draw.shift_x = max_shift * (2 * shift_x - 1);
  draw.shift_y = max_shift * (2 * shift_y - 1);
  draw.gamma = std::exp(o.gamma * (2 * gamma - 1));
  draw.contrast = o.contrast_min + (o.contrast_max - o.contrast_min) * contrast;
  return draw;
}

void ApplySliceAugmentation(const uint8_t* pixels, int size, const SliceAugmentationDraw& draw,
                            float* out) {
  const double centre = (size - 1) / 2.0;
  const double last = size - 1;
  const bool intensity = draw.gamma != 1.0 || draw.contrast != 1.0;
  const auto gamma = static_cast<float>(draw.gamma);
  const auto contrast = static_cast<float>(draw.contrast);
  for (int row = 0; row < size; ++row) {
    double v = centre + (row - centre - draw.shift_y) / draw.zoom;
    if (draw.flip_y) v = last - v;
    for (int col = 0; col < size; ++col) {
      double u = centre + (col - centre - draw.shift_x) / draw.zoom;
      if (draw.flip_x) u = last - u;
      float value = Sample(pixels, size, u, v);
      if (intensity) value = std::clamp(std::pow(value, gamma) * contrast, 0.0f, 1.0f);
      out[static_cast<size_t>(row) * size + col] = value;
    }
  }
}

std::string DescribeAugmentation(const roles::ClassifierAugmentation& o) {
  if (!o.enabled) return "off";
  std::ostringstream text;
  text.precision(17);
  text << "flip " << o.flip << " zoom " << o.zoom_min << ".." << o.zoom_max << " shift " << o.shift
       << " gamma " << o.gamma << " contrast " << o.contrast_min << ".." << o.contrast_max;
  return text.str();
}

}  // namespace clisc::models
