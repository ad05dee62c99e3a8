#include "workers/roles/method_roles.h"

#include "common/metrics.h"
#include "workers/backends/heuristic_prompt_segmenter.h"
#include "workers/backends/heuristic_slice_scorer.h"
#include "workers/roles/method_roles_internal.h"

namespace clisc::roles {

bool RoleNeedsTorch(std::string_view role) {
  return role == "clip" || role == "cam" || role == "sam" || role == "trainer";
}

std::string FirstModalityInput(const Config& config, const std::string& case_prefix) {
  return case_prefix + "image_" + config.GetStringList("data.modalities").front();
}

double MaskDice(const LabelVolume& a, const LabelVolume& b) {
  StatusOr<OverlapCounts> counts = CountOverlap(a, b);
  if (!counts.ok()) return kNaN;
  return DiceFromCounts(*counts, /*if_both_empty=*/kNaN);
}

StatusOr<std::unique_ptr<backends::SliceScorer>> MakeSliceScorer(const MethodBackends& backends,
                                                                 const Config& config,
                                                                 const std::string& device) {
  if (config.GetString("clip.backend") == "heuristic") {
    return std::unique_ptr<backends::SliceScorer>(
        std::make_unique<backends::HeuristicSliceScorer>());
  }
  if (!backends.clip_model) {
    return FailedPreconditionError(
        "clip.backend is model, but this worker has no LibTorch backends (run the worker from "
        "clisc-torch, which `clisc worker` starts for the clip role)");
  }
  return backends.clip_model(config, device);
}

StatusOr<std::unique_ptr<backends::PromptSegmenter>> MakePromptSegmenter(
    const MethodBackends& backends, const Config& config, const std::string& device) {
  if (config.GetString("sam.backend") == "heuristic") {
    return std::unique_ptr<backends::PromptSegmenter>(
        std::make_unique<backends::HeuristicPromptSegmenter>());
  }
  if (!backends.sam_model) {
    return FailedPreconditionError(
        "sam.backend is model, but this worker has no LibTorch backends (run the worker from "
        "clisc-torch, which `clisc worker` starts for the sam role)");
  }
  return backends.sam_model(config, device);
}

Status RegisterMethodRoles(worker::RoleRegistry& registry, const MethodBackends& backends) {
  RETURN_IF_ERROR(registry.Register("prep", [] { return MakePrepRole(); }));
  RETURN_IF_ERROR(registry.Register("reduce", [] { return MakeReduceRole(); }));
  RETURN_IF_ERROR(registry.Register("clip", [backends] { return MakeClipRole(backends); }));
  RETURN_IF_ERROR(registry.Register("sam", [backends] { return MakeSamRole(backends); }));
  if (backends.classifier) {
    RETURN_IF_ERROR(registry.Register("cam", [backends] { return MakeCamRole(backends); }));
  }
  if (backends.unet) {
    RETURN_IF_ERROR(registry.Register("trainer", [backends] { return MakeTrainerRole(backends); }));
  }
  return OkStatus();
}

}  // namespace clisc::roles
