// The classifier's training augmentation (classifier.augment): the geometry maps pixels where the
// transform says, draws are seeded by (seed, epoch, slice) alone, intensities stay in [0, 1],
// labels are untouched, and a cancelled augmented training resumes to bit-identical weights.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <vector>

#include "tests/unit/torch/cam/classifier_engine_test_data.h"
#include "workers/models/cam/slice_augmentation.h"
#include "workers/models/cam/slice_batch_loader.h"

namespace clisc::models::engine_test {
namespace {

using roles::ClassifierAugmentation;

constexpr int kSize = 9;

// A size x size image whose pixel (row, col) is 1 + row * size + col (distinct, never zero).
std::vector<uint8_t> Ramp(int size) {
  std::vector<uint8_t> pixels(static_cast<size_t>(size) * size);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>(1 + i);
  return pixels;
}

float Plain(const std::vector<uint8_t>& pixels, int row, int col) {
  return static_cast<float>(pixels[static_cast<size_t>(row) * kSize + col]) / 255.0f;
}

std::vector<float> Apply(const std::vector<uint8_t>& pixels, const SliceAugmentationDraw& draw) {
  std::vector<float> out(pixels.size(), -1.0f);
  ApplySliceAugmentation(pixels.data(), kSize, draw, out.data());
  return out;
}

ClassifierAugmentation On() {
  ClassifierAugmentation o;
  o.enabled = true;
  return o;
}

ClassifierAugmentation Identity() {
  ClassifierAugmentation o = On();
  o.flip = false;
  o.zoom_min = o.zoom_max = 1.0;
  o.shift = 0;
  o.gamma = 0;
  o.contrast_min = o.contrast_max = 1.0;
  return o;
}

TEST(ClassifierAugmentationTest, FlipsMirrorPixels) {
  const auto pixels = Ramp(kSize);
  SliceAugmentationDraw draw;
  draw.flip_x = true;
  auto out = Apply(pixels, draw);
  for (int r = 0; r < kSize; ++r) {
    for (int c = 0; c < kSize; ++c) {
      ASSERT_EQ(out[r * kSize + c], Plain(pixels, r, kSize - 1 - c)) << r << "," << c;
    }
  }
  draw = {};
  draw.flip_y = true;
  out = Apply(pixels, draw);
  for (int r = 0; r < kSize; ++r) {
    for (int c = 0; c < kSize; ++c) {
      ASSERT_EQ(out[r * kSize + c], Plain(pixels, kSize - 1 - r, c)) << r << "," << c;
    }
  }
}

TEST(ClassifierAugmentationTest, ShiftMovesContentAndFillsZero) {
  const auto pixels = Ramp(kSize);
  SliceAugmentationDraw draw;
  draw.shift_x = 3;   // content moves right by 3
  draw.shift_y = -2;  // and up by 2
  const auto out = Apply(pixels, draw);
  for (int r = 0; r < kSize; ++r) {
    for (int c = 0; c < kSize; ++c) {
      const int source_r = r + 2, source_c = c - 3;
      const bool inside = source_r < kSize && source_c >= 0;
      EXPECT_EQ(out[r * kSize + c], inside ? Plain(pixels, source_r, source_c) : 0.0f)
          << r << "," << c;
    }
  }
}

TEST(ClassifierAugmentationTest, ZoomScalesAboutTheCentre) {
  const auto pixels = Ramp(kSize);
  const int centre = kSize / 2;
  SliceAugmentationDraw draw;
  draw.zoom = 2.0;
  auto out = Apply(pixels, draw);
  for (int k = -2; k <= 2; ++k) {  // output centre + 2k shows input centre + k
    EXPECT_EQ(out[(centre + 2 * k) * kSize + centre], Plain(pixels, centre + k, centre)) << k;
    EXPECT_EQ(out[centre * kSize + centre + 2 * k], Plain(pixels, centre, centre + k)) << k;
  }
  // Half-way pixels are the bilinear mean of their two neighbours.
  EXPECT_NEAR(out[centre * kSize + centre + 1],
              0.5f * (Plain(pixels, centre, centre) + Plain(pixels, centre, centre + 1)), 1e-6);
  draw.zoom = 0.5;  // shrinking leaves a zero border
  out = Apply(pixels, draw);
  EXPECT_EQ(out[centre * kSize + centre], Plain(pixels, centre, centre));
  EXPECT_EQ(out[centre * kSize + centre + 2], Plain(pixels, centre, centre + 4));
  EXPECT_EQ(out[0], 0.0f);
  EXPECT_EQ(out[kSize * kSize - 1], 0.0f);
}

TEST(ClassifierAugmentationTest, IdentityEqualsThePlainBatchAndLabelsAreKept) {
  const auto slices = MakeSquares(20, 16, 5);
  std::vector<int64_t> order(slices.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(order.size() - 1 - i);
  const SliceBatch plain = AssembleSliceBatch(slices, order, 3, 8, 16);
  SliceBatchAugmentation identity{Identity(), 7, 1};
  const SliceBatch same = AssembleSliceBatch(slices, order, 3, 8, 16, false, &identity);
  EXPECT_TRUE(torch::equal(plain.images, same.images));
  SliceBatchAugmentation random{On(), 7, 1};
  const SliceBatch augmented = AssembleSliceBatch(slices, order, 3, 8, 16, false, &random);
  EXPECT_FALSE(torch::equal(plain.images, augmented.images));
  EXPECT_TRUE(torch::equal(plain.labels, augmented.labels));
  for (int64_t i = 0; i < 8; ++i) {
    EXPECT_EQ(augmented.labels[i].item<int64_t>(), slices[order[3 + i]].label);
    // The three channels stay copies of one gray image.
    EXPECT_TRUE(torch::equal(augmented.images[i][0], augmented.images[i][2]));
  }
}

TEST(ClassifierAugmentationTest, DrawsDependOnSeedEpochAndSliceOnly) {
  const auto slices = MakeSquares(24, 16, 6);
  std::vector<int64_t> forward(slices.size()), backward(slices.size());
  for (size_t i = 0; i < slices.size(); ++i) {
    forward[i] = static_cast<int64_t>(i);
    backward[i] = static_cast<int64_t>(slices.size() - 1 - i);
  }
  SliceBatchAugmentation epoch1{On(), 42, 1};
  const SliceBatch a = AssembleSliceBatch(slices, forward, 0, 24, 16, false, &epoch1);
  const SliceBatch b = AssembleSliceBatch(slices, forward, 0, 24, 16, false, &epoch1);
  EXPECT_TRUE(torch::equal(a.images, b.images));  // same seed: same batch
  // A slice gets its image wherever it sits in the order.
  const SliceBatch reversed = AssembleSliceBatch(slices, backward, 0, 24, 16, false, &epoch1);
  EXPECT_TRUE(torch::equal(a.images, reversed.images.flip(0)));
  SliceBatchAugmentation epoch2{On(), 42, 2};
  EXPECT_FALSE(torch::equal(a.images,
                            AssembleSliceBatch(slices, forward, 0, 24, 16, false, &epoch2).images));
  SliceBatchAugmentation other_seed{On(), 43, 1};
  EXPECT_FALSE(torch::equal(
      a.images, AssembleSliceBatch(slices, forward, 0, 24, 16, false, &other_seed).images));
  // Different slices of one epoch draw differently.
  const auto d0 = DrawSliceAugmentation(On(), 16, 42, 1, 0);
  const auto d1 = DrawSliceAugmentation(On(), 16, 42, 1, 1);
  EXPECT_NE(d0.zoom, d1.zoom);
  EXPECT_NE(d0.gamma, d1.gamma);
}

TEST(ClassifierAugmentationTest, DrawsStayInTheirRangesAndIntensitiesInZeroOne) {
  ClassifierAugmentation o = On();
  o.gamma = 3.0;  // the schema's extremes
  o.contrast_min = 0.0;
  o.contrast_max = 4.0;
  o.shift = 0.5;
  const auto pixels = Ramp(kSize);
  int flips_x = 0, flips_y = 0;
  constexpr int kDraws = 400;
  for (int i = 0; i < kDraws; ++i) {
    const auto d = DrawSliceAugmentation(o, kSize, 1, i % 7, i);
    EXPECT_GE(d.zoom, o.zoom_min);
    EXPECT_LE(d.zoom, o.zoom_max);
    EXPECT_LE(std::abs(d.shift_x), o.shift * kSize);
    EXPECT_LE(std::abs(d.shift_y), o.shift * kSize);
    EXPECT_GE(d.gamma, std::exp(-o.gamma));
    EXPECT_LE(d.gamma, std::exp(o.gamma));
    EXPECT_GE(d.contrast, o.contrast_min);
    EXPECT_LE(d.contrast, o.contrast_max);
    flips_x += d.flip_x;
    flips_y += d.flip_y;
    for (float v : Apply(pixels, d)) {
      ASSERT_TRUE(v >= 0.0f && v <= 1.0f) << v << " in draw " << i;
    }
  }
  EXPECT_GT(flips_x, kDraws / 3);
  EXPECT_LT(flips_x, 2 * kDraws / 3);
  EXPECT_GT(flips_y, kDraws / 3);
  EXPECT_LT(flips_y, 2 * kDraws / 3);
  // Disabled: the identity whatever the ranges say.
  o.enabled = false;
  const auto off = DrawSliceAugmentation(o, kSize, 1, 1, 1);
  EXPECT_FALSE(off.flip_x || off.flip_y);
  EXPECT_EQ(off.zoom, 1.0);
  EXPECT_EQ(off.gamma, 1.0);
  EXPECT_EQ(off.contrast, 1.0);
}

TEST(ClassifierAugmentationTest, BadRangesAreRefused) {
  ClassifierAugmentation o = On();
  EXPECT_TRUE(CheckAugmentation(o).ok());
  o.zoom_min = 1.5;  // above zoom_max
  EXPECT_EQ(CheckAugmentation(o).code(), StatusCode::kInvalidArgument);
  o = On();
  o.shift = 1.0;
  EXPECT_EQ(CheckAugmentation(o).code(), StatusCode::kInvalidArgument);
  o = On();
  o.contrast_min = -0.1;
  EXPECT_EQ(CheckAugmentation(o).code(), StatusCode::kInvalidArgument);

  const fs::path dir = ScratchDir();
  ClassifierTrainingOptions options = SmallOptions(dir);
  options.augment = o;
  auto engine = MakeTorchClassifierEngine();
  auto report = engine->Train(MakeSquares(16, 32, 1), {}, options, dir / "m.pth", {});
  EXPECT_EQ(report.status().code(), StatusCode::kInvalidArgument) << report.status().ToString();
}

TEST_F(ClassifierEngineTest, AugmentedTrainingResumesToBitIdenticalWeights) {
  const fs::path dir = ScratchDir();
  const auto train = MakeSquares(64, 32, 3);
  ClassifierTrainingOptions options = SmallOptions(dir);
  options.augment = On();
  options.checkpoint_path = dir / "straight.ckpt";
  const TrainingReport straight = TrainOrDie(train, {}, options, dir / "straight.pth");

  // Interrupted in epoch 2 with a loader thread, then resumed inline.
  options.checkpoint_path = dir / "resumed.ckpt";
  options.loader_threads = 1;
  auto engine = MakeTorchClassifierEngine();
  auto cancelled = engine->Train(train, {}, options, dir / "resumed.pth",
                                 [&](double, const std::string& message) {
                                   return message.rfind("epoch 2/3 step 3/", 0) != 0;
                                 });
  ASSERT_EQ(cancelled.status().code(), StatusCode::kCancelled) << cancelled.status().ToString();
  options.loader_threads = 0;
  const TrainingReport resumed = TrainOrDie(train, {}, options, dir / "resumed.pth");
  EXPECT_EQ(resumed.resumed_after_epoch, 1);
  ASSERT_EQ(resumed.epochs.size(), straight.epochs.size());
  for (size_t e = 0; e < straight.epochs.size(); ++e) {
    EXPECT_EQ(resumed.epochs[e].loss, straight.epochs[e].loss) << "epoch " << e + 1;
  }
  EXPECT_TRUE(SameWeights(dir / "straight.pth", dir / "resumed.pth"));

  // Augmentation is part of what a checkpoint must agree on, and it changes the training.
  options.augment.enabled = false;
  auto plain = engine->Train(train, {}, options, dir / "plain.pth", {});
  EXPECT_EQ(plain.status().code(), StatusCode::kFailedPrecondition) << plain.status().ToString();
  options.checkpoint_path = dir / "plain.ckpt";
  TrainOrDie(train, {}, options, dir / "plain.pth");
  EXPECT_FALSE(SameWeights(dir / "straight.pth", dir / "plain.pth"));
}

}  // namespace
}  // namespace clisc::models::engine_test
