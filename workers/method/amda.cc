#include "workers/method/amda.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <optional>

namespace clisc::method {
namespace {

// The box clipped to [0, width) x [0, height); nullopt when nothing is left.
std::optional<PixelBox> ClipBox(const PixelBox& box, int width, int height) {
  if (box.x0 > box.x1 || box.y0 > box.y1) return std::nullopt;
  const PixelBox clipped{std::max(box.x0, 0), std::max(box.y0, 0), std::min(box.x1, width - 1),
                         std::min(box.y1, height - 1)};
  if (clipped.x0 > clipped.x1 || clipped.y0 > clipped.y1) return std::nullopt;
  return clipped;
}

// Uniform in [0, bound) from rng, by rejection of the 2^64 mod bound lowest draws.
uint64_t UniformBelow(uint64_t bound, std::mt19937_64& rng) {
  const uint64_t reject_below = (0 - bound) % bound;  // 2^64 mod bound
  for (;;) {
    const uint64_t draw = rng();
    if (draw >= reject_below) return draw % bound;
  }
}

}  // namespace

StatusOr<PixelBox> BoxToImage(const PixelBox& box, int width, int height, int size) {
  if (width < 1 || height < 1 || size < 1)
    return InvalidArgumentError("BoxToImage needs positive sizes");
  const std::optional<PixelBox> clipped = ClipBox(box, width, height);
  if (!clipped) return InvalidArgumentError("box is empty or outside the slice");
  const int64_t s = size;
  auto low = [&](int v, int extent) { return static_cast<int>(v * s / extent); };
  auto high = [&](int v, int extent) {
    return static_cast<int>(((v + 1) * s + extent - 1) / extent - 1);
  };
  return PixelBox{low(clipped->x0, width), low(clipped->y0, height), high(clipped->x1, width),
                  high(clipped->y1, height)};
}

StatusOr<std::vector<uint8_t>> MaskPositiveSlice(const std::vector<uint8_t>& image, int size,
                                                 const std::vector<float>& cam, const PixelBox& box,
                                                 int k) {
  const size_t count = size > 0 ? static_cast<size_t>(size) * static_cast<size_t>(size) : 0;
  if (count == 0 || image.size() != count || cam.size() != count)
    return InvalidArgumentError("image and CAM must both be size x size");
  if (k < 0 || k > 10) return InvalidArgumentError("k must be in 0..10");
  const std::optional<PixelBox> b = ClipBox(box, size, size);
  if (!b) return InvalidArgumentError("box is empty or outside the image");

  double lo = std::numeric_limits<double>::infinity();
  double hi = -std::numeric_limits<double>::infinity();
  for (int y = b->y0; y <= b->y1; ++y) {
    for (int x = b->x0; x <= b->x1; ++x) {
      const double v = cam[static_cast<size_t>(y) * size + x];
      lo = std::min(lo, v), hi = std::max(hi, v);
    }
  }
  const double threshold = lo + (k / 10.0) * (hi - lo);
  std::vector<uint8_t> out = image;
  for (int y = b->y0; y <= b->y1; ++y) {
    for (int x = b->x0; x <= b->x1; ++x) {
      const size_t i = static_cast<size_t>(y) * size + x;
      if (static_cast<double>(cam[i]) > threshold) out[i] = 0;
    }
  }
  return out;
}

std::vector<uint8_t> MaskNegativeSlice(const std::vector<uint8_t>& image, double ratio,
                                       std::mt19937_64& rng) {
  std::vector<uint8_t> out = image;
  const size_t n = image.size();
  const double clamped = std::isnan(ratio) ? 0.0 : std::clamp(ratio, 0.0, 1.0);
  const size_t masked = std::min(n, static_cast<size_t>(std::llround(clamped * n)));
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  for (size_t i = 0; i < masked; ++i) {
    const size_t j = i + static_cast<size_t>(UniformBelow(n - i, rng));
    std::swap(order[i], order[j]);
    out[order[i]] = 0;
  }
  return out;
}

std::vector<uint8_t> ReferenceFallbackMask(const std::vector<uint8_t>& image) {
  if (image.empty()) return {};
  const auto [lo, hi] = std::minmax_element(image.begin(), image.end());
  const double threshold = *lo + 0.8 * (*hi - *lo);
  std::vector<uint8_t> out = image;
  for (uint8_t& v : out) {
    if (v > threshold) v = 0;
  }
  return out;
}

}  // namespace clisc::method
