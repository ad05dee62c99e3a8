#include "common/volume.h"

#include <cmath>

namespace clisc {

bool Geometry::NearlyEquals(const Geometry& other, double tolerance) const {
  for (int i = 0; i < 3; ++i) {
    double scale = std::max(std::abs(spacing[i]), std::abs(other.spacing[i]));
    if (std::abs(spacing[i] - other.spacing[i]) > tolerance * std::max(1.0, scale)) return false;
    if (std::abs(origin[i] - other.origin[i]) > tolerance * 100) return false;  // 0.01 mm at 1e-4
  }
  for (int i = 0; i < 9; ++i) {
    if (std::abs(direction[i] - other.direction[i]) > tolerance) return false;
  }
  return true;
}

}  // namespace clisc
