// The LibTorch models behind MethodBackends, linked only into clisc-torch (library
// clisc_model_roles): CLIP for `clip.backend: model`, SAM for `sam.backend: model`, the slice
// classifier of the cam role and the U-Net of the trainer role. The header is torch-free so the CLI
// hook can name it.
//
// Loaded networks are cached for the life of the process, keyed by checkpoint file (path, size,
// modification time), model type, device and precision, so a worker that runs 300 sam tasks
// loads SAM once. Tasks running in parallel slots share one loaded model: inference only reads
// the weights, and each scorer or segmenter keeps its own per-image state.
//
// A checkpoint whose hyperparameters the config's model name cannot describe (a test model, a
// MedSAM variant) carries them in a sidecar file next to it: `X.pt` or `X.pth` -> `X.config.json`,
// in the format of the fixtures' tiny_clip_config.json (CLIP) or tiny_config.json (SAM). With a
// sidecar, `clip.model` / `sam.model_type` are not used.
#pragma once

#include <cstdint>

#include "workers/roles/method_backends.h"

namespace clisc::roles {

// clip_model, sam_model, classifier and unet (one ClassifierEngine and one UNetEngine per
// process, shared by every task).
// Missing checkpoints are NOT_FOUND naming the config key ("sam.checkpoint: ... not found").
MethodBackends ModelMethodBackends();

// How often the process-wide model cache loaded a network from disk or served a loaded one.
struct ModelCacheStats {
  int64_t loads = 0;
  int64_t hits = 0;
};
ModelCacheStats ModelCacheStatistics();

}  // namespace clisc::roles
