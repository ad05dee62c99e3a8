// Factories of the method roles and what they share (registered by method_roles.cc).
#pragma once

#include <memory>
#include <string>

#include "common/config.h"
#include "common/volume.h"
#include "workers/roles/method_backends.h"
#include "workers/roles/method_task.h"
#include "workers/runtime/role.h"

namespace clisc::roles {

std::unique_ptr<worker::Role> MakePrepRole();
std::unique_ptr<worker::Role> MakeClipRole(const MethodBackends& backends);
std::unique_ptr<worker::Role> MakeCamRole(const MethodBackends& backends);
std::unique_ptr<worker::Role> MakeSamRole(const MethodBackends& backends);
std::unique_ptr<worker::Role> MakeTrainerRole(const MethodBackends& backends);
std::unique_ptr<worker::Role> MakeReduceRole();

// The reduce steps of stages 12-13 (s3f_reduce.cc, evaluation_reduce.cc).
StatusOr<worker::TaskOutput> RunS3fRank(MethodTask& task);
StatusOr<worker::TaskOutput> RunEvaluation(MethodTask& task);
StatusOr<worker::TaskOutput> RunEvaluationSummary(MethodTask& task);

// The input name of the first configured modality's image, e.g. "prep/image_flair": the 2D
// stages work on it.
std::string FirstModalityInput(const Config& config, const std::string& case_prefix = "prep/");

// Dice of two masks on one grid, NaN when both are empty (a quality log, never a decision).
double MaskDice(const LabelVolume& a, const LabelVolume& b);

}  // namespace clisc::roles
