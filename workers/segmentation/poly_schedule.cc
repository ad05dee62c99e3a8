#include "workers/segmentation/poly_schedule.h"

#include <algorithm>
#include <cmath>

namespace clisc::segmentation {

double PolyLearningRate(double base_lr, int64_t step, int64_t max_iterations, double power) {
  if (max_iterations <= 0) return base_lr;
  const double done =
      static_cast<double>(std::max<int64_t>(step - 1, 0)) / static_cast<double>(max_iterations);
  return base_lr * std::pow(std::max(1.0 - done, 0.0), power);
}

}  // namespace clisc::segmentation
