// SamPredictor (segment_anything/predictor.py): embed an image once, then decode any number of
// prompts against that embedding. Predict is the official predict(); PredictBatch decodes many
// prompt sets in batched decoder calls with the same results.
#pragma once

#include <torch/types.h>

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "common/status.h"
#include "workers/models/compute_device.h"
#include "workers/models/sam/sam_model.h"

namespace clisc::models {

// One prompt set, in pixels of the original image: x is the column, y the row.
struct SamPromptSet {
  std::vector<std::array<double, 2>> point_coords;
  // One per point: 1 foreground, 0 background. As in the official encoder, -1 marks a padding
  // point and any other label adds no label embedding.
  std::vector<int32_t> point_labels;
  std::optional<std::array<double, 4>> box;  // XYXY
  // Low-res logits from an earlier prediction, [1, 4g, 4g] (256 x 256 for the real models);
  // undefined for none.
  torch::Tensor mask_input;
};

struct SamPrediction {
  torch::Tensor masks;            // bool [C, H, W]; float32 logits with return_logits
  torch::Tensor iou_predictions;  // float32 [C]
  torch::Tensor low_res_logits;   // float32 [C, 4g, 4g]
};

class SamPredictor {
 public:
  // `compute` says where the model lives (LoadSam put it there) and whether inference runs
  // under bf16/fp16 autocast. The image encoder and mask decoder run under autocast; the prompt
  // encoder's Fourier features and the mask upsampling stay float32, being cheap and sensitive.
  explicit SamPredictor(Sam model, const ComputeDevice& compute = {});

  // The official set_image for an RGB uint8 [H, W, 3] image on the CPU. An image identical to
  // the current one (same size and content hash) keeps the current embedding.
  Status SetImage(const torch::Tensor& image);
  void ResetImage();

  // The official predict(). FAILED_PRECONDITION before SetImage; INVALID_ARGUMENT for
  // mismatched points and labels or a mask input of the wrong size. C is 3 with
  // multimask_output (masks 1..3 in token order), else 1.
  StatusOr<SamPrediction> Predict(const SamPromptSet& prompts, bool multimask_output = true,
                                  bool return_logits = false);

  // Predict for each prompt set, in order, decoding up to max_batch_size sets per decoder call.
  // Sets are batched with others of the same form (point count, box or not, mask or not): a
  // set's extra padding points would become extra "not a point" tokens that the decoder attends
  // to, and so change its masks.
  StatusOr<std::vector<SamPrediction>> PredictBatch(const std::vector<SamPromptSet>& prompt_sets,
                                                    bool multimask_output = true,
                                                    bool return_logits = false);

  bool is_image_set() const { return features_.defined(); }
  const torch::Tensor& features() const { return features_; }  // [1, C, g, g] float32
  SamImageSize original_size() const { return original_size_; }
  SamImageSize input_size() const { return input_size_; }
  // How many images the encoder has embedded: SetImage of the current image does not count.
  int64_t encoder_runs() const { return encoder_runs_; }

  int64_t max_batch_size() const { return max_batch_size_; }
  void set_max_batch_size(int64_t n) { max_batch_size_ = n > 0 ? n : 1; }

  const Sam& model() const { return model_; }
  const ComputeDevice& compute() const { return compute_; }

 private:
  Status CheckPromptSet(const SamPromptSet& prompts) const;
  // Decodes sets that share one form, all in one decoder call.
  std::vector<SamPrediction> DecodeBatch(const std::vector<const SamPromptSet*>& sets,
                                         bool multimask_output, bool return_logits);
  const torch::Tensor& DensePe();

  Sam model_;
  ComputeDevice compute_;
  ResizeLongestSide transform_;
  int64_t max_batch_size_ = 16;

  torch::Tensor features_;
  torch::Tensor dense_pe_;  // image independent, computed once
  SamImageSize original_size_{0, 0};
  SamImageSize input_size_{0, 0};
  uint64_t image_hash_ = 0;
  int64_t encoder_runs_ = 0;
};

}  // namespace clisc::models
