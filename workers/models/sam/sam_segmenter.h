// The SAM PromptSegmenter backend (`sam.backend: model`): a gray slice becomes an RGB image of
// three equal channels, as the reference feeds it, is embedded once, and every prompt set is
// decoded against that embedding in batches.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "workers/backends/prompt_segmenter.h"
#include "workers/models/compute_device.h"
#include "workers/models/sam/sam_model.h"
#include "workers/models/sam/sam_predictor.h"

namespace clisc::models {

class SamSegmenter : public backends::PromptSegmenter {
 public:
  // LoadSam(checkpoint, model_type, compute) behind the interface.
  static StatusOr<std::unique_ptr<SamSegmenter>> Load(const std::filesystem::path& checkpoint,
                                                      std::string_view model_type,
                                                      const ComputeDevice& compute,
                                                      int64_t max_batch_size = 16);

  // Over a model already loaded (LoadSam with a custom config); `checkpoint` is only described.
  SamSegmenter(Sam model, std::filesystem::path checkpoint, const ComputeDevice& compute,
               int64_t max_batch_size = 16);

  // "sam vit_b (models/sam_vit_b_01ec64.pth)"
  std::string Describe() const override;
  Status SetImage(const backends::GrayImage& image) override;
  StatusOr<std::vector<backends::Segmentation>> Segment(
      const std::vector<backends::Prompts>& prompts, bool multimask) override;

  const SamPredictor& predictor() const { return predictor_; }

 private:
  SamPredictor predictor_;
  std::filesystem::path checkpoint_;
};

}  // namespace clisc::models
