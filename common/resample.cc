#include "common/resample.h"

#include <cmath>
#include <vector>

namespace clisc {

Point3 AffineTransform::ApplyLinear(const Point3& v) const {
  const auto& m = matrix;
  return {m[0] * v[0] + m[1] * v[1] + m[2] * v[2], m[3] * v[0] + m[4] * v[1] + m[5] * v[2],
          m[6] * v[0] + m[7] * v[1] + m[8] * v[2]};
}

AffineTransform AffineTransform::Inverse() const {
  const auto& m = matrix;
  const double det = m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6]) +
                     m[2] * (m[3] * m[7] - m[4] * m[6]);
  if (det == 0.0) return {};
  AffineTransform inv;
  auto& r = inv.matrix;
  r[0] = (m[4] * m[8] - m[5] * m[7]) / det;
  r[1] = (m[2] * m[7] - m[1] * m[8]) / det;
  r[2] = (m[1] * m[5] - m[2] * m[4]) / det;
  r[3] = (m[5] * m[6] - m[3] * m[8]) / det;
  r[4] = (m[0] * m[8] - m[2] * m[6]) / det;
  r[5] = (m[2] * m[3] - m[0] * m[5]) / det;
  r[6] = (m[3] * m[7] - m[4] * m[6]) / det;
  r[7] = (m[1] * m[6] - m[0] * m[7]) / det;
  r[8] = (m[0] * m[4] - m[1] * m[3]) / det;
  const Point3 t = inv.ApplyLinear(translation);
  inv.translation = {-t[0], -t[1], -t[2]};
  return inv;
}

AffineTransform AffineTransform::Then(const AffineTransform& next) const {
  AffineTransform out;
  const auto& a = next.matrix;
  const auto& b = matrix;
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 3; ++c) {
      out.matrix[r * 3 + c] =
          a[r * 3 + 0] * b[0 * 3 + c] + a[r * 3 + 1] * b[1 * 3 + c] + a[r * 3 + 2] * b[2 * 3 + c];
    }
  }
  out.translation = next.Apply(translation);
  return out;
}

AffineTransform AffineTransform::Translation(const Point3& offset) {
  AffineTransform t;
  t.translation = offset;
  return t;
}

namespace {

// Conjugates a linear map by a translation so that it leaves `center` fixed.
AffineTransform AboutCenter(const std::array<double, 9>& linear, const Point3& center) {
  AffineTransform t;
  t.matrix = linear;
  const Point3 mc = t.ApplyLinear(center);
  t.translation = {center[0] - mc[0], center[1] - mc[1], center[2] - mc[2]};
  return t;
}

}  // namespace

AffineTransform AffineTransform::Rotation(const Point3& angles, const Point3& center) {
  const double cx = std::cos(angles[0]), sx = std::sin(angles[0]);
  const double cy = std::cos(angles[1]), sy = std::sin(angles[1]);
  const double cz = std::cos(angles[2]), sz = std::sin(angles[2]);
  AffineTransform rx, ry, rz;
  rx.matrix = {1, 0, 0, 0, cx, -sx, 0, sx, cx};
  ry.matrix = {cy, 0, sy, 0, 1, 0, -sy, 0, cy};
  rz.matrix = {cz, -sz, 0, sz, cz, 0, 0, 0, 1};
  return AboutCenter(rx.Then(ry).Then(rz).matrix, center);
}

AffineTransform AffineTransform::Scaling(const Point3& factors, const Point3& center) {
  return AboutCenter({factors[0], 0, 0, 0, factors[1], 0, 0, 0, factors[2]}, center);
}

AffineTransform IndexToPhysicalTransform(const Geometry& g) {
  AffineTransform t;
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 3; ++c) t.matrix[r * 3 + c] = g.direction[r * 3 + c] * g.spacing[c];
  }
  t.translation = g.origin;
  return t;
}

AffineTransform PhysicalToIndexTransform(const Geometry& g) {
  return IndexToPhysicalTransform(g).Inverse();
}

Point3 IndexToPhysical(const Geometry& g, const Point3& index) {
  return IndexToPhysicalTransform(g).Apply(index);
}

Point3 PhysicalToIndex(const Geometry& g, const Point3& point) {
  return PhysicalToIndexTransform(g).Apply(point);
}

DisplacementField::DisplacementField(const Dims& dims, const Geometry& geometry)
    : components_{FloatVolume(dims, 0.0f, geometry), FloatVolume(dims, 0.0f, geometry),
                  FloatVolume(dims, 0.0f, geometry)},
      to_index_(PhysicalToIndexTransform(geometry)) {}

Point3 DisplacementField::At(const Point3& physical) const {
  if (empty()) return {0, 0, 0};
  const TrilinearStencil s =
      MakeTrilinearStencil(dims(), to_index_.Apply(physical), OutsideMode::kClamp);
  return {s.Apply(components_[0]), s.Apply(components_[1]), s.Apply(components_[2])};
}

template <typename T>
FloatVolume Resample(const Volume<T>& source, const Dims& dims, const Geometry& geometry,
                     const PointMap& map, OutsideMode mode, float fill) {
  FloatVolume out(dims, 0.0f, geometry);
  const AffineTransform to_physical = IndexToPhysicalTransform(geometry);
  const AffineTransform to_source_index = PhysicalToIndexTransform(source.geometry());
  size_t i = 0;
  for (int64_t z = 0; z < dims.z; ++z) {
    for (int64_t y = 0; y < dims.y; ++y) {
      for (int64_t x = 0; x < dims.x; ++x, ++i) {
        const Point3 p = to_physical.Apply({double(x), double(y), double(z)});
        const Point3 q = map ? map(p) : p;
        out[i] = SampleTrilinear(source, to_source_index.Apply(q), mode, fill);
      }
    }
  }
  return out;
}

template <typename T>
FloatVolume ResampleToGrid(const Volume<T>& source, const Dims& dims, const Geometry& geometry,
                           OutsideMode mode, float fill) {
  return Resample(source, dims, geometry, PointMap(), mode, fill);
}

namespace {

// Half-sample symmetric reflection into [0, n): ... 1 0 | 0 1 2 ... n-1 | n-1 n-2 ...
inline int64_t Reflect(int64_t i, int64_t n) {
  const int64_t period = 2 * n;
  i %= period;
  if (i < 0) i += period;
  return i < n ? i : period - 1 - i;
}

std::vector<double> GaussianKernel(double sigma_vox) {
  const int radius = std::max(1, static_cast<int>(std::ceil(3.0 * sigma_vox)));
  std::vector<double> k(2 * radius + 1);
  double sum = 0;
  for (int i = -radius; i <= radius; ++i) {
    k[i + radius] = std::exp(-0.5 * i * i / (sigma_vox * sigma_vox));
    sum += k[i + radius];
  }
  for (double& w : k) w /= sum;
  return k;
}

// Convolves along x, one contiguous line at a time.
void SmoothX(FloatVolume& v, const std::vector<double>& k) {
  const Dims& d = v.size();
  const int64_t n = d.x, radius = static_cast<int64_t>(k.size() / 2);
  std::vector<double> line(static_cast<size_t>(n + 2 * radius));
  for (int64_t row = 0; row < d.y * d.z; ++row) {
    float* data = v.data() + row * n;
    for (int64_t i = -radius; i < n + radius; ++i) line[i + radius] = data[Reflect(i, n)];
    for (int64_t i = 0; i < n; ++i) {
      double acc = 0;
      for (size_t j = 0; j < k.size(); ++j) acc += k[j] * line[i + j];
      data[i] = static_cast<float>(acc);
    }
  }
}

// Convolves along y or z. Whole x-rows are combined at once, so every memory access runs along
// contiguous x instead of striding across planes (which is what makes a naive z pass slow).
// `rows` rows of `row_length` floats, `stride` floats apart, starting at `first`.
void SmoothRows(float* first, int64_t rows, int64_t stride, int64_t row_length,
                const std::vector<double>& k, std::vector<double>& acc) {
  const int64_t radius = static_cast<int64_t>(k.size() / 2);
  std::vector<float> copy(static_cast<size_t>(rows * row_length));
  for (int64_t r = 0; r < rows; ++r) {
    std::copy(first + r * stride, first + r * stride + row_length, copy.begin() + r * row_length);
  }
  acc.assign(static_cast<size_t>(row_length), 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    std::fill(acc.begin(), acc.end(), 0.0);
    for (int64_t j = -radius; j <= radius; ++j) {
      const double w = k[j + radius];
      const float* src = copy.data() + Reflect(r + j, rows) * row_length;
      for (int64_t x = 0; x < row_length; ++x) acc[x] += w * src[x];
    }
    float* dst = first + r * stride;
    for (int64_t x = 0; x < row_length; ++x) dst[x] = static_cast<float>(acc[x]);
  }
}

}  // namespace

void GaussianSmooth(FloatVolume& volume, const std::array<double, 3>& sigma_mm) {
  const Dims& d = volume.size();
  const int64_t n[3] = {d.x, d.y, d.z};
  std::vector<double> acc;
  for (int axis = 0; axis < 3; ++axis) {
    const double sigma_vox = sigma_mm[axis] / volume.geometry().spacing[axis];
    if (sigma_vox <= 1e-6 || n[axis] <= 1) continue;
    const std::vector<double> k = GaussianKernel(sigma_vox);
    if (axis == 0) {
      SmoothX(volume, k);
    } else if (axis == 1) {
      // Each z-plane is a stack of y rows.
      for (int64_t z = 0; z < d.z; ++z) {
        SmoothRows(volume.data() + z * d.x * d.y, d.y, d.x, d.x, k, acc);
      }
    } else {
      // The whole volume is a stack of z planes; one plane is one long row.
      SmoothRows(volume.data(), d.z, d.x * d.y, d.x * d.y, k, acc);
    }
  }
}

void CoveringGrid(const Dims& dims, const Geometry& geometry, const std::array<double, 3>& spacing,
                  Dims* out_dims, Geometry* out_geometry) {
  const std::array<int64_t, 3> n{dims.x, dims.y, dims.z};
  std::array<int64_t, 3> m{};
  Point3 first_centre{};  // index of the new first voxel centre, in old voxel units
  for (int a = 0; a < 3; ++a) {
    const double extent = n[a] * geometry.spacing[a];
    m[a] = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(extent / spacing[a] - 1e-9)));
    first_centre[a] = -0.5 + 0.5 * spacing[a] / geometry.spacing[a];
  }
  *out_dims = {m[0], m[1], m[2]};
  Geometry g = geometry;
  g.spacing = spacing;
  g.origin = IndexToPhysical(geometry, first_centre);
  *out_geometry = g;
}

#define CLISC_INSTANTIATE_RESAMPLE(T)                                                    \
  template FloatVolume Resample<T>(const Volume<T>&, const Dims&, const Geometry&,       \
                                   const PointMap&, OutsideMode, float);                 \
  template FloatVolume ResampleToGrid<T>(const Volume<T>&, const Dims&, const Geometry&, \
                                         OutsideMode, float);
CLISC_INSTANTIATE_RESAMPLE(float)
CLISC_INSTANTIATE_RESAMPLE(uint8_t)
CLISC_INSTANTIATE_RESAMPLE(int16_t)
CLISC_INSTANTIATE_RESAMPLE(uint16_t)
CLISC_INSTANTIATE_RESAMPLE(int32_t)
CLISC_INSTANTIATE_RESAMPLE(double)
#undef CLISC_INSTANTIATE_RESAMPLE

}  // namespace clisc
