#include "common/bounding_box.h"

namespace clisc {

std::string BoundingBox::ToString() const {
  return "[" + std::to_string(x0) + ".." + std::to_string(x1) + ", " + std::to_string(y0) + ".." +
         std::to_string(y1) + ", " + std::to_string(z0) + ".." + std::to_string(z1) + "]";
}

BoundingBox FullBox(const Dims& dims) { return {0, 0, 0, dims.x - 1, dims.y - 1, dims.z - 1}; }

std::array<double, 3> IndexToPhysical(const Geometry& geometry, double x, double y, double z) {
  const double scaled[3] = {geometry.spacing[0] * x, geometry.spacing[1] * y,
                            geometry.spacing[2] * z};
  std::array<double, 3> point = geometry.origin;
  for (int row = 0; row < 3; ++row) {
    for (int col = 0; col < 3; ++col) point[row] += geometry.direction[row * 3 + col] * scaled[col];
  }
  return point;
}

Geometry CroppedGeometry(const Geometry& geometry, const BoundingBox& box) {
  Geometry out = geometry;
  out.origin = IndexToPhysical(geometry, static_cast<double>(box.x0), static_cast<double>(box.y0),
                               static_cast<double>(box.z0));
  return out;
}

}  // namespace clisc
