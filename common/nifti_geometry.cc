// Placement of a NIfTI grid in space (spacing, origin, direction) from the header alone,
// following the same qform/sform rules as ITK so header-only checks agree with full reads.
#include <array>
#include <cmath>

#include "common/nifti_header.h"

namespace clisc {

namespace {

// Spacing in mm: ITK scales pixdim by the header's spatial unit.
double SpatialUnitScale(int xyzt_units) {
  switch (xyzt_units & 0x07) {
    case 1:
      return 1000.0;  // metre
    case 3:
      return 0.001;  // micron
    default:
      return 1.0;  // mm, or unknown (taken as mm)
  }
}

// The sform's 3x3 part with each column divided by that axis's pixdim, when that leaves a
// rotation (orthonormal columns); ITK 5.2 uses an sform only then, since ITK's geometry is spacing
// (pixdim) times a rotation.
bool SformRotation(const NiftiHeader& h, std::array<double, 9>& ras) {
  std::array<std::array<double, 3>, 3> col{};
  for (int j = 0; j < 3; ++j) {
    const double spacing = h.pixdim[j + 1];
    if (!std::isfinite(spacing) || spacing <= 0) return false;
    for (int i = 0; i < 3; ++i) col[j][i] = h.srow[i][j] / spacing;
  }
  constexpr double kTolerance = 1e-4;
  for (int a = 0; a < 3; ++a) {
    for (int b = a; b < 3; ++b) {
      double dot = 0;
      for (int i = 0; i < 3; ++i) dot += col[a][i] * col[b][i];
      if (!std::isfinite(dot) || std::abs(dot - (a == b ? 1.0 : 0.0)) > kTolerance) return false;
    }
  }
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) ras[i * 3 + j] = col[j][i];
  }
  return true;
}

enum class Placement { kNone, kSform, kQform, kUnusable };

// Which transform ITK 5.2 takes: the sform when its code is SCANNER_ANAT or there is no qform (and
// it is usable), else the qform; with neither code, none (identity at the origin).
Placement ChoosePlacement(const NiftiHeader& h) {
  std::array<double, 9> unused;
  const bool sform_usable = h.sform_code > 0 && SformRotation(h, unused);
  if (sform_usable && (h.sform_code == 1 || h.qform_code <= 0)) return Placement::kSform;
  if (h.qform_code > 0) return Placement::kQform;
  if (h.sform_code > 0) return Placement::kUnusable;
  return Placement::kNone;
}

// The qform quaternion as a rotation matrix (NIfTI-1 standard, section on method 2), with the
// third column flipped when qfac (pixdim[0]) is negative.
std::array<double, 9> QformRotation(const NiftiHeader& h) {
  double b = h.quatern_b, c = h.quatern_c, d = h.quatern_d;
  double a = 1.0 - (b * b + c * c + d * d);
  if (a < 1e-7) {  // a rounding error past the unit sphere: renormalise with a = 0
    const double scale = 1.0 / std::sqrt(b * b + c * c + d * d);
    b *= scale, c *= scale, d *= scale;
    a = 0;
  } else {
    a = std::sqrt(a);
  }
  const double qfac = h.pixdim[0] < 0 ? -1.0 : 1.0;
  return {a * a + b * b - c * c - d * d,
          2 * (b * c - a * d),
          2 * (b * d + a * c) * qfac,
          2 * (b * c + a * d),
          a * a + c * c - b * b - d * d,
          2 * (c * d - a * b) * qfac,
          2 * (b * d - a * c),
          2 * (c * d + a * b),
          (a * a + d * d - c * c - b * b) * qfac};
}

}  // namespace

Geometry NiftiHeaderGeometry(const NiftiHeader& h) {
  Geometry g;
  const int spatial = static_cast<int>(std::clamp<int64_t>(h.dim[0], 1, 3));
  // ITK scales spacing by the header's unit but, in 5.2, not the origin.
  const double unit = SpatialUnitScale(h.xyzt_units);
  for (int i = 0; i < spatial; ++i) g.spacing[i] = h.pixdim[i + 1] * unit;
  std::array<double, 9> ras{1, 0, 0, 0, 1, 0, 0, 0, 1};
  std::array<double, 3> offset{0, 0, 0};
  switch (ChoosePlacement(h)) {
    case Placement::kSform:
      SformRotation(h, ras);
      for (int i = 0; i < 3; ++i) offset[i] = h.srow[i][3];
      break;
    case Placement::kQform:
      ras = QformRotation(h);
      offset = h.qoffset;
      break;
    case Placement::kNone:
    case Placement::kUnusable:
      return g;  // ITK: identity direction at the origin (it refuses kUnusable on read)
  }
  // NIfTI world space is RAS, ITK's is LPS: flip the first two world axes. Axes past the image's
  // dimensionality keep the identity, as ITK reports no direction for them.
  for (int i = 0; i < spatial; ++i) {
    const double flip = i < 2 ? -1.0 : 1.0;
    for (int j = 0; j < spatial; ++j) g.direction[i * 3 + j] = flip * ras[i * 3 + j];
    g.origin[i] = flip * offset[i];
  }
  return g;
}

bool NiftiPlacementUsable(const NiftiHeader& header) {
  return ChoosePlacement(header) != Placement::kUnusable;
}

}  // namespace clisc
