// Generic resampling ops on Volume<T>: index <-> physical mapping through a Geometry, affine
// transforms in physical (LPS mm) space, trilinear sampling, displacement fields, resampling
// through an arbitrary point map, and separable Gaussian smoothing.
//
// All transforms here are backward maps: to fill a target voxel we ask which source point it
// comes from. That is what resampling needs (every target voxel gets exactly one value) and it
// lets deformations be composed by plain function composition.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <functional>

#include "common/volume.h"

namespace clisc {

using Point3 = std::array<double, 3>;

// p' = matrix * p + translation, matrix row-major.
struct AffineTransform {
  std::array<double, 9> matrix{1, 0, 0, 0, 1, 0, 0, 0, 1};
  Point3 translation{0, 0, 0};

  Point3 Apply(const Point3& p) const {
    const auto& m = matrix;
    return {m[0] * p[0] + m[1] * p[1] + m[2] * p[2] + translation[0],
            m[3] * p[0] + m[4] * p[1] + m[5] * p[2] + translation[1],
            m[6] * p[0] + m[7] * p[1] + m[8] * p[2] + translation[2]};
  }
  // Applies only the linear part (for vectors rather than points).
  Point3 ApplyLinear(const Point3& v) const;
  // Fails (returns identity) only for a singular matrix; callers build invertible ones.
  AffineTransform Inverse() const;
  // (a.Then(b))(p) == b(a(p)).
  AffineTransform Then(const AffineTransform& next) const;

  static AffineTransform Translation(const Point3& offset);
  // Rotation by angles (radians) about x, then y, then z, around `center`.
  static AffineTransform Rotation(const Point3& angles, const Point3& center);
  // Scaling per axis around `center`.
  static AffineTransform Scaling(const Point3& factors, const Point3& center);
};

// Continuous index -> physical point for a grid, and its inverse.
AffineTransform IndexToPhysicalTransform(const Geometry& geometry);
AffineTransform PhysicalToIndexTransform(const Geometry& geometry);
Point3 IndexToPhysical(const Geometry& geometry, const Point3& index);
Point3 PhysicalToIndex(const Geometry& geometry, const Point3& point);

// What a sample reads beyond the grid: a constant, or the nearest edge voxel.
enum class OutsideMode { kConstant, kClamp };

// The eight neighbours and weights of one trilinear sample. Volumes on the same grid can share
// one stencil, which is most of the cost of a sample. In kConstant mode, neighbours outside the
// grid are left out of `offset`/`weight` and their total weight is `outside_weight`.
struct TrilinearStencil {
  std::array<size_t, 8> offset{};
  std::array<double, 8> weight{};
  int count = 0;
  double outside_weight = 0;

  template <typename T>
  float Apply(const Volume<T>& v, float fill = 0.0f) const {
    double acc = outside_weight * fill;
    for (int i = 0; i < count; ++i) acc += weight[i] * static_cast<double>(v[offset[i]]);
    return static_cast<float>(acc);
  }
};

inline TrilinearStencil MakeTrilinearStencil(const Dims& n, const Point3& index,
                                             OutsideMode mode = OutsideMode::kConstant) {
  TrilinearStencil s;
  const double fx = std::floor(index[0]), fy = std::floor(index[1]), fz = std::floor(index[2]);
  // Far outside: everything is fill (also keeps the int conversion below in range).
  if (mode == OutsideMode::kConstant &&
      (fx < -1 || fy < -1 || fz < -1 || fx > n.x || fy > n.y || fz > n.z)) {
    s.outside_weight = 1.0;
    return s;
  }
  const int64_t base[3] = {
      static_cast<int64_t>(std::clamp(fx, -2.0, static_cast<double>(n.x + 1))),
      static_cast<int64_t>(std::clamp(fy, -2.0, static_cast<double>(n.y + 1))),
      static_cast<int64_t>(std::clamp(fz, -2.0, static_cast<double>(n.z + 1)))};
  const double t[3] = {std::clamp(index[0] - fx, 0.0, 1.0), std::clamp(index[1] - fy, 0.0, 1.0),
                       std::clamp(index[2] - fz, 0.0, 1.0)};
  const int64_t size[3] = {n.x, n.y, n.z};
  if (base[0] >= 0 && base[1] >= 0 && base[2] >= 0 && base[0] + 1 < n.x && base[1] + 1 < n.y &&
      base[2] + 1 < n.z) {
    // All eight neighbours inside: the common case, without per-corner checks.
    const size_t o = static_cast<size_t>((base[2] * n.y + base[1]) * n.x + base[0]);
    const size_t sy = static_cast<size_t>(n.x), sz = static_cast<size_t>(n.x * n.y);
    const double wx[2] = {1.0 - t[0], t[0]}, wy[2] = {1.0 - t[1], t[1]}, wz[2] = {1.0 - t[2], t[2]};
    for (int corner = 0; corner < 8; ++corner) {
      const int bx = corner & 1, by = (corner >> 1) & 1, bz = (corner >> 2) & 1;
      s.offset[corner] = o + bx + by * sy + bz * sz;
      s.weight[corner] = wx[bx] * wy[by] * wz[bz];
    }
    s.count = 8;
    return s;
  }
  for (int corner = 0; corner < 8; ++corner) {
    int64_t c[3];
    double w = 1.0;
    bool outside = false;
    for (int a = 0; a < 3; ++a) {
      const int bit = (corner >> a) & 1;
      c[a] = base[a] + bit;
      w *= bit ? t[a] : 1.0 - t[a];
      if (c[a] < 0 || c[a] >= size[a]) {
        if (mode == OutsideMode::kClamp) {
          c[a] = std::clamp<int64_t>(c[a], 0, size[a] - 1);
        } else {
          outside = true;
        }
      }
    }
    if (outside) {
      s.outside_weight += w;
    } else if (w != 0.0) {
      s.offset[s.count] = static_cast<size_t>((c[2] * n.y + c[1]) * n.x + c[0]);
      s.weight[s.count] = w;
      ++s.count;
    }
  }
  return s;
}

// Trilinear interpolation at a continuous index (voxel centres at integer indices). In
// kConstant mode, neighbours outside the grid contribute `fill`, so values fade to `fill` within
// one voxel of the edge instead of stopping abruptly.
template <typename T>
inline float SampleTrilinear(const Volume<T>& v, const Point3& index,
                             OutsideMode mode = OutsideMode::kConstant, float fill = 0.0f) {
  return MakeTrilinearStencil(v.size(), index, mode).Apply(v, fill);
}

// A vector field of displacements in mm, stored on its own (usually coarse) grid and read with
// trilinear interpolation, clamped at the edges. A smooth field needs few samples, so a coarse
// grid keeps building and smoothing it cheap whatever the size of the image it deforms.
class DisplacementField {
 public:
  DisplacementField() = default;
  DisplacementField(const Dims& dims, const Geometry& geometry);

  const Dims& dims() const { return components_[0].size(); }
  const Geometry& geometry() const { return components_[0].geometry(); }
  FloatVolume& component(int axis) { return components_[axis]; }
  const FloatVolume& component(int axis) const { return components_[axis]; }
  bool empty() const { return components_[0].empty(); }

  // Displacement at a physical point; zero for an empty field.
  Point3 At(const Point3& physical) const;

 private:
  std::array<FloatVolume, 3> components_;
  AffineTransform to_index_;
};

// Maps a target physical point to the source physical point it reads from.
using PointMap = std::function<Point3(const Point3&)>;

// Fills a volume on the target grid with trilinear samples of `source` at map(p).
template <typename T>
FloatVolume Resample(const Volume<T>& source, const Dims& dims, const Geometry& geometry,
                     const PointMap& map, OutsideMode mode = OutsideMode::kConstant,
                     float fill = 0.0f);

// Resamples onto another grid through physical space (no transform).
template <typename T>
FloatVolume ResampleToGrid(const Volume<T>& source, const Dims& dims, const Geometry& geometry,
                           OutsideMode mode = OutsideMode::kConstant, float fill = 0.0f);

// Separable Gaussian smoothing with per-axis sigma in mm (0 leaves an axis alone). The edges
// reflect (half-sample symmetric), which with a symmetric kernel keeps the sum of the volume,
// so smoothing moves intensity around without creating or losing any.
void GaussianSmooth(FloatVolume& volume, const std::array<double, 3>& sigma_mm);

// A grid covering the same field of view as (dims, geometry) with voxels of `spacing` mm: the
// same corner of the first voxel, as many voxels as needed to cover the extent.
void CoveringGrid(const Dims& dims, const Geometry& geometry, const std::array<double, 3>& spacing,
                  Dims* out_dims, Geometry* out_geometry);

}  // namespace clisc
