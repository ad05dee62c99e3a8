// The LibTorch implementation of roles::UNetEngine: Train runs TrainUNet (unet_trainer.h), and
// Predict runs PredictUNetLabels (unet_inference.h) with models it loads once and keeps. Torch-free
// on purpose: role code includes this header to pick the engine.
#pragma once

#include <memory>

#include "workers/roles/unet_engine.h"

namespace clisc::models {

// Train() sets torch's process-wide seed and restores its generator state on resume, so one
// process runs one Train() at a time; Predict() may be called from several threads.
std::unique_ptr<roles::UNetEngine> MakeTorchUNetEngine();

}  // namespace clisc::models
