// CLIP zero-shot classification and the CLIP SliceScorer on the tiny model (fixtures/clip):
// prompt tokens, logits and probabilities against the goldens; the scorer's rows, batching,
// description and errors; and the deviation bf16 autocast brings on the CPU.
#include "workers/models/clip/clip_zero_shot.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/torch_fixtures.h"
#include "workers/models/clip/clip_config.h"
#include "workers/models/clip/clip_model.h"
#include "workers/models/clip/clip_preprocess.h"
#include "workers/models/clip/clip_slice_scorer.h"
#include "workers/text/clip_tokenizer.h"

namespace clisc::models {
namespace {

namespace fs = std::filesystem;
using ::clisc::backends::FloatSlice;
using ::clisc::testing::AllClose;
using ::clisc::testing::Fixture;
using ::clisc::testing::LoadGoldens;

// step0_get_clip_label.py L40-41: index 0 "normal", index 1 "tumor"; clip_io.pth's texts add
// two more.
const std::vector<std::string> kCliscPrompts = {
    "an image of brain tissue showing typical signal intensity without any regions of abnormal "
    "intensity or suspicious mass",
    "an image of brain tissue showing a tumor with uneven hyperintensity and irregular borders "
    "distinct from surroundings"};

std::vector<std::string> GoldenTexts() {
  std::vector<std::string> texts = kCliscPrompts;
  texts.push_back("a photo of a cat.");
  texts.push_back("");
  return texts;
}

// bf16 autocast on the CPU: bounds for the tiny model on the 3 golden images (see the test).
constexpr double kBf16LogitBound = 0.05;
// Softmax moves no probability by more than half the largest logit change (to first order).
constexpr double kBf16ProbabilityBound = kBf16LogitBound / 2;

class ClipZeroShotTest : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::set_num_threads(2);
    state_dict_ = Fixture("clip/tiny_clip_state_dict.pth");
    vocab_ = Fixture("clip/bpe_simple_vocab_16e6.txt.gz");
    io_ = Fixture("clip/clip_io.pth");
    config_path_ = Fixture("clip/tiny_clip_config.json");
  }

  bool FixturesPresent() const {
    return fs::exists(state_dict_) && fs::exists(vocab_) && fs::exists(io_) &&
           fs::exists(config_path_);
  }

  ClipConfig TinyConfig() const { return *ClipConfig::FromJsonFile(config_path_); }

  StatusOr<ClipZeroShot> MakeZeroShot(const std::vector<std::string>& prompts,
                                      const ComputeDevice& compute) const {
    ASSIGN_OR_RETURN(text::ClipTokenizer tokenizer, text::ClipTokenizer::Load(vocab_));
    ASSIGN_OR_RETURN(Clip model, LoadClip(state_dict_, compute, TinyConfig()));
    return ClipZeroShot::Create(model, tokenizer, prompts, compute);
  }

  ClipScorerOptions ScorerOptions(int batch_size) const {
    ClipScorerOptions options;
    options.checkpoint = state_dict_;
    options.vocab = vocab_;
    options.prompts = kCliscPrompts;
    options.batch_size = batch_size;
    options.config = TinyConfig();
    return options;
  }

  fs::path state_dict_, vocab_, io_, config_path_;
};

#define REQUIRE_CLIP_FIXTURES()          \
  do {                                   \
    CLISC_REQUIRE_FIXTURE(state_dict_);  \
    CLISC_REQUIRE_FIXTURE(vocab_);       \
    CLISC_REQUIRE_FIXTURE(io_);          \
    CLISC_REQUIRE_FIXTURE(config_path_); \
  } while (0)

TEST_F(ClipZeroShotTest, ProbabilitiesAreTheSoftmaxOfTheGoldenLogits) {
  REQUIRE_CLIP_FIXTURES();
  const testing::Goldens golden = LoadGoldens(io_);
  StatusOr<ClipZeroShot> zero_shot = MakeZeroShot(GoldenTexts(), ComputeDevice{});
  ASSERT_TRUE(zero_shot.ok()) << zero_shot.status().ToString();
  EXPECT_EQ(zero_shot->num_prompts(), 4);
  EXPECT_TRUE(torch::equal(zero_shot->prompt_tokens(), golden.at("text_tokens")));
  EXPECT_TRUE(AllClose(zero_shot->text_features(), golden.at("encode_text"), 1e-5, 1e-5));

  StatusOr<torch::Tensor> logits = zero_shot->Logits(golden.at("images"));
  ASSERT_TRUE(logits.ok()) << logits.status().ToString();
  EXPECT_TRUE(AllClose(*logits, golden.at("logits_per_image"), 1e-4));
  StatusOr<torch::Tensor> probabilities = zero_shot->Probabilities(golden.at("images"));
  ASSERT_TRUE(probabilities.ok()) << probabilities.status().ToString();
  EXPECT_TRUE(AllClose(*probabilities, golden.at("logits_per_image").softmax(-1), 1e-5));
  EXPECT_TRUE(AllClose(*probabilities, golden.at("softmax_per_image"), 1e-5));

  StatusOr<ClipZeroShot> clisc = MakeZeroShot(kCliscPrompts, ComputeDevice{});
  ASSERT_TRUE(clisc.ok()) << clisc.status().ToString();
  StatusOr<torch::Tensor> two = clisc->Probabilities(golden.at("images"));
  ASSERT_TRUE(two.ok()) << two.status().ToString();
  EXPECT_TRUE(AllClose(*two, golden.at("clisc_probs_2prompts"), 1e-5));

  EXPECT_EQ(clisc->Probabilities(torch::zeros({2, 3, 32, 32})).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(clisc->Probabilities(torch::zeros({3, 64, 64})).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(ClipZeroShotTest, PromptsThatDoNotFitAreRefused) {
  REQUIRE_CLIP_FIXTURES();
  std::string long_prompt;
  for (int i = 0; i < 80; ++i) long_prompt += "tumor ";
  EXPECT_EQ(MakeZeroShot({long_prompt}, ComputeDevice{}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(MakeZeroShot({}, ComputeDevice{}).status().code(), StatusCode::kInvalidArgument);
}

// bf16 autocast runs the matmuls and the patch convolution in bfloat16 (8-bit significand, unit
// roundoff 2^-9 = 0.002) while CLIP's LayerNorms and the logit computation stay in float32. A
// relative feature error of a few roundoffs moves each cosine similarity by about as much, so a
// logit (scaled by exp(logit_scale) = 9.58) by a few 1e-2. Measured here: max |logit - golden|
// 0.017, max |probability - golden| 0.0011. The logit bound allows 3x that; the probability
// bound follows from it, since dp_i = p_i sum_j p_j (dz_i - dz_j) gives |dp_i| <= max|dz| / 2.
// This is for the tiny model only: ViT-B has 12 layers per tower and exp(logit_scale) = 100, so
// its deviation is larger (fp16, the official CUDA default, has 3 more significand bits).
TEST_F(ClipZeroShotTest, Bf16AutocastOnCpuStaysWithinBound) {
  REQUIRE_CLIP_FIXTURES();
  const testing::Goldens golden = LoadGoldens(io_);
  const ComputeDevice bf16{torch::kCPU, Precision::kBFloat16};
  StatusOr<ClipZeroShot> zero_shot = MakeZeroShot(GoldenTexts(), bf16);
  ASSERT_TRUE(zero_shot.ok()) << zero_shot.status().ToString();
  StatusOr<torch::Tensor> logits = zero_shot->Logits(golden.at("images"));
  ASSERT_TRUE(logits.ok()) << logits.status().ToString();
  EXPECT_EQ(logits->scalar_type(), torch::kFloat);
  const double logit_dev = (*logits - golden.at("logits_per_image")).abs().max().item<double>();
  const double prob_dev =
      (logits->softmax(-1) - golden.at("softmax_per_image")).abs().max().item<double>();
  std::cout << "bf16 autocast deviation: logits " << logit_dev << ", probabilities " << prob_dev
            << "\n";
  EXPECT_GT(logit_dev, 0.0) << "autocast had no effect";
  EXPECT_LE(logit_dev, kBf16LogitBound);
  EXPECT_LE(prob_dev, kBf16ProbabilityBound);
  // The autocast scope is closed again: a float32 run afterwards matches the goldens.
  StatusOr<ClipZeroShot> fp32 = MakeZeroShot(GoldenTexts(), ComputeDevice{});
  ASSERT_TRUE(fp32.ok());
  EXPECT_TRUE(AllClose(*fp32->Logits(golden.at("images")), golden.at("logits_per_image"), 1e-4));
}

// Float slices whose min-max scaling is exactly golden image_src_0 (values 0..255): x + 0.5
// between the extremes, so (x + 0.5) / 255 * 255 truncates back to x.
FloatSlice SliceScalingTo(const torch::Tensor& source) {
  const torch::Tensor u8 = source.contiguous();
  FloatSlice slice{static_cast<int>(u8.size(1)), static_cast<int>(u8.size(0)), {}};
  for (int64_t i = 0; i < u8.numel(); ++i) {
    const int v = u8.data_ptr<uint8_t>()[i];
    slice.values.push_back(v == 0 || v == 255 ? float(v) : float(v) + 0.5f);
  }
  return slice;
}

std::vector<FloatSlice> SyntheticSlices() {
  std::vector<FloatSlice> slices;
  torch::manual_seed(7);
  for (const auto& [h, w] :
       std::vector<std::pair<int, int>>{{40, 30}, {64, 64}, {23, 57}, {100, 80}, {64, 65}}) {
    const torch::Tensor values = torch::randn({h, w}) * 1.5 + 0.3;
    slices.push_back(FloatSlice{
        w, h, std::vector<float>(values.data_ptr<float>(), values.data_ptr<float>() + h * w)});
  }
  return slices;
}

TEST_F(ClipZeroShotTest, SliceScorerRowsBatchingAndGoldens) {
  REQUIRE_CLIP_FIXTURES();
  const testing::Goldens golden = LoadGoldens(io_);
  StatusOr<std::unique_ptr<ClipSliceScorer>> batched = ClipSliceScorer::Create(ScorerOptions(3));
  ASSERT_TRUE(batched.ok()) << batched.status().ToString();
  StatusOr<std::unique_ptr<ClipSliceScorer>> single = ClipSliceScorer::Create(ScorerOptions(1));
  ASSERT_TRUE(single.ok()) << single.status().ToString();
  EXPECT_EQ((*batched)->num_prompts(), 2);
  EXPECT_EQ((*batched)->Describe(),
            "clip ViT w128 l2 p16 r64, text w32 l2 h2, embed 32 (" + state_dict_.string() + ")");

  std::vector<FloatSlice> slices = SyntheticSlices();
  const FloatSlice golden_slice = SliceScalingTo(golden.at("image_src_0"));
  ASSERT_TRUE(torch::equal(
      torch::from_blob(MinMaxToGray(golden_slice).pixels.data(), {181, 131}, torch::kByte),
      golden.at("image_src_0")));
  slices.insert(slices.begin() + 2, golden_slice);

  StatusOr<std::vector<std::vector<float>>> rows = (*batched)->Score(slices);
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  StatusOr<std::vector<std::vector<float>>> one_by_one = (*single)->Score(slices);
  ASSERT_TRUE(one_by_one.ok()) << one_by_one.status().ToString();
  ASSERT_EQ(rows->size(), slices.size());
  ASSERT_EQ(one_by_one->size(), slices.size());
  for (size_t i = 0; i < slices.size(); ++i) {
    SCOPED_TRACE(i);
    ASSERT_EQ((*rows)[i].size(), 2u);
    EXPECT_NEAR((*rows)[i][0] + (*rows)[i][1], 1.0, 1e-6);
    for (int p = 0; p < 2; ++p) EXPECT_NEAR((*rows)[i][p], (*one_by_one)[i][p], 1e-6);
  }
  // The min-max scaled slice is golden image 0: its row is the golden CLISC probability.
  const torch::Tensor expected = golden.at("clisc_probs_2prompts")[0];
  EXPECT_NEAR((*rows)[2][0], expected[0].item<float>(), 1e-5);
  EXPECT_NEAR((*rows)[2][1], expected[1].item<float>(), 1e-5);

  // reference_pil: a z-scored slice is almost black, and scores differently.
  ClipScorerOptions pil_options = ScorerOptions(4);
  pil_options.input_mode = ClipInputMode::kReferencePil;
  StatusOr<std::unique_ptr<ClipSliceScorer>> pil = ClipSliceScorer::Create(pil_options);
  ASSERT_TRUE(pil.ok()) << pil.status().ToString();
  StatusOr<std::vector<std::vector<float>>> pil_rows = (*pil)->Score(slices);
  ASSERT_TRUE(pil_rows.ok()) << pil_rows.status().ToString();
  EXPECT_GT(std::abs((*pil_rows)[0][0] - (*rows)[0][0]), 1e-4);

  StatusOr<std::vector<std::vector<float>>> none = (*batched)->Score({});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_F(ClipZeroShotTest, SliceScorerErrors) {
  REQUIRE_CLIP_FIXTURES();
  ClipScorerOptions no_vocab = ScorerOptions(2);
  no_vocab.vocab = "/nonexistent/bpe_simple_vocab_16e6.txt.gz";
  StatusOr<std::unique_ptr<ClipSliceScorer>> scorer = ClipSliceScorer::Create(no_vocab);
  ASSERT_FALSE(scorer.ok());
  EXPECT_EQ(scorer.status().code(), StatusCode::kNotFound);
  EXPECT_NE(scorer.status().message().find("bpe_simple_vocab"), std::string::npos);

  ClipScorerOptions no_checkpoint = ScorerOptions(2);
  no_checkpoint.checkpoint = "/nonexistent/ViT-B-32.pt";
  scorer = ClipSliceScorer::Create(no_checkpoint);
  ASSERT_FALSE(scorer.ok());
  EXPECT_EQ(scorer.status().code(), StatusCode::kNotFound);
  EXPECT_NE(scorer.status().message().find("ViT-B-32.pt"), std::string::npos);

  EXPECT_EQ(ClipSliceScorer::Create(ScorerOptions(0)).status().code(),
            StatusCode::kInvalidArgument);
  ClipScorerOptions no_prompts = ScorerOptions(2);
  no_prompts.prompts.clear();
  EXPECT_EQ(ClipSliceScorer::Create(no_prompts).status().code(), StatusCode::kInvalidArgument);

  scorer = ClipSliceScorer::Create(ScorerOptions(2));
  ASSERT_TRUE(scorer.ok()) << scorer.status().ToString();
  std::vector<FloatSlice> slices = SyntheticSlices();
  slices[3].values.pop_back();
  StatusOr<std::vector<std::vector<float>>> rows = (*scorer)->Score(slices);
  ASSERT_FALSE(rows.ok());
  EXPECT_EQ(rows.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(rows.status().message().find("slice 3"), std::string::npos) << rows.status().ToString();
  EXPECT_EQ((*scorer)->Score({FloatSlice{0, 0, {}}}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*scorer)->Score({FloatSlice{1, 1, {std::nanf("")}}}).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace clisc::models
