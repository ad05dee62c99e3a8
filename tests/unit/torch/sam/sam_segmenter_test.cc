// SamSegmenter, the PromptSegmenter over SamPredictor, on the tiny model: gray slices of the
// golden images give the official masks and IoUs, batched prompt sets equal single ones, the
// embedding is reused for the same slice, and misuse is a Status.
#include "workers/models/sam/sam_segmenter.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "tests/support/torch_fixtures.h"
#include "tests/unit/torch/sam/sam_tiny_model.h"

namespace clisc::models {
namespace {

using ::clisc::testing::Fixture;
using ::clisc::testing::Goldens;
using ::clisc::testing::LoadGoldens;

constexpr double kTolerance = 1e-4;
constexpr double kNearThreshold = 1e-3;

// Channel 0 of a golden image whose three channels are equal (img3 and img4 are gray).
backends::GrayImage GrayOf(const torch::Tensor& rgb) {
  const torch::Tensor gray = rgb.select(2, 0).contiguous();
  backends::GrayImage image;
  image.height = static_cast<int>(gray.size(0));
  image.width = static_cast<int>(gray.size(1));
  image.pixels.assign(gray.data_ptr<uint8_t>(), gray.data_ptr<uint8_t>() + gray.numel());
  return image;
}

backends::Prompts PromptsOf(const Goldens& g, const std::string& prefix) {
  backends::Prompts prompts;
  if (g.count(prefix + "point_coords")) {
    const torch::Tensor coords = g.at(prefix + "point_coords").to(torch::kFloat);
    const torch::Tensor labels = g.at(prefix + "point_labels");
    for (int64_t i = 0; i < coords.size(0); ++i)
      prompts.points.push_back(
          {coords[i][0].item<float>(), coords[i][1].item<float>(), labels[i].item<int64_t>() == 1});
  }
  if (g.count(prefix + "box")) {
    const torch::Tensor b = g.at(prefix + "box").to(torch::kFloat);
    prompts.box = backends::BoxPrompt{b[0].item<float>(), b[1].item<float>(), b[2].item<float>(),
                                      b[3].item<float>()};
  }
  return prompts;
}

// Mask pixels differing from the golden mask `index` where its logit is not near 0.
int64_t Differing(const backends::BinaryMask& mask, const Goldens& g, const std::string& prefix,
                  int64_t index) {
  const torch::Tensor expected = g.at(prefix + "masks")[index];
  const torch::Tensor logits = g.at(prefix + "logits")[index];
  EXPECT_EQ(mask.height, expected.size(0));
  EXPECT_EQ(mask.width, expected.size(1));
  const torch::Tensor ours = torch::from_blob(const_cast<uint8_t*>(mask.pixels.data()),
                                              {mask.height, mask.width}, torch::kUInt8)
                                 .to(torch::kBool);
  return ((ours != expected) & (logits.abs() >= kNearThreshold)).sum().item<int64_t>();
}

class SamSegmenterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::set_num_threads(2);
    CLISC_REQUIRE_FIXTURE(Fixture("sam/tiny_sam.pth"));
    CLISC_REQUIRE_FIXTURE(Fixture("sam/predictor_io.pth"));
    Sam sam{nullptr};
    ASSERT_NO_FATAL_FAILURE(testing::LoadTinySam(sam));
    segmenter_ = std::make_unique<SamSegmenter>(sam, Fixture("sam/tiny_sam.pth"), ComputeDevice{},
                                                /*max_batch_size=*/4);
    goldens_ = LoadGoldens(Fixture("sam/predictor_io.pth"));
  }

  std::unique_ptr<SamSegmenter> segmenter_;
  Goldens goldens_;
};

TEST_F(SamSegmenterTest, DescribesModelAndCheckpoint) {
  EXPECT_EQ(segmenter_->Describe(), "sam tiny (" + Fixture("sam/tiny_sam.pth").string() + ")");
}

TEST_F(SamSegmenterTest, GraySlicesGiveTheOfficialMasks) {
  for (const std::string img : {"img3", "img4"}) {
    ASSERT_TRUE(segmenter_->SetImage(GrayOf(goldens_.at(img + ".image"))).ok());
    // The CLISC prompt (5 positive points, 4 negative corners, the box) and a box alone, each
    // repeated so that they share decoder calls, in one Segment call.
    std::vector<backends::Prompts> prompts;
    std::vector<std::string> cases;
    for (int i = 0; i < 3; ++i) {
      for (const std::string c : {"box_pts9", "box_only"}) {
        prompts.push_back(PromptsOf(goldens_, img + "." + c + "."));
        cases.push_back(c);
      }
    }
    auto single = segmenter_->Segment(prompts, /*multimask=*/false);
    ASSERT_TRUE(single.ok()) << single.status().ToString();
    ASSERT_EQ(single->size(), prompts.size());
    for (size_t i = 0; i < prompts.size(); ++i) {
      const std::string prefix = img + "." + cases[i] + ".";
      EXPECT_EQ(Differing((*single)[i].mask, goldens_, prefix, 0), 0) << prefix;
      EXPECT_NEAR((*single)[i].score, goldens_.at(prefix + "iou")[0].item<float>(), kTolerance);
    }
    // Multimask: the mask with the best predicted IoU of the three.
    auto multi = segmenter_->Segment({PromptsOf(goldens_, img + ".pts_multi.")}, true);
    ASSERT_TRUE(multi.ok()) << multi.status().ToString();
    const torch::Tensor ious = goldens_.at(img + ".pts_multi.iou");
    const int64_t best = ious.argmax().item<int64_t>();
    EXPECT_EQ(Differing((*multi)[0].mask, goldens_, img + ".pts_multi.", best), 0);
    EXPECT_NEAR((*multi)[0].score, ious[best].item<float>(), kTolerance);
  }
}

TEST_F(SamSegmenterTest, TheSameSliceIsEmbeddedOnce) {
  const backends::GrayImage slice = GrayOf(goldens_.at("img4.image"));
  ASSERT_TRUE(segmenter_->SetImage(slice).ok());
  ASSERT_TRUE(segmenter_->SetImage(slice).ok());
  EXPECT_EQ(segmenter_->predictor().encoder_runs(), 1);
  ASSERT_TRUE(segmenter_->SetImage(GrayOf(goldens_.at("img3.image"))).ok());
  ASSERT_TRUE(segmenter_->SetImage(slice).ok());
  EXPECT_EQ(segmenter_->predictor().encoder_runs(), 3);
}

TEST_F(SamSegmenterTest, MisuseIsAStatus) {
  const backends::Prompts box_only = PromptsOf(goldens_, "img4.box_only.");
  EXPECT_EQ(segmenter_->Segment({box_only}, false).status().code(),
            StatusCode::kFailedPrecondition);
  backends::GrayImage bad = GrayOf(goldens_.at("img4.image"));
  bad.pixels.pop_back();
  EXPECT_EQ(segmenter_->SetImage(bad).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(segmenter_->SetImage(GrayOf(goldens_.at("img4.image"))).ok());
  EXPECT_EQ(segmenter_->Segment({box_only, backends::Prompts{}}, false).status().code(),
            StatusCode::kInvalidArgument);
  auto none = segmenter_->Segment({}, false);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST(SamSegmenterLoadTest, UnknownModelTypeAndMissingFile) {
  auto unknown = SamSegmenter::Load("/nonexistent/sam.pth", "vit_q", ComputeDevice{});
  EXPECT_EQ(unknown.status().code(), StatusCode::kInvalidArgument);
  auto missing = SamSegmenter::Load("/nonexistent/sam.pth", "vit_b", ComputeDevice{});
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace clisc::models
