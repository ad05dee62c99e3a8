// The classifier engine's resumable training state: model, Adam state, the random generators
// dropout draws from (CPU, and the training GPU's), the epoch reports so far and, in validation
// mode, the best epoch's weights. One torch::serialize archive, written atomically (temporary,
// fsync, rename), so an interrupted run resumes bit-identically on the CPU.
#pragma once

#include <torch/nn/module.h>
#include <torch/optim/adam.h>
#include <torch/types.h>

#include <filesystem>
#include <string>
#include <vector>

#include "common/status.h"
#include "workers/models/cam/slice_classifier.h"
#include "workers/models/checkpoint_reader.h"
#include "workers/roles/classifier_engine.h"

namespace clisc::models {

// Everything a resumed run needs beyond the model and optimizer.
struct TrainingProgressState {
  int epoch = 0;  // epochs completed
  std::vector<roles::EpochReport> reports;
  StateDict best_weights;  // CPU copies, validation mode only
  int best_epoch = 0;
  double best_accuracy = -1;
};

// CPU copies of a state dict's tensors (the best epoch's weights outlive further steps).
StateDict CpuCopy(const StateDict& dict);

// `fingerprint` names the training setup; a checkpoint from another setup is not resumed.
Status SaveTrainingCheckpoint(const std::filesystem::path& path, SliceClassifierImpl& model,
                              torch::optim::Adam& optimizer, const TrainingProgressState& state,
                              const std::string& fingerprint, const torch::Device& device);

// Restores model, optimizer, generators and progress. INVALID_ARGUMENT for another kind of file,
// FAILED_PRECONDITION for another setup's checkpoint. LibTorch errors throw (c10::Error).
Status LoadTrainingCheckpoint(const std::filesystem::path& path, SliceClassifierImpl& model,
                              torch::optim::Adam& optimizer, TrainingProgressState& state,
                              const std::string& fingerprint, const torch::Device& device);

}  // namespace clisc::models
