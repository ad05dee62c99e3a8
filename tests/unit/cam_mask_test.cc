// CAM binarization, post-processing and the reference mode's threshold search (REFERENCE.md
// section 4) on constructed volumes with hand-computed outcomes.
#include "workers/method/cam_mask.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "common/morphology.h"

namespace clisc::method {
namespace {

FloatVolume Row(const std::vector<float>& values) {
  FloatVolume v(Dims{static_cast<int64_t>(values.size()), 1, 1});
  v.voxels() = values;
  return v;
}

LabelVolume LabelRow(const std::vector<uint8_t>& values) {
  LabelVolume v(Dims{static_cast<int64_t>(values.size()), 1, 1});
  v.voxels() = values;
  return v;
}

void FillBox(LabelVolume& v, int x0, int x1, int y0, int y1, int z0, int z1) {
  for (int z = z0; z <= z1; ++z)
    for (int y = y0; y <= y1; ++y)
      for (int x = x0; x <= x1; ++x) v.at(x, y, z) = 1;
}

TEST(CamMaskTest, BinarizeCamIsAtLeastTheThreshold) {
  const FloatVolume cam = Row({0.0f, 0.2f, 0.5f, 0.50000006f, 1.0f});
  EXPECT_EQ(BinarizeCam(cam, 0.5).voxels(), (std::vector<uint8_t>{0, 0, 1, 1, 1}));
}

TEST(CamMaskTest, ReferenceUint8ComparesTheTruncatedLevelWithThrTimes255) {
  // 0.6f * 255 in float32 is 153.0 -> level 153. numpy.arange(0.05, 0.85, 0.05)[11] is
  // 0.6000000000000001 and 255 times it is 153.00000000000003 in double: level 153 fails it,
  // while the float CAM (0.6000000238) passes. 0.5f * 255 = 127.5 truncates to 127 < 127.5.
  const FloatVolume cam = Row({0.6f, 0.5f, 0.7f});
  EXPECT_EQ(BinarizeCam(cam, 0.6000000000000001, /*reference_uint8=*/true).voxels(),
            (std::vector<uint8_t>{0, 0, 1}));
  EXPECT_EQ(BinarizeCam(cam, 0.6, true).voxels(), (std::vector<uint8_t>{1, 0, 1}));
  EXPECT_EQ(BinarizeCam(cam, 0.6000000000000001, false).voxels(), (std::vector<uint8_t>{1, 0, 1}));
  EXPECT_EQ(BinarizeCam(cam, 0.5, true).voxels(), (std::vector<uint8_t>{1, 0, 1}));
}

TEST(CamMaskTest, OpeningRemovesASpurButKeepsACube) {
  LabelVolume mask(Dims{12, 12, 12});
  FillBox(mask, 2, 6, 2, 6, 2, 6);  // 5^3 cube
  mask.at(7, 4, 4) = 1;             // a 2-voxel spur sticking out of one face
  mask.at(8, 4, 4) = 1;
  const LabelVolume opened = PostprocessCamMask(mask, 3, 0.0);
  EXPECT_EQ(CountForeground(opened), 125);
  EXPECT_EQ(opened.at(7, 4, 4), 0);
  EXPECT_EQ(opened.at(2, 2, 2), 1);
  EXPECT_EQ(opened.at(6, 6, 6), 1);
  // Size 1: no opening, no component removal: the input as 0/1.
  EXPECT_EQ(PostprocessCamMask(mask, 1, 0.0).voxels(), mask.voxels());
}

TEST(CamMaskTest, ComponentsBelowAThirdOfTheLargestAreDropped) {
  // Without opening: components of 27, 9 and 8 voxels, at least 2 voxels apart. 9 is exactly a
  // third of 27 and stays; 8 is below it.
  LabelVolume mask(Dims{16, 8, 8});
  FillBox(mask, 0, 2, 0, 2, 0, 2);    // 27
  FillBox(mask, 5, 7, 0, 2, 0, 0);    // 9
  FillBox(mask, 10, 13, 0, 1, 0, 0);  // 8
  const LabelVolume kept = PostprocessCamMask(mask, 1, 1.0 / 3.0);
  EXPECT_EQ(CountForeground(kept), 36);
  EXPECT_EQ(kept.at(7, 2, 0), 1);
  EXPECT_EQ(kept.at(10, 0, 0), 0);

  // With the reference's opening: 6^3 = 216, 3x3x8 = 72 (= 216 / 3, kept), 3x3x7 = 63 (dropped);
  // each is a union of 3^3 cubes, so the opening leaves them whole.
  LabelVolume big(Dims{20, 8, 10});
  FillBox(big, 0, 5, 0, 5, 0, 5);
  FillBox(big, 8, 10, 0, 2, 0, 7);
  FillBox(big, 13, 15, 0, 2, 0, 6);
  const LabelVolume post = PostprocessCamMask(big);
  EXPECT_EQ(CountForeground(post), 216 + 72);
  EXPECT_EQ(post.at(9, 1, 7), 1);
  EXPECT_EQ(post.at(14, 1, 3), 0);
}

TEST(CamMaskTest, ThresholdSearchUsesArangeValuesAndPicksTheFirstBest) {
  // Case 1: 10 GT voxels at 0.5, 10 background voxels at 0.02: Dice 1 up to 0.5, then 0.
  // Case 2: 10 GT voxels at 0.3, 5 background voxels at 0.12, 5 at 0: Dice 20/25 = 0.8 at 0.05
  // and 0.1, 1 from 0.15 to 0.3, then 0. Mean: 0.9, 0.9, 1 (0.15 ... 0.3), 0.5 (0.35 ... 0.5), 0.
  std::vector<float> c1(20, 0.02f), c2(20, 0.0f);
  std::vector<uint8_t> g1(20, 0), g2(20, 0);
  for (int i = 0; i < 10; ++i) c1[i] = 0.5f, g1[i] = 1, c2[i] = 0.3f, g2[i] = 1;
  for (int i = 10; i < 15; ++i) c2[i] = 0.12f;
  const FloatVolume cam1 = Row(c1), cam2 = Row(c2);
  const LabelVolume gt1 = LabelRow(g1), gt2 = LabelRow(g2);
  auto result = SearchCamThreshold({{&cam1, &gt1}, {&cam2, &gt2}}, 0.05, 0.80, 0.05);
  ASSERT_TRUE(result.ok()) << result.status().ToString();

  // numpy.arange(0.05, 0.85, 0.05), as numpy prints it.
  const std::vector<double> arange = {0.05,
                                      0.1,
                                      0.15000000000000002,
                                      0.2,
                                      0.25,
                                      0.3,
                                      0.35000000000000003,
                                      0.4,
                                      0.45,
                                      0.5,
                                      0.55,
                                      0.6000000000000001,
                                      0.6500000000000001,
                                      0.7000000000000001,
                                      0.7500000000000001,
                                      0.8};
  ASSERT_EQ(result->mean_dice_by_threshold.size(), arange.size());
  for (size_t i = 0; i < arange.size(); ++i) {
    EXPECT_EQ(result->mean_dice_by_threshold[i].first, arange[i]) << i;
    const double expected = i < 2 ? 0.9 : i < 6 ? 1.0 : i < 10 ? 0.5 : 0.0;
    EXPECT_DOUBLE_EQ(result->mean_dice_by_threshold[i].second, expected) << i;
  }
  EXPECT_EQ(result->best, 0.15000000000000002);  // the first of the four tied at 1
}

TEST(CamMaskTest, ThresholdSearchAgreesWithBinarizeAndDice) {
  // Per-threshold means recomputed one threshold at a time with BinarizeCam and medpy's Dice.
  FloatVolume cam(Dims{6, 5, 4});
  LabelVolume gt = cam.LikeThis<uint8_t>();
  for (size_t i = 0; i < cam.voxels().size(); ++i) {
    cam[i] = static_cast<float>((i * 37) % 101) / 100.0f;
    gt[i] = (i * 11) % 7 < 3;
  }
  ThresholdSearchOptions options;
  options.min = 0.1, options.max = 0.9, options.step = 0.1, options.reference_uint8 = true;
  auto result = SearchCamThreshold({{&cam, &gt}}, options);
  ASSERT_TRUE(result.ok());
  ASSERT_EQ(result->mean_dice_by_threshold.size(), 9u);
  for (const auto& [thr, dice] : result->mean_dice_by_threshold) {
    const LabelVolume pred = BinarizeCam(cam, thr, true);
    int64_t p = 0, g = 0, both = 0;
    for (size_t i = 0; i < pred.voxels().size(); ++i) {
      p += pred[i], g += gt[i], both += pred[i] && gt[i];
    }
    EXPECT_DOUBLE_EQ(dice, 2.0 * both / (p + g)) << thr;
  }
}

TEST(CamMaskTest, ThresholdSearchEmptyPairsAndErrors) {
  const FloatVolume cam = Row({0, 0, 0});
  const LabelVolume gt = LabelRow({0, 0, 0});
  auto both_empty = SearchCamThreshold({{&cam, &gt}}, 0.1, 0.3, 0.1);
  ASSERT_TRUE(both_empty.ok());
  for (const auto& [thr, dice] : both_empty->mean_dice_by_threshold) EXPECT_EQ(dice, 0.0) << thr;
  ThresholdSearchOptions medpy05;
  medpy05.dice_if_both_empty = 1.0;
  EXPECT_EQ(SearchCamThreshold({{&cam, &gt}}, medpy05)->mean_dice_by_threshold[0].second, 1.0);

  const LabelVolume longer = LabelRow({0, 0, 0, 0});
  EXPECT_FALSE(SearchCamThreshold({}, 0.05, 0.8, 0.05).ok());
  EXPECT_FALSE(SearchCamThreshold({{&cam, &longer}}, 0.05, 0.8, 0.05).ok());
  EXPECT_FALSE(SearchCamThreshold({{&cam, nullptr}}, 0.05, 0.8, 0.05).ok());
  EXPECT_FALSE(SearchCamThreshold({{&cam, &gt}}, 0.05, 0.8, 0.0).ok());
  EXPECT_FALSE(SearchCamThreshold({{&cam, &gt}}, 0.9, 0.8, 0.05).ok());
}

}  // namespace
}  // namespace clisc::method
