// Where the method roles get their models from. Role code sees only torch-free interfaces
// (SliceScorer, PromptSegmenter, ClassifierEngine, UNetEngine); the factories decide what backs
// them. The plain `clisc` binary has the heuristic backends only; `clisc-torch` adds the LibTorch
// ones (workers/roles/model_backends.h), so a config that names a model gets that model or a clear
// error, never a silent stand-in.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "common/config.h"
#include "common/status.h"
#include "workers/backends/prompt_segmenter.h"
#include "workers/backends/slice_scorer.h"
#include "workers/roles/classifier_engine.h"
#include "workers/roles/unet_engine.h"

namespace clisc::roles {

struct MethodBackends {
  // For `clip.backend: model` (config holds the clip section; device as the worker runs).
  std::function<StatusOr<std::unique_ptr<backends::SliceScorer>>(const Config& config,
                                                                 const std::string& device)>
      clip_model;
  // For `sam.backend: model`.
  std::function<StatusOr<std::unique_ptr<backends::PromptSegmenter>>(const Config& config,
                                                                     const std::string& device)>
      sam_model;
  // The classifier; required by the cam role.
  std::function<StatusOr<std::unique_ptr<ClassifierEngine>>()> classifier;
  // The 3D U-Net; required by the trainer role.
  std::function<StatusOr<std::unique_ptr<UNetEngine>>()> unet;
};

// The slice scorer a config asks for: the heuristic one for `clip.backend: heuristic`, otherwise
// backends.clip_model (FAILED_PRECONDITION naming clisc-torch when the binary has none).
StatusOr<std::unique_ptr<backends::SliceScorer>> MakeSliceScorer(const MethodBackends& backends,
                                                                 const Config& config,
                                                                 const std::string& device);
// Likewise for `sam.backend`.
StatusOr<std::unique_ptr<backends::PromptSegmenter>> MakePromptSegmenter(
    const MethodBackends& backends, const Config& config, const std::string& device);

}  // namespace clisc::roles
