// The 3D U-Net as the trainer role sees it (METHOD.md stages 9-10): train it on volumes and
// labels, and predict whole volumes. The implementation lives with the networks
// (workers/models/unet, LibTorch); this header stays torch-free so the role's logic (which cases,
// which labels, what is written where) builds and is tested without LibTorch.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/volume.h"
#include "workers/roles/classifier_engine.h"  // TrainingProgress

namespace clisc::roles {

// The network's shape (unet.* and the modality count); training and prediction must agree.
struct UNetArchitecture {
  int64_t in_channels = 1;
  int64_t num_classes = 2;
  std::vector<int64_t> feature_channels = {16, 32, 64, 128, 256};
  double dropout = 0.3;
};

// One case on its cropped grid: one file per modality (data.modalities order, same grid) and the
// label to learn (0 background, nonzero tumor), read by the engine's loader when it needs them.
struct UNetCaseFiles {
  std::string id;
  std::vector<std::filesystem::path> channels;
  std::filesystem::path label;
};

// Sliding-window (or reference resize) prediction, the inference.* section.
struct UNetInferenceOptions {
  UNetArchitecture architecture;
  std::string mode = "sliding_window";                  // sliding_window | reference_resize
  std::array<int64_t, 3> patch_size = {128, 128, 128};  // (z, y, x) voxels
  double overlap = 0.5;
  double gaussian_sigma_scale = 0.125;
  int batch_size = 2;  // windows per forward pass
  std::string device = "cpu";
  std::string precision = "fp32";  // fp32 | bf16 | fp16 (autocast on the forward pass)
};

struct UNetTrainingOptions {
  UNetArchitecture architecture;
  std::string loss = "ce";  // ce | ce_dice (0.5 (CE + soft Dice)) | gce
  double gce_q = 0.7;
  double lr = 0.01;  // SGD
  double momentum = 0.9;
  double weight_decay = 1e-4;
  double poly_power = 0.9;  // lr = lr0 (1 - iteration / max_iterations)^power, after each step
  int batch_size = 2;
  std::array<int64_t, 3> patch_size = {128, 128, 128};  // (z, y, x)
  std::string crop_pad = "background";  // background (each channel's minimum) | zero
  int64_t max_iterations = 1;
  uint64_t seed = 2023;
  int64_t checkpoint_every = 1000;
  int loader_threads = 4;           // 0: batches are made on the training thread
  int64_t cache_bytes = 4LL << 30;  // in-memory volume cache of the loader
  // One replica per entry: {"cpu"}, {"cuda:0"}, or data parallel {"cuda:0", "cuda:1"}. The
  // batch is split across replicas and their gradients averaged; {"cpu", "cpu"} exercises the
  // same path on one machine.
  std::vector<std::string> devices = {"cpu"};
  std::string precision = "fp32";
  // Resumable state (model, optimizer, iteration, RNG). When it exists at the start, training
  // continues from it; it is rewritten every `checkpoint_every` iterations.
  std::filesystem::path checkpoint_path;
  // mode: reference: every `validate_every` iterations predict `valid` (GT labels) and keep the
  // weights of the best mean Dice (first best wins). Empty `valid`: the last weights are kept.
  std::vector<UNetCaseFiles> valid;
  int64_t validate_every = 200;
  UNetInferenceOptions validation_inference;
};

struct UNetLossPoint {
  int64_t iteration = 0;  // 1-based, after the step
  double loss = 0;
  double lr = 0;  // the rate the step used
};

struct UNetValidation {
  int64_t iteration = 0;
  double mean_dice = 0;
};

struct UNetTrainingReport {
  int64_t iterations = 0;               // steps in the whole run, including those before a resume
  int64_t resumed_after_iteration = 0;  // 0 when training started from scratch
  int64_t selected_iteration = 0;       // whose weights were written as the model
  int64_t train_cases = 0;
  std::vector<UNetLossPoint> losses;  // every step of this run and the resumed one
  std::vector<UNetValidation> validations;
  double seconds = 0;                   // wall time of this attempt
  double mean_step_seconds = 0;         // step time (forward, backward, update), this attempt
  double mean_loader_wait_seconds = 0;  // time the step waited for its batch, this attempt
  int64_t cache_hits = 0, cache_misses = 0;
};

class UNetEngine {
 public:
  virtual ~UNetEngine() = default;
  virtual std::string Describe() const = 0;

  // Trains from scratch (or from options.checkpoint_path) and writes the selected weights as a
  // state_dict .pth (torch.save format, loadable by Python's unet_3D) at `model_out`. CANCELLED
  // when progress returned false (the last checkpoint stays for a retry); INVALID_ARGUMENT for an
  // empty case list, bad options or a patch size the network cannot take; DATA_LOSS for an
  // unreadable volume; UNAVAILABLE for a device that is not there.
  virtual StatusOr<UNetTrainingReport> Train(const std::vector<UNetCaseFiles>& train,
                                             const UNetTrainingOptions& options,
                                             const std::filesystem::path& model_out,
                                             const TrainingProgress& progress) = 0;

  // Argmax labels (0/1) of the model at `model` for one volume given as channels on one grid;
  // the result has that grid. Models are loaded once and kept.
  virtual StatusOr<LabelVolume> Predict(const std::filesystem::path& model,
                                        const std::vector<FloatVolume>& channels,
                                        const UNetInferenceOptions& options) = 0;
};

}  // namespace clisc::roles
