// Axis-aligned voxel boxes with INCLUSIVE bounds, cropping to a box and pasting back, and the
// physical geometry of a cropped sub-grid.
//
// Inclusive bounds on purpose: the reference preprocessing slices [min:max) and so drops the last
// plane of brain on every axis (REFERENCE.md 1.2); a box here always contains every voxel it was
// computed from.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "common/status.h"
#include "common/volume.h"

namespace clisc {

struct BoundingBox {
  // First and last voxel index on each axis, both included.
  int64_t x0 = 0, y0 = 0, z0 = 0;
  int64_t x1 = -1, y1 = -1, z1 = -1;

  bool empty() const { return x1 < x0 || y1 < y0 || z1 < z0; }
  Dims size() const { return empty() ? Dims{} : Dims{x1 - x0 + 1, y1 - y0 + 1, z1 - z0 + 1}; }
  bool Contains(int64_t x, int64_t y, int64_t z) const {
    return x >= x0 && x <= x1 && y >= y0 && y <= y1 && z >= z0 && z <= z1;
  }
  // True when the box lies inside a grid of `dims` voxels.
  bool FitsIn(const Dims& dims) const {
    return !empty() && x0 >= 0 && y0 >= 0 && z0 >= 0 && x1 < dims.x && y1 < dims.y && z1 < dims.z;
  }
  std::string ToString() const;  // "[x0..x1, y0..y1, z0..z1]"
  bool operator==(const BoundingBox&) const = default;
};

// The whole grid as a box.
BoundingBox FullBox(const Dims& dims);

// Physical position (mm, LPS) of a continuous voxel index: origin + direction * (spacing .* index).
std::array<double, 3> IndexToPhysical(const Geometry& geometry, double x, double y, double z);

// Geometry of the sub-grid that starts at the box's first voxel: same spacing and direction,
// origin moved to the physical position of voxel (x0, y0, z0), so the crop overlays the original
// in a viewer.
Geometry CroppedGeometry(const Geometry& geometry, const BoundingBox& box);

// The box around every voxel that is not equal to T{} (so negative values count), or nullopt when
// there is none.
template <typename T>
std::optional<BoundingBox> NonzeroBoundingBox(const Volume<T>& volume) {
  const Dims& d = volume.size();
  BoundingBox box{d.x, d.y, d.z, -1, -1, -1};
  const T* p = volume.data();
  for (int64_t z = 0; z < d.z; ++z) {
    for (int64_t y = 0; y < d.y; ++y) {
      for (int64_t x = 0; x < d.x; ++x, ++p) {
        if (*p == T{}) continue;
        box.x0 = std::min(box.x0, x);
        box.x1 = std::max(box.x1, x);
        box.y0 = std::min(box.y0, y);
        box.y1 = std::max(box.y1, y);
        box.z0 = std::min(box.z0, z);
        box.z1 = std::max(box.z1, z);
      }
    }
  }
  if (box.empty()) return std::nullopt;
  return box;
}

// The voxels inside `box`, with the cropped geometry. INVALID_ARGUMENT when the box does not fit.
template <typename T>
StatusOr<Volume<T>> CropToBox(const Volume<T>& volume, const BoundingBox& box) {
  if (!box.FitsIn(volume.size())) {
    return InvalidArgumentError("crop box " + box.ToString() + " does not fit a volume of " +
                                std::to_string(volume.size().x) + "x" +
                                std::to_string(volume.size().y) + "x" +
                                std::to_string(volume.size().z));
  }
  Dims out_size = box.size();
  Volume<T> out(out_size, T{}, CroppedGeometry(volume.geometry(), box));
  for (int64_t z = 0; z < out_size.z; ++z) {
    for (int64_t y = 0; y < out_size.y; ++y) {
      const T* src = &volume.at(box.x0, box.y0 + y, box.z0 + z);
      std::copy(src, src + out_size.x, &out.at(0, y, z));
    }
  }
  return out;
}

// Writes `cropped` into `target` at the box (the inverse of CropToBox). INVALID_ARGUMENT when the
// sizes do not agree or the box does not fit the target.
template <typename T>
Status PasteIntoBox(const Volume<T>& cropped, const BoundingBox& box, Volume<T>& target) {
  if (!box.FitsIn(target.size()) || !(cropped.size() == box.size())) {
    return InvalidArgumentError("cannot paste a " + std::to_string(cropped.size().x) + "x" +
                                std::to_string(cropped.size().y) + "x" +
                                std::to_string(cropped.size().z) + " volume into box " +
                                box.ToString());
  }
  Dims s = box.size();
  for (int64_t z = 0; z < s.z; ++z) {
    for (int64_t y = 0; y < s.y; ++y) {
      const T* src = &cropped.at(0, y, z);
      std::copy(src, src + s.x, &target.at(box.x0, box.y0 + y, box.z0 + z));
    }
  }
  return OkStatus();
}

}  // namespace clisc
