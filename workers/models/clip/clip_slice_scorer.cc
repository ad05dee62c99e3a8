#include "workers/models/clip/clip_slice_scorer.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "workers/models/clip/clip_zero_shot.h"

namespace clisc::models {
namespace {

// One batch: [B, 3, R, R] in, contiguous [B, P] float32 probabilities on the CPU out.
StatusOr<torch::Tensor> StackAndScore(ClipZeroShot& zero_shot,
                                      const std::vector<torch::Tensor>& inputs) {
  torch::Tensor batch;
  try {
    batch = torch::stack(inputs);
  } catch (const c10::Error& e) {
    return InternalError(std::string("CLIP scorer: ") + e.what_without_backtrace());
  }
  ASSIGN_OR_RETURN(const torch::Tensor probabilities, zero_shot.Probabilities(batch));
  return probabilities.contiguous();
}

// The checks that need no model, done before any loading.
Status CheckOptions(const ClipScorerOptions& options) {
  if (options.batch_size < 1)
    return InvalidArgumentError("CLIP scorer: batch_size must be at least 1, got " +
                                std::to_string(options.batch_size));
  if (options.prompts.empty()) return InvalidArgumentError("CLIP scorer: no prompts configured");
  if (!std::filesystem::is_regular_file(options.vocab))
    return NotFoundError("CLIP scorer: vocabulary file " + options.vocab.string() + " not found");
  return OkStatus();
}

}  // namespace

struct ClipSliceScorer::State {
  ClipZeroShot zero_shot;
  std::string description;
  ClipInputMode input_mode;
  int batch_size;
};

ClipSliceScorer::ClipSliceScorer(std::unique_ptr<State> state) : state_(std::move(state)) {}
ClipSliceScorer::~ClipSliceScorer() = default;

StatusOr<std::unique_ptr<ClipSliceScorer>> ClipSliceScorer::Create(
    const ClipScorerOptions& options) {
  RETURN_IF_ERROR(CheckOptions(options));
  if (!std::filesystem::is_regular_file(options.checkpoint))
    return NotFoundError("CLIP scorer: checkpoint " + options.checkpoint.string() + " not found");
  StatusOr<Clip> model = LoadClip(options.checkpoint, options.compute, options.config);
  if (!model.ok()) return model.status().WithContext("CLIP scorer");
  return Create(options, std::move(model).value());
}

StatusOr<std::unique_ptr<ClipSliceScorer>> ClipSliceScorer::Create(const ClipScorerOptions& options,
                                                                   Clip model) {
  RETURN_IF_ERROR(CheckOptions(options));

  StatusOr<text::ClipTokenizer> tokenizer = text::ClipTokenizer::Load(options.vocab);
  if (!tokenizer.ok()) return tokenizer.status().WithContext("CLIP scorer");
  const std::string name = model->config().Name();
  StatusOr<ClipZeroShot> zero_shot =
      ClipZeroShot::Create(std::move(model), *tokenizer, options.prompts, options.compute);
  if (!zero_shot.ok()) return zero_shot.status().WithContext("CLIP scorer");

  auto state = std::make_unique<State>(
      State{std::move(zero_shot).value(), "clip " + name + " (" + options.checkpoint.string() + ")",
            options.input_mode, options.batch_size});
  return std::unique_ptr<ClipSliceScorer>(new ClipSliceScorer(std::move(state)));
}

std::string ClipSliceScorer::Describe() const { return state_->description; }

int ClipSliceScorer::num_prompts() const { return state_->zero_shot.num_prompts(); }

StatusOr<std::vector<std::vector<float>>> ClipSliceScorer::Score(
    const std::vector<backends::FloatSlice>& slices) {
  for (size_t i = 0; i < slices.size(); ++i) {
    const backends::FloatSlice& slice = slices[i];
    const std::string which = "CLIP scorer: slice " + std::to_string(i);
    if (slice.width <= 0 || slice.height <= 0)
      return InvalidArgumentError(which + " is empty (" + std::to_string(slice.width) + "x" +
                                  std::to_string(slice.height) + ")");
    if (slice.values.size() != static_cast<size_t>(slice.width) * slice.height)
      return InvalidArgumentError(which + " has " + std::to_string(slice.values.size()) +
                                  " values for " + std::to_string(slice.width) + "x" +
                                  std::to_string(slice.height));
    if (!std::all_of(slice.values.begin(), slice.values.end(),
                     [](float v) { return std::isfinite(v); }))
      return InvalidArgumentError(which + " holds a non-finite value");
  }

  ClipZeroShot& zero_shot = state_->zero_shot;
  const int resolution = zero_shot.image_resolution();
  std::vector<std::vector<float>> rows;
  rows.reserve(slices.size());
  for (size_t start = 0; start < slices.size(); start += state_->batch_size) {
    const size_t end = std::min(slices.size(), start + state_->batch_size);
    std::vector<torch::Tensor> inputs;
    inputs.reserve(end - start);
    for (size_t i = start; i < end; ++i) {
      StatusOr<torch::Tensor> input = ClipSliceInput(slices[i], state_->input_mode, resolution);
      if (!input.ok()) return input.status().WithContext("CLIP scorer: slice " + std::to_string(i));
      inputs.push_back(std::move(input).value());
    }
    ASSIGN_OR_RETURN(const torch::Tensor probabilities, StackAndScore(zero_shot, inputs));
    const float* data = probabilities.data_ptr<float>();
    const int64_t prompts = probabilities.size(1);
    for (int64_t r = 0; r < probabilities.size(0); ++r)
      rows.emplace_back(data + r * prompts, data + (r + 1) * prompts);
  }
  return rows;
}

}  // namespace clisc::models
