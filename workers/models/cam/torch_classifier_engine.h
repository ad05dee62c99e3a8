// The LibTorch implementation of roles::ClassifierEngine: trains the slice classifier as
// CLISC step1-1 does (Adam, StepLR per epoch, cross entropy, ToTensor inputs without
// normalization or augmentation, first-best validation accuracy) with resumable checkpoints, and
// computes LayerCAMs with models it loads once and keeps. Training always runs in float32 on
// `device`; `precision` (bf16/fp16 autocast) applies to ComputeCams only. Torch-free on purpose:
// role code includes this header to pick the engine.
#pragma once

#include <memory>

#include "workers/roles/classifier_engine.h"

namespace clisc::models {

// Train() sets torch's process-wide seed and reads and restores its generator state (dropout),
// so one process runs one Train() at a time; ComputeCams() may be called from several threads.
std::unique_ptr<roles::ClassifierEngine> MakeTorchClassifierEngine();

}  // namespace clisc::models
