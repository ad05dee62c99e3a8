// The slice and 8-bit image conversions of workers/method/axial_slices.h on constructed inputs:
// hand-computed values for the min-max scaling and cv2.equalizeHist's rounding, and Pillow 9.4's
// own output for the resized classifier images.
#include "workers/method/axial_slices.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace clisc::method {
namespace {

using backends::BinaryMask;
using backends::FloatSlice;

FloatVolume CoordinateVolume() {
  FloatVolume v(Dims{3, 2, 4});
  for (int64_t z = 0; z < 4; ++z)
    for (int64_t y = 0; y < 2; ++y)
      for (int64_t x = 0; x < 3; ++x) v.at(x, y, z) = static_cast<float>(x + 10 * y + 100 * z);
  return v;
}

TEST(AxialSlicesTest, AxialSliceIsThePlaneAtZWithXAlongRows) {
  const FloatSlice s = AxialSlice(CoordinateVolume(), 2);
  EXPECT_EQ(s.width, 3);
  EXPECT_EQ(s.height, 2);
  EXPECT_EQ(s.values, (std::vector<float>{200, 201, 202, 210, 211, 212}));
  EXPECT_TRUE(AxialSlice(CoordinateVolume(), 4).values.empty());
  EXPECT_EQ(AxialSlice(CoordinateVolume(), -1).width, 0);
}

TEST(AxialSlicesTest, AxialMaskIsZeroOneAndSetAxialMaskWritesOnlyItsSlice) {
  LabelVolume labels(Dims{2, 2, 3});
  labels.at(1, 0, 1) = 4;
  labels.at(0, 1, 1) = 1;
  EXPECT_EQ(AxialMask(labels, 1).pixels, (std::vector<uint8_t>{0, 1, 1, 0}));
  EXPECT_EQ(AxialMask(labels, 0).pixels, (std::vector<uint8_t>{0, 0, 0, 0}));

  ASSERT_TRUE(SetAxialMask(labels, 2, BinaryMask{2, 2, {1, 0, 0, 7}}).ok());
  EXPECT_EQ(labels.at(0, 0, 2), 1);
  EXPECT_EQ(labels.at(1, 1, 2), 1);  // nonzero is written as 1
  EXPECT_EQ(labels.at(1, 0, 1), 4);  // other slices untouched
  EXPECT_FALSE(SetAxialMask(labels, 3, BinaryMask{2, 2, {0, 0, 0, 0}}).ok());
  EXPECT_FALSE(SetAxialMask(labels, 0, BinaryMask{4, 1, {0, 0, 0, 0}}).ok());
}

TEST(AxialSlicesTest, TightBoxHasInclusiveBounds) {
  BinaryMask mask{5, 4, std::vector<uint8_t>(20, 0)};
  EXPECT_FALSE(TightBox(mask).has_value());
  mask.pixels[1 * 5 + 3] = 1;
  mask.pixels[2 * 5 + 1] = 1;
  EXPECT_EQ(TightBox(mask), (PixelBox{1, 1, 3, 2}));
}

TEST(AxialSlicesTest, MinMaxToUint8DividesThenMultipliesAndTruncates) {
  const std::vector<float> v = {-2, -1, 0, 2};  // (x + 2) / 4 * 255 = 0, 63.75, 127.5, 255
  EXPECT_EQ(MinMaxToUint8(v.data(), v.size()), (std::vector<uint8_t>{0, 63, 127, 255}));
  // + 1e-6 in the denominator: the maximum lands just below 255 and truncates to 254.
  EXPECT_EQ(MinMaxToUint8(v.data(), v.size(), 1e-6), (std::vector<uint8_t>{0, 63, 127, 254}));
  const std::vector<float> flat = {3, 3, 3};
  EXPECT_EQ(MinMaxToUint8(flat.data(), flat.size()), (std::vector<uint8_t>{0, 0, 0}));
}

TEST(AxialSlicesTest, EqualizeHistMapsTheCumulativeCountAboveTheLowestLevel) {
  // Four levels of 4 pixels: scale = 255 / 12, lut = 0, 4, 8, 12 pixels * scale.
  std::vector<uint8_t> four;
  for (uint8_t level : {10, 20, 30, 40}) four.insert(four.end(), 4, level);
  std::vector<uint8_t> expected;
  for (uint8_t level : {0, 85, 170, 255}) expected.insert(expected.end(), 4, level);
  EXPECT_EQ(EqualizeHist(four), expected);
}

TEST(AxialSlicesTest, EqualizeHistRoundsHalfToEvenLikeCvRound) {
  // 512 pixels, 2 at the lowest level: scale = 255 / 510 = 0.5 exactly. Level 1 (cdf 1) maps to
  // rint(0.5) = 0, level 2 (cdf 5) to rint(2.5) = 2, level 3 (cdf 510) to 255.
  std::vector<uint8_t> pixels;
  pixels.insert(pixels.end(), 2, 0);
  pixels.insert(pixels.end(), 1, 1);
  pixels.insert(pixels.end(), 4, 2);
  pixels.insert(pixels.end(), 505, 3);
  const std::vector<uint8_t> out = EqualizeHist(pixels);
  EXPECT_EQ(out[0], 0);
  EXPECT_EQ(out[2], 0);
  EXPECT_EQ(out[3], 2);
  EXPECT_EQ(out[7], 255);
  // cv2 leaves a constant image as it is.
  EXPECT_EQ(EqualizeHist(std::vector<uint8_t>(9, 77)), std::vector<uint8_t>(9, 77));
}

TEST(AxialSlicesTest, EqualizedSliceIsMinMaxThenEqualize) {
  FloatSlice s{4, 4, {}};
  for (float v : {-2.f, -1.f, 0.f, 2.f}) s.values.insert(s.values.end(), 4, v);
  const backends::GrayImage image = EqualizedSlice(s);
  EXPECT_EQ(image.width, 4);
  EXPECT_EQ(image.height, 4);
  std::vector<uint8_t> expected;  // levels 0, 63, 127, 255, 4 pixels each, as in the test above
  for (uint8_t level : {0, 85, 170, 255}) expected.insert(expected.end(), 4, level);
  EXPECT_EQ(image.pixels, expected);
}

// A 7x5 slice and what numpy + Pillow 9.4 make of it (python3-pil, Image.resize):
//   u8 = ((s - s.min()) / (s.max() - s.min() [+ 1e-6]) * 255).astype(np.uint8)
//   Image.fromarray(u8, "L").resize((8, 8) [, Image.BILINEAR])
FloatSlice PillowSlice() {
  return FloatSlice{7, 5, {0.0f,  1.59f,  3.92f,  3.94f,  7.75f,  9.25f,  14.54f, -0.07f, -1.53f,
                           0.8f,  3.87f,  4.63f,  9.18f,  11.42f, -3.19f, -1.6f,  -2.32f, 0.75f,
                           4.56f, 6.06f,  11.35f, -3.26f, -4.72f, -2.39f, -2.37f, 1.44f,  5.99f,
                           8.23f, -6.38f, -4.79f, -5.51f, -2.44f, -1.68f, 2.87f,  8.16f}};
}

TEST(AxialSlicesTest, ClassifierTrainingImageMatchesPillowBicubic) {
  const std::vector<uint8_t> pillow = {
      76, 94, 121, 124, 145, 180, 201, 255, 78, 80, 103, 120, 139, 167, 201, 240,
      75, 59, 74,  107, 127, 148, 195, 216, 47, 59, 56,  80,  115, 143, 171, 219,
      36, 46, 46,  59,  94,  133, 160, 207, 40, 22, 41,  47,  67,  115, 159, 180,
      15, 17, 21,  36,  54,  86,  138, 177, 0,  17, 8,   30,  50,  67,  123, 179};
  EXPECT_EQ(ClassifierTrainingImage(PillowSlice(), 8), pillow);
  EXPECT_TRUE(ClassifierTrainingImage(FloatSlice{}, 8).empty());
}

TEST(AxialSlicesTest, CamInputImageMatchesPillowBilinearWithEpsilon) {
  const std::vector<uint8_t> pillow = {
      77, 93, 116, 125, 146, 178, 202, 254, 77, 79, 99, 118, 138, 166, 199, 237,
      74, 62, 76,  106, 127, 150, 192, 216, 50, 57, 60, 82,  114, 143, 173, 216,
      38, 44, 48,  63,  95,  131, 161, 204, 38, 25, 40, 49,  71,  114, 156, 180,
      17, 19, 24,  38,  59,  91,  138, 177, 0,  15, 13, 31,  52,  74,  124, 177};
  EXPECT_EQ(CamInputImage(PillowSlice(), 8), pillow);
}

}  // namespace
}  // namespace clisc::method
