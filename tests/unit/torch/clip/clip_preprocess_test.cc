// CLIP preprocessing against the official transform's goldens (fixtures/clip/README.md section
// 5): resize sizes, crop offsets with Python's half-to-even rounding, the PIL bicubic result, the
// cropped uint8 image and the normalized output of every case, for mode L and mode F inputs; the
// tiny model's golden input images; and the CLISC slice-to-uint8 scaling (fixtures/cam).
#include "workers/models/clip/clip_preprocess.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/support/torch_fixtures.h"

namespace clisc::models {
namespace {

namespace fs = std::filesystem;
using ::clisc::backends::FloatSlice;
using ::clisc::backends::GrayImage;
using ::clisc::testing::AllClose;
using ::clisc::testing::Fixture;
using ::clisc::testing::LoadGoldens;

GrayImage ToGray(const torch::Tensor& t) {
  const torch::Tensor c = t.to(torch::kByte).contiguous();
  const uint8_t* data = c.data_ptr<uint8_t>();
  return GrayImage{static_cast<int>(c.size(1)), static_cast<int>(c.size(0)),
                   std::vector<uint8_t>(data, data + c.numel())};
}

FloatSlice ToFloatSlice(const torch::Tensor& t) {
  const torch::Tensor c = t.to(torch::kFloat).contiguous();
  const float* data = c.data_ptr<float>();
  return FloatSlice{static_cast<int>(c.size(1)), static_cast<int>(c.size(0)),
                    std::vector<float>(data, data + c.numel())};
}

torch::Tensor ToTensor(const GrayImage& image) {
  return torch::from_blob(const_cast<uint8_t*>(image.pixels.data()), {image.height, image.width},
                          torch::kByte)
      .clone();
}

torch::Tensor ToTensor(const FloatSlice& image) {
  return torch::from_blob(const_cast<float*>(image.values.data()), {image.height, image.width},
                          torch::kFloat)
      .clone();
}

nlohmann::json ReadJson(const fs::path& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

class ClipPreprocessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    json_path_ = Fixture("clip/preprocess_cases.json");
    pth_path_ = Fixture("clip/preprocess_cases.pth");
  }
  fs::path json_path_, pth_path_;
};

TEST_F(ClipPreprocessTest, SizesAndCropOffsetsOfEveryCase) {
  CLISC_REQUIRE_FIXTURE(json_path_);
  const nlohmann::json spec = ReadJson(json_path_);
  ASSERT_EQ(spec.at("cases").size(), 10u);
  int differs_from_half_away = 0;
  for (const auto& c : spec.at("cases")) {
    SCOPED_TRACE(c.at("id").get<std::string>());
    auto pair = [&](const char* key, int i) { return c.at(key)[i].get<int>(); };
    const ImageSize resized = ClipResizedSize(pair("in_hw", 0), pair("in_hw", 1), 224);
    EXPECT_EQ(resized, (ImageSize{pair("resized_hw", 0), pair("resized_hw", 1)}));
    const CropOffset crop = ClipCropOffset(resized.height, resized.width, 224);
    EXPECT_EQ(crop, (CropOffset{pair("crop_top_left", 0), pair("crop_top_left", 1)}));
    const CropOffset wrong{pair("crop_top_left_if_round_half_away", 0),
                           pair("crop_top_left_if_round_half_away", 1)};
    if (!(wrong == crop)) ++differs_from_half_away;
  }
  // 181x131, 131x181, 224x301, 40x56 and the f32 181x131: std::round would be wrong on these.
  EXPECT_EQ(differs_from_half_away, 5);
  for (float mean : kClipMean) EXPECT_GT(mean, 0.4f);
  EXPECT_FLOAT_EQ(spec.at("mean")[0].get<float>(), kClipMean[0]);
  EXPECT_FLOAT_EQ(spec.at("std")[2].get<float>(), kClipStd[2]);
}

TEST_F(ClipPreprocessTest, EveryCaseMatchesTheOfficialTransform) {
  CLISC_REQUIRE_FIXTURE(json_path_);
  CLISC_REQUIRE_FIXTURE(pth_path_);
  const nlohmann::json spec = ReadJson(json_path_);
  const testing::Goldens golden = LoadGoldens(pth_path_);
  for (const auto& c : spec.at("cases")) {
    const std::string id = c.at("id");
    SCOPED_TRACE(id);
    const torch::Tensor input = golden.at(id + "/input");
    const torch::Tensor expected_output = golden.at(id + "/output");
    const torch::Tensor expected_cropped = golden.at(id + "/cropped_u8");
    if (c.at("pil_mode") == "L") {
      const GrayImage image = ToGray(input);
      const GrayImage resized = ClipResize(image, 224);
      EXPECT_TRUE(torch::equal(ToTensor(resized), golden.at(id + "/resized")));
      const GrayImage cropped = ClipCenterCrop(resized, 224);
      EXPECT_TRUE(torch::equal(ToTensor(cropped), expected_cropped));
      StatusOr<torch::Tensor> output = ClipPreprocess(image, 224);
      ASSERT_TRUE(output.ok()) << output.status().ToString();
      EXPECT_TRUE(AllClose(*output, expected_output, 1e-6));
    } else {
      ASSERT_EQ(c.at("pil_mode"), "F");
      const FloatSlice image = ToFloatSlice(input);
      const FloatSlice resized = ClipResize(image, 224);
      // Pillow's float path: double coefficients and sums, float32 between the passes.
      EXPECT_TRUE(torch::equal(ToTensor(resized), golden.at(id + "/resized")));
      const GrayImage cropped = PilFloatToGray(ClipCenterCrop(resized, 224));
      EXPECT_TRUE(torch::equal(ToTensor(cropped), expected_cropped));
      StatusOr<torch::Tensor> output = ClipPreprocess(image, 224);
      ASSERT_TRUE(output.ok()) << output.status().ToString();
      EXPECT_TRUE(AllClose(*output, expected_output, 1e-6));
      // The step0 path: a float slice under clip.input: reference_pil is this transform.
      StatusOr<torch::Tensor> slice_input =
          ClipSliceInput(image, ClipInputMode::kReferencePil, 224);
      ASSERT_TRUE(slice_input.ok()) << slice_input.status().ToString();
      EXPECT_TRUE(AllClose(*slice_input, expected_output, 1e-6));
    }
    // Normalize alone, from the golden crop.
    EXPECT_TRUE(AllClose(ClipNormalize(ToGray(expected_cropped)), expected_output, 1e-6));
  }
}

TEST_F(ClipPreprocessTest, TinyModelGoldenImages) {
  const fs::path path = Fixture("clip/clip_io.pth");
  CLISC_REQUIRE_FIXTURE(path);
  const testing::Goldens golden = LoadGoldens(path);
  for (int i = 0; i < 3; ++i) {
    SCOPED_TRACE(i);
    StatusOr<torch::Tensor> image =
        ClipPreprocess(ToGray(golden.at("image_src_" + std::to_string(i))), 64);
    ASSERT_TRUE(image.ok()) << image.status().ToString();
    EXPECT_TRUE(AllClose(*image, golden.at("images")[i], 1e-6));
  }
}

TEST_F(ClipPreprocessTest, MinMaxScalingAsTheReference) {
  const fs::path path = Fixture("cam/cam_io.pth");
  CLISC_REQUIRE_FIXTURE(path);
  const testing::Goldens golden = LoadGoldens(path);
  for (int i = 0; i < 3; ++i) {
    SCOPED_TRACE(i);
    // Image.fromarray(float64 slice) is mode F: float32.
    const FloatSlice slice = ToFloatSlice(golden.at("slice_" + std::to_string(i) + "_f64"));
    const GrayImage scaled = MinMaxToGray(slice);
    EXPECT_TRUE(torch::equal(ToTensor(scaled), golden.at("slice_" + std::to_string(i) + "_u8")));

    StatusOr<torch::Tensor> standard = ClipSliceInput(slice, ClipInputMode::kStandard, 224);
    ASSERT_TRUE(standard.ok()) << standard.status().ToString();
    StatusOr<torch::Tensor> expected = ClipPreprocess(scaled, 224);
    ASSERT_TRUE(expected.ok());
    EXPECT_TRUE(torch::equal(*standard, *expected));
  }
  const GrayImage constant = MinMaxToGray(FloatSlice{3, 2, std::vector<float>(6, -0.7f)});
  EXPECT_EQ(constant.pixels, std::vector<uint8_t>(6, 0));
}

TEST(ClipPreprocessConversionTest, PillowFloatToGrayClipsAndTruncates) {
  const FloatSlice values{
      7, 1, {0.99f, 254.6f, -3.0f, 300.0f, 255.0f, 1.0f, std::numeric_limits<float>::quiet_NaN()}};
  EXPECT_EQ(PilFloatToGray(values).pixels, (std::vector<uint8_t>{0, 254, 0, 255, 255, 1, 0}));
}

TEST(ClipPreprocessConversionTest, InputModesParse) {
  EXPECT_EQ(*ParseClipInputMode("standard"), ClipInputMode::kStandard);
  EXPECT_EQ(*ParseClipInputMode("reference_pil"), ClipInputMode::kReferencePil);
  EXPECT_EQ(ParseClipInputMode("pil").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ClipInputModeName(ClipInputMode::kReferencePil), "reference_pil");
}

TEST(ClipPreprocessConversionTest, BadImagesAreInvalidArgument) {
  EXPECT_EQ(ClipPreprocess(GrayImage{4, 4, std::vector<uint8_t>(15)}, 224).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ClipPreprocess(GrayImage{0, 4, {}}, 224).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ClipPreprocess(FloatSlice{2, 2, std::vector<float>(4)}, 0).status().code(),
            StatusCode::kInvalidArgument);
  FloatSlice with_nan{2, 2, {0.0f, 1.0f, std::nanf(""), 2.0f}};
  EXPECT_EQ(ClipSliceInput(with_nan, ClipInputMode::kStandard, 224).status().code(),
            StatusCode::kInvalidArgument);
  // Tiny images are upscaled like any other: 1x3 -> 224x672, cropped to 224x224.
  StatusOr<torch::Tensor> tiny = ClipPreprocess(GrayImage{3, 1, {0, 128, 255}}, 224);
  ASSERT_TRUE(tiny.ok()) << tiny.status().ToString();
  EXPECT_EQ(tiny->sizes(), (torch::IntArrayRef{3, 224, 224}));
}

}  // namespace
}  // namespace clisc::models
