// SAM's transforms against the official ResizeLongestSide, Sam.preprocess and
// Sam.postprocess_masks: the preprocess-shape table, the Pillow-exact resize at the real size
// (transforms_io.pth) and at the tiny size (predictor_io.pth), coordinate and box transforms,
// normalization and padding, and the mask upsampling.
#include "workers/models/sam/sam_transforms.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/support/torch_fixtures.h"

namespace clisc::models {
namespace {

using ::clisc::testing::AllClose;
using ::clisc::testing::Fixture;
using ::clisc::testing::Goldens;
using ::clisc::testing::LoadGoldens;

const std::array<double, 3> kPixelMean{123.675, 116.28, 103.53};
const std::array<double, 3> kPixelStd{58.395, 57.12, 57.375};
const std::vector<std::string> kPredictorImages{"img0", "img1", "img2", "img3", "img4"};
const std::vector<std::string> kPredictorCases{"box_pts9", "pts_multi", "box_only", "mask_refine"};

nlohmann::json ReadJson(const std::string& name) {
  std::ifstream in(Fixture(name));
  return nlohmann::json::parse(in);
}

SamImageSize SizeOf(const torch::Tensor& hw) {
  return {hw[0].item<int64_t>(), hw[1].item<int64_t>()};
}

// Exact equality of uint8 images, reporting how many samples differ and by how much.
::testing::AssertionResult SameImage(const torch::Tensor& actual, const torch::Tensor& expected) {
  if (actual.sizes() != expected.sizes())
    return ::testing::AssertionFailure()
           << "shape " << actual.sizes() << " vs " << expected.sizes();
  const torch::Tensor diff = (actual.to(torch::kInt) - expected.to(torch::kInt)).abs();
  const int64_t differing = diff.gt(0).sum().item<int64_t>();
  if (differing == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << differing << " of " << diff.numel()
                                       << " samples differ, by up to " << diff.max().item<int>();
}

class SamTransformsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::set_num_threads(2);
    CLISC_REQUIRE_FIXTURE(Fixture("sam/transforms_io.pth"));
    CLISC_REQUIRE_FIXTURE(Fixture("sam/predictor_io.pth"));
  }
};

TEST_F(SamTransformsTest, PreprocessShapeRoundsHalfUp) {
  const nlohmann::json cases = ReadJson("sam/transforms_cases.json").at("preprocess_shapes");
  ASSERT_GE(cases.size(), 15u);
  for (const auto& c : cases) {
    const SamImageSize got = ResizeLongestSide::GetPreprocessShape(
        c.at("old_hw").at(0).get<int64_t>(), c.at("old_hw").at(1).get<int64_t>(),
        c.at("target_length").get<int64_t>());
    EXPECT_EQ(got.first, c.at("new_hw").at(0).get<int64_t>()) << c.dump();
    EXPECT_EQ(got.second, c.at("new_hw").at(1).get<int64_t>()) << c.dump();
  }
}

TEST_F(SamTransformsTest, ApplyImageEqualsPillowAt1024) {
  const Goldens goldens = LoadGoldens(Fixture("sam/transforms_io.pth"));
  const ResizeLongestSide transform(1024);
  for (const std::string name : {"gray181x131", "rgb100x80", "rgb57x131"}) {
    const torch::Tensor resized = transform.ApplyImage(goldens.at(name + ".image"));
    EXPECT_TRUE(SameImage(resized, goldens.at(name + ".resized1024"))) << name;
  }
}

TEST_F(SamTransformsTest, ApplyImageEqualsPillowAt128) {
  const Goldens goldens = LoadGoldens(Fixture("sam/predictor_io.pth"));
  const ResizeLongestSide transform(128);
  for (const std::string& img : kPredictorImages) {
    const torch::Tensor resized = transform.ApplyImage(goldens.at(img + ".image"));
    EXPECT_TRUE(SameImage(resized, goldens.at(img + ".resized"))) << img;
    EXPECT_EQ(SamImageSize(resized.size(0), resized.size(1)),
              SizeOf(goldens.at(img + ".input_size")))
        << img;
  }
}

TEST_F(SamTransformsTest, CoordsAndBoxesAt1024) {
  const nlohmann::json cases = ReadJson("sam/transforms_cases.json").at("coords");
  const ResizeLongestSide transform(1024);
  for (const auto& c : cases) {
    const SamImageSize original{c.at("original_hw").at(0).get<int64_t>(),
                                c.at("original_hw").at(1).get<int64_t>()};
    const auto to_tensor = [](const nlohmann::json& rows) {
      std::vector<double> flat;
      for (const auto& row : rows)
        for (const auto& v : row) flat.push_back(v.get<double>());
      return torch::tensor(flat, torch::kDouble).view({static_cast<int64_t>(rows.size()), -1});
    };
    EXPECT_TRUE(AllClose(transform.ApplyCoords(to_tensor(c.at("points")), original),
                         to_tensor(c.at("points_transformed")), 0, 1e-12))
        << c.dump();
    EXPECT_TRUE(AllClose(transform.ApplyBoxes(to_tensor(c.at("box")).to(torch::kLong), original),
                         to_tensor(c.at("box_transformed")), 0, 1e-12))
        << c.dump();
  }
}

TEST_F(SamTransformsTest, PredictorPromptsAsFedToTheModel) {
  const Goldens goldens = LoadGoldens(Fixture("sam/predictor_io.pth"));
  const ResizeLongestSide transform(128);
  int checked = 0;
  for (const std::string& img : kPredictorImages) {
    const SamImageSize original = SizeOf(goldens.at(img + ".original_size"));
    for (const std::string& c : kPredictorCases) {
      const std::string prefix = img + "." + c + ".";
      if (goldens.count(prefix + "point_coords")) {
        const torch::Tensor coords =
            transform.ApplyCoords(goldens.at(prefix + "point_coords"), original).to(torch::kFloat);
        EXPECT_TRUE(AllClose(coords.unsqueeze(0), goldens.at(prefix + "coords_model"), 0, 1e-6))
            << prefix;
        ++checked;
      }
      if (goldens.count(prefix + "box")) {
        const torch::Tensor box =
            transform.ApplyBoxes(goldens.at(prefix + "box"), original).to(torch::kFloat);
        EXPECT_TRUE(AllClose(box.unsqueeze(0), goldens.at(prefix + "box_model"), 0, 1e-6))
            << prefix;
        ++checked;
      }
    }
  }
  EXPECT_EQ(checked, 25);  // 5 images x (3 cases with points + 2 with a box)
}

TEST_F(SamTransformsTest, PreprocessNormalizesThenPads) {
  const Goldens goldens = LoadGoldens(Fixture("sam/predictor_io.pth"));
  for (const std::string& img : kPredictorImages) {
    const torch::Tensor resized = goldens.at(img + ".resized").permute({2, 0, 1}).unsqueeze(0);
    const torch::Tensor input = SamPreprocess(resized, kPixelMean, kPixelStd, 128);
    EXPECT_TRUE(AllClose(input, goldens.at(img + ".input_padded"), 1e-6)) << img;
  }
}

TEST_F(SamTransformsTest, PostprocessMasksUpsamplesCropsAndResizes) {
  const Goldens goldens = LoadGoldens(Fixture("sam/predictor_io.pth"));
  double worst = 0;
  for (const std::string& img : kPredictorImages) {
    const SamImageSize input = SizeOf(goldens.at(img + ".input_size"));
    const SamImageSize original = SizeOf(goldens.at(img + ".original_size"));
    for (const std::string& c : kPredictorCases) {
      const std::string prefix = img + "." + c + ".";
      const torch::Tensor logits = SamPostprocessMasks(
          goldens.at(prefix + "low_res_logits").unsqueeze(0), 128, input, original)[0];
      const torch::Tensor& expected = goldens.at(prefix + "logits");
      EXPECT_TRUE(AllClose(logits, expected, 1e-5)) << prefix;
      worst = std::max(worst, (logits - expected).abs().max().item<double>());
    }
  }
  std::cout << "  postprocess_masks: max |diff| vs official logits " << worst << "\n";
}

TEST_F(SamTransformsTest, ApplyImageRefusesAnEmptySide) {
  const ResizeLongestSide transform(128);
  EXPECT_EQ(ResizeLongestSide::GetPreprocessShape(1, 1000, 128), (SamImageSize{0, 128}));
  EXPECT_THROW(transform.ApplyImage(torch::zeros({1, 1000, 3}, torch::kUInt8)), c10::Error);
  EXPECT_THROW(transform.ApplyImage(torch::zeros({4, 4}, torch::kUInt8)), c10::Error);
}

}  // namespace
}  // namespace clisc::models
