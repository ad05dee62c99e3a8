// AMDA's masking (METHOD.md "AMDA", REFERENCE.md section 5) on constructed images.
#include "workers/method/amda.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

namespace clisc::method {
namespace {

TEST(AmdaTest, BoxToImageCoversEveryOverlappingPixel) {
  // 181 x 131 -> 224: x0 = floor(10 * 224 / 181) = 12, x1 = ceil(21 * 224 / 181) - 1 = 25;
  // y0 = floor(5 * 224 / 131) = 8, y1 = ceil(41 * 224 / 131) - 1 = 70.
  EXPECT_EQ(*BoxToImage(PixelBox{10, 5, 20, 40}, 181, 131, 224), (PixelBox{12, 8, 25, 70}));
  // The whole slice maps onto the whole image; a box past the edge is clipped first.
  EXPECT_EQ(*BoxToImage(PixelBox{0, 0, 180, 130}, 181, 131, 224), (PixelBox{0, 0, 223, 223}));
  EXPECT_EQ(*BoxToImage(PixelBox{-4, 0, 500, 130}, 181, 131, 224), (PixelBox{0, 0, 223, 223}));
  // Exact 2x upscale: native pixel c is output pixels 2c and 2c + 1.
  EXPECT_EQ(*BoxToImage(PixelBox{10, 3, 20, 3}, 112, 112, 224), (PixelBox{20, 6, 41, 7}));
  // Same size: unchanged.
  EXPECT_EQ(*BoxToImage(PixelBox{1, 2, 3, 4}, 224, 224, 224), (PixelBox{1, 2, 3, 4}));
  EXPECT_FALSE(BoxToImage(PixelBox{5, 0, 4, 0}, 10, 10, 20).ok());
  EXPECT_FALSE(BoxToImage(PixelBox{20, 0, 30, 0}, 10, 10, 20).ok());
  EXPECT_FALSE(BoxToImage(PixelBox{0, 0, 1, 1}, 0, 10, 20).ok());
}

TEST(AmdaTest, MaskPositiveSliceZeroesHighCamInsideTheBoxOnly) {
  const int size = 6;
  const std::vector<uint8_t> image(size * size, 100);
  std::vector<float> cam(size * size, 2.0f);  // high outside the box: must not matter
  // Box columns 1..3, rows 1..2: CAM 0, 0.25, 0.5 / 0.75, 0.875, 1. k = 8: thr = 0.8, so the
  // pixels at 0.875 (2,2) and 1 (3,2) are zeroed.
  const float inside[2][3] = {{0.0f, 0.25f, 0.5f}, {0.75f, 0.875f, 1.0f}};
  for (int y = 1; y <= 2; ++y)
    for (int x = 1; x <= 3; ++x) cam[y * size + x] = inside[y - 1][x - 1];
  auto masked = MaskPositiveSlice(image, size, cam, PixelBox{1, 1, 3, 2}, 8);
  ASSERT_TRUE(masked.ok()) << masked.status().ToString();
  std::vector<uint8_t> expected = image;
  expected[2 * size + 2] = 0;
  expected[2 * size + 3] = 0;
  EXPECT_EQ(*masked, expected);
  // k = 10: thr = max, and "> thr" zeroes nothing; k = 0: everything above the minimum.
  EXPECT_EQ(*MaskPositiveSlice(image, size, cam, PixelBox{1, 1, 3, 2}, 10), image);
  const std::vector<uint8_t> k0 = *MaskPositiveSlice(image, size, cam, PixelBox{1, 1, 3, 2}, 0);
  EXPECT_EQ(std::count(k0.begin(), k0.end(), 0), 5);
  EXPECT_FALSE(MaskPositiveSlice(image, size + 1, cam, PixelBox{1, 1, 3, 2}, 8).ok());
  EXPECT_FALSE(MaskPositiveSlice(image, size, cam, PixelBox{1, 1, 3, 2}, 11).ok());
  EXPECT_FALSE(MaskPositiveSlice(image, size, cam, PixelBox{7, 7, 9, 9}, 8).ok());
}

TEST(AmdaTest, MaskNegativeSliceZeroesExactlyTheRoundedCountSeeded) {
  const std::vector<uint8_t> image(100 * 100, 7);
  auto zeros = [](const std::vector<uint8_t>& v) { return std::count(v.begin(), v.end(), 0); };
  std::mt19937_64 a(42), b(42), c(43);
  const std::vector<uint8_t> ma = MaskNegativeSlice(image, 0.1, a);
  EXPECT_EQ(zeros(ma), 1000);
  EXPECT_EQ(MaskNegativeSlice(image, 0.1, b), ma);
  EXPECT_NE(MaskNegativeSlice(image, 0.1, c), ma);
  // 0.125 * 100 = 12.5 exactly: llround rounds half away from zero.
  EXPECT_EQ(zeros(MaskNegativeSlice(std::vector<uint8_t>(100, 7), 0.125, a)), 13);
  EXPECT_EQ(zeros(MaskNegativeSlice(image, 0.0, a)), 0);
  EXPECT_EQ(zeros(MaskNegativeSlice(image, 1.0, a)), 10000);
  EXPECT_EQ(zeros(MaskNegativeSlice(image, 2.0, a)), 10000);
}

TEST(AmdaTest, MaskNegativeSliceChoosesPixelsUniformly) {
  // 100 pixels, 30 masked per draw, 20000 draws: each pixel is masked 6000 times on average
  // with a standard deviation of sqrt(20000 * 0.3 * 0.7) = 65.
  const std::vector<uint8_t> image(100, 1);
  std::vector<int> hits(100, 0);
  std::mt19937_64 rng(7);
  for (int draw = 0; draw < 20000; ++draw) {
    const std::vector<uint8_t> m = MaskNegativeSlice(image, 0.3, rng);
    for (int i = 0; i < 100; ++i) hits[i] += m[i] == 0;
  }
  for (int i = 0; i < 100; ++i) EXPECT_NEAR(hits[i], 6000, 400) << "pixel " << i;
}

TEST(AmdaTest, ReferenceFallbackZeroesAboveEightyPercentOfTheRange) {
  // 0..255: thr = 0.8 * 255 = 204, so 205 and 255 go, 204 stays.
  EXPECT_EQ(ReferenceFallbackMask({0, 100, 203, 204, 205, 255}),
            (std::vector<uint8_t>{0, 100, 203, 204, 0, 0}));
  // 50..250: thr = 50 + 0.8 * 200 = 210.
  EXPECT_EQ(ReferenceFallbackMask({50, 210, 211, 250}), (std::vector<uint8_t>{50, 210, 0, 0}));
  EXPECT_EQ(ReferenceFallbackMask({9, 9, 9}), (std::vector<uint8_t>{9, 9, 9}));
  EXPECT_TRUE(ReferenceFallbackMask({}).empty());
}

}  // namespace
}  // namespace clisc::method
