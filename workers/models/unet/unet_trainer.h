// Trains the 3D U-Net as the reference's step3-1 does (REFERENCE.md 7.1, METHOD.md stage 9):
// random rot/flip patches (workers/segmentation), SGD with momentum and weight decay (PyTorch
// semantics), the poly schedule, CE (or 0.5 (CE + soft Dice), or GCE), from a seeded init. It adds
// what a cluster needs: resumable checkpoints (bit-identical resume on the CPU), progress with
// cancellation, data parallelism over several devices, and optional first-best validation.
#pragma once

#include <torch/types.h>

#include <filesystem>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "workers/roles/unet_engine.h"

namespace clisc::models {

enum class SegmentationLoss { kCrossEntropy, kCrossEntropyDice, kGeneralizedCrossEntropy };

// "ce" | "ce_dice" | "gce"; INVALID_ARGUMENT otherwise.
StatusOr<SegmentationLoss> ParseSegmentationLoss(std::string_view name);

// The mean loss over the batch and voxels, a scalar with a gradient:
// - ce: cross entropy of the logits [N, K, D, H, W] against labels [N, D, H, W] (int64);
// - ce_dice: 0.5 (CE + Dice), Dice as SSL4MIS losses.DiceLoss on the softmax: for each class k,
//   1 - (2 sum(p t) + 1e-5) / (sum(p^2) + sum(t^2) + 1e-5) over the whole batch, averaged over k;
// - gce: mean of (1 - p_y^q) / q, p_y the softmax probability of the true class (computed as
//   exp(q log_softmax) so a confident mistake has a finite gradient).
torch::Tensor ComputeSegmentationLoss(SegmentationLoss loss, const torch::Tensor& logits,
                                      const torch::Tensor& labels, double gce_q);

// See roles::UNetEngine::Train. Sets torch's global seed and restores the global generator state
// from a checkpoint, so a process runs one TrainUNet at a time. Several CPU replicas with dropout
// draw from one generator in thread order: such runs are not reproducible bit for bit (one
// replica, or GPUs with their own generators, are). With data parallelism each replica's loss is
// over its share of the batch (as DistributedDataParallel computes it), which equals the whole
// batch's for ce and gce; the Dice term of ce_dice is then per share.
StatusOr<roles::UNetTrainingReport> TrainUNet(const std::vector<roles::UNetCaseFiles>& train,
                                              const roles::UNetTrainingOptions& options,
                                              const std::filesystem::path& model_out,
                                              const roles::TrainingProgress& progress);

}  // namespace clisc::models
