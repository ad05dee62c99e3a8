#include "workers/segmentation/sliding_window_grid.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace clisc::segmentation {

std::vector<int64_t> SlidingWindowStarts(int64_t size, int64_t patch, double overlap) {
  if (size <= patch) return {0};
  // nnU-Net asserts 0 < step <= 1 (in patch units); a step under one voxel would only multiply
  // the windows without covering anything new, so it is clamped to one voxel.
  const double step = std::max(static_cast<double>(patch) * (1.0 - overlap), 1.0);
  const int64_t span = size - patch;
  const int64_t count = static_cast<int64_t>(std::ceil(static_cast<double>(span) / step)) + 1;
  std::vector<int64_t> starts;
  starts.reserve(static_cast<size_t>(count));
  const double actual_step = static_cast<double>(span) / static_cast<double>(count - 1);
  for (int64_t i = 0; i < count; ++i) {
    // std::nearbyint rounds half to even in the default rounding mode, as np.round does.
    starts.push_back(static_cast<int64_t>(std::nearbyint(actual_step * static_cast<double>(i))));
  }
  return starts;
}

int64_t PaddingBefore(int64_t size, int64_t patch) {
  return size >= patch ? 0 : (patch - size) / 2;
}

std::vector<double> GaussianProfile(int64_t patch, double sigma_scale) {
  std::vector<double> profile(static_cast<size_t>(std::max<int64_t>(patch, 0)), 1.0);
  if (sigma_scale <= 0) return profile;
  const double sigma = sigma_scale * static_cast<double>(patch);
  // scipy.ndimage.gaussian_filter's default truncate = 4: the kernel stops at this radius.
  const int64_t radius = static_cast<int64_t>(4.0 * sigma + 0.5);
  const int64_t centre = patch / 2;
  for (int64_t i = 0; i < patch; ++i) {
    const double d = static_cast<double>(i - centre);
    profile[static_cast<size_t>(i)] =
        std::abs(i - centre) > radius ? 0.0 : std::exp(-d * d / (2.0 * sigma * sigma));
  }
  return profile;
}

std::vector<float> GaussianImportanceMap(const std::array<int64_t, 3>& patch, double sigma_scale) {
  const std::vector<double> pz = GaussianProfile(patch[0], sigma_scale);
  const std::vector<double> py = GaussianProfile(patch[1], sigma_scale);
  const std::vector<double> px = GaussianProfile(patch[2], sigma_scale);
  std::vector<float> map;
  map.reserve(pz.size() * py.size() * px.size());
  double peak = 0;
  for (double wz : pz) {
    for (double wy : py) {
      for (double wx : px) peak = std::max(peak, wz * wy * wx);
    }
  }
  if (peak <= 0) peak = 1;  // cannot happen (the centre weighs 1); keeps the division safe
  float smallest_nonzero = std::numeric_limits<float>::max();
  for (double wz : pz) {
    for (double wy : py) {
      for (double wx : px) {
        const float w = static_cast<float>(wz * wy * wx / peak);
        map.push_back(w);
        if (w > 0) smallest_nonzero = std::min(smallest_nonzero, w);
      }
    }
  }
  for (float& w : map) {
    if (w == 0) w = smallest_nonzero;
  }
  return map;
}

std::vector<int64_t> NearestZoomIndices(int64_t in, int64_t out) {
  std::vector<int64_t> indices(static_cast<size_t>(std::max<int64_t>(out, 0)), 0);
  if (in < 1 || out < 1) return indices;
  // The same double arithmetic as scipy's NI_ZoomShift, so the rare exact halves and the
  // overshoot past the last voxel round the way the reference's did.
  const double zoom = out > 1 ? static_cast<double>(in - 1) / static_cast<double>(out - 1) : 1.0;
  const double last = static_cast<double>(in - 1);
  for (int64_t i = 0; i < out; ++i) {
    const double c = static_cast<double>(i) * zoom;
    indices[static_cast<size_t>(i)] = c > last ? -1 : static_cast<int64_t>(std::floor(c + 0.5));
  }
  return indices;
}

}  // namespace clisc::segmentation
