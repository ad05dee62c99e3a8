// Volume<T>: a 3D image with its physical geometry, free of ITK and LibTorch so that every
// layer of clisc can pass volumes around. Voxels are stored x-fastest: voxel (x, y, z) lives at
// (z * ny + y) * nx + x, which is the (z, y, x) C-order array that numpy/SimpleITK users know,
// and the layout a [nz, ny, nx] tensor views without copying (see workers/models/tensor_bridge.h).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace clisc {

// Size in voxels, in ITK's (x, y, z) order.
struct Dims {
  int64_t x = 0, y = 0, z = 0;
  int64_t count() const { return x * y * z; }
  bool operator==(const Dims&) const = default;
};

// Physical placement of the voxel grid, in ITK's LPS convention: spacing and origin are (x, y, z)
// in mm, direction is a row-major 3x3 matrix whose columns are the axis directions.
struct Geometry {
  std::array<double, 3> spacing{1.0, 1.0, 1.0};
  std::array<double, 3> origin{0.0, 0.0, 0.0};
  std::array<double, 9> direction{1, 0, 0, 0, 1, 0, 0, 0, 1};
  bool operator==(const Geometry&) const = default;
  // Equal within `tolerance` (relative for spacing, absolute mm for origin, absolute for
  // direction cosines): the test for "same grid" between modalities of one case.
  bool NearlyEquals(const Geometry& other, double tolerance = 1e-4) const;
};

template <typename T>
class Volume {
 public:
  using value_type = T;

  Volume() = default;
  explicit Volume(Dims size, T fill = T{}, Geometry geometry = {})
      : size_(size), geometry_(geometry), voxels_(static_cast<size_t>(size.count()), fill) {}

  const Dims& size() const { return size_; }
  const Geometry& geometry() const { return geometry_; }
  Geometry& mutable_geometry() { return geometry_; }
  void set_geometry(const Geometry& g) { geometry_ = g; }

  int64_t count() const { return size_.count(); }
  bool empty() const { return voxels_.empty(); }
  size_t index(int64_t x, int64_t y, int64_t z) const {
    return static_cast<size_t>((z * size_.y + y) * size_.x + x);
  }
  T& at(int64_t x, int64_t y, int64_t z) { return voxels_[index(x, y, z)]; }
  const T& at(int64_t x, int64_t y, int64_t z) const { return voxels_[index(x, y, z)]; }
  T& operator[](size_t i) { return voxels_[i]; }
  const T& operator[](size_t i) const { return voxels_[i]; }

  T* data() { return voxels_.data(); }
  const T* data() const { return voxels_.data(); }
  std::vector<T>& voxels() { return voxels_; }
  const std::vector<T>& voxels() const { return voxels_; }

  // Same grid and geometry, new pixel type and fill.
  template <typename U>
  Volume<U> LikeThis(U fill = U{}) const {
    return Volume<U>(size_, fill, geometry_);
  }

 private:
  Dims size_;
  Geometry geometry_;
  std::vector<T> voxels_;
};

using FloatVolume = Volume<float>;
using LabelVolume = Volume<uint8_t>;

// Converts voxel by voxel with static_cast; geometry is kept.
template <typename To, typename From>
Volume<To> ConvertVolume(const Volume<From>& in) {
  Volume<To> out(in.size(), To{}, in.geometry());
  for (size_t i = 0; i < in.voxels().size(); ++i) out[i] = static_cast<To>(in[i]);
  return out;
}

}  // namespace clisc
