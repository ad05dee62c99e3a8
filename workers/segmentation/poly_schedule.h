// The U-Net's poly learning-rate schedule (REFERENCE.md 7.1, step3-1 L96-98). The reference sets,
// after step k (1-based), lr = lr0 (1 - k / max_iterations)^power for the next step; so step 1
// runs at lr0 and step k at lr0 (1 - (k - 1) / max_iterations)^power.
#pragma once

#include <cstdint>

namespace clisc::segmentation {

// The rate step `step` (1-based) uses. Steps past max_iterations clamp to 0.
double PolyLearningRate(double base_lr, int64_t step, int64_t max_iterations, double power);

}  // namespace clisc::segmentation
