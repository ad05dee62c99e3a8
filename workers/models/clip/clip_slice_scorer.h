// The CLIP backend of stage 1 (`clip.backend: model`): each axial slice becomes CLIP input under
// `clip.input` (clip_preprocess.h), and its probabilities over the configured prompts come from
// CLIP zero-shot classification, in batches on the configured device and precision.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "workers/backends/slice_scorer.h"
#include "workers/models/clip/clip_config.h"
#include "workers/models/clip/clip_model.h"
#include "workers/models/clip/clip_preprocess.h"
#include "workers/models/compute_device.h"

namespace clisc::models {

struct ClipScorerOptions {
  std::filesystem::path checkpoint;  // ViT-B-32.pt, or a state dict .pth
  std::filesystem::path vocab;       // bpe_simple_vocab_16e6.txt.gz
  std::vector<std::string> prompts;  // the normal prompt first, then the tumor prompt
  ClipInputMode input_mode = ClipInputMode::kStandard;
  int batch_size = 32;
  ComputeDevice compute;
  // Hyperparameters for a checkpoint that build_model-style inference cannot describe.
  std::optional<ClipConfig> config;
};

class ClipSliceScorer final : public backends::SliceScorer {
 public:
  // Loads the tokenizer, the model and the prompts' text features. NOT_FOUND for a missing
  // vocabulary or checkpoint file; INVALID_ARGUMENT for no prompts, a prompt too long for the
  // context, or batch_size < 1; otherwise LoadClip's errors.
  static StatusOr<std::unique_ptr<ClipSliceScorer>> Create(const ClipScorerOptions& options);
  // Over a model already loaded (LoadClip of options.checkpoint), so that several scorers share
  // one copy of the weights; options.checkpoint and options.config are only described.
  static StatusOr<std::unique_ptr<ClipSliceScorer>> Create(const ClipScorerOptions& options,
                                                           Clip model);
  ~ClipSliceScorer() override;

  // "clip ViT-B/32 (models/ViT-B-32.pt)", or the config summary for an unnamed model.
  std::string Describe() const override;
  int num_prompts() const override;

  // All slices are checked first (non-empty, width * height values, all finite), so a bad slice
  // fails the whole call with INVALID_ARGUMENT naming its index; then batches of batch_size run
  // under InferenceAutocast.
  StatusOr<std::vector<std::vector<float>>> Score(
      const std::vector<backends::FloatSlice>& slices) override;

 private:
  struct State;
  explicit ClipSliceScorer(std::unique_ptr<State> state);

  std::unique_ptr<State> state_;
};

}  // namespace clisc::models
