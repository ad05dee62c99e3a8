#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <set>
#include <vector>

#include "workers/segmentation/patch_sampling.h"

namespace clisc::segmentation {
namespace {

// A (z, y, x) = (nz, ny, nx) volume holding 0, 1, 2, ... in numpy's C order.
FloatVolume Arange(int64_t nz, int64_t ny, int64_t nx) {
  FloatVolume volume(Dims{nx, ny, nz});
  std::iota(volume.voxels().begin(), volume.voxels().end(), 0.0f);
  return volume;
}

std::vector<float> Flat(const FloatVolume& volume) { return volume.voxels(); }

// The expected arrays are numpy's: m = np.arange(12).reshape(2, 3, 2);
// np.rot90(m, k, axes=(0, 1)).flatten() and np.flip(m, axis).flatten().
TEST(UNetPatchSampling, Rot90MatchesNumpyInTheZYPlane) {
  const FloatVolume m = Arange(2, 3, 2);
  EXPECT_EQ(Flat(Rot90ZY(m, 0)), Flat(m));
  const FloatVolume r1 = Rot90ZY(m, 1);
  EXPECT_EQ(ShapeOf(r1.size()), (Shape3{3, 2, 2}));
  EXPECT_EQ(Flat(r1), (std::vector<float>{4, 5, 10, 11, 2, 3, 8, 9, 0, 1, 6, 7}));
  const FloatVolume r2 = Rot90ZY(m, 2);
  EXPECT_EQ(ShapeOf(r2.size()), (Shape3{2, 3, 2}));
  EXPECT_EQ(Flat(r2), (std::vector<float>{10, 11, 8, 9, 6, 7, 4, 5, 2, 3, 0, 1}));
  const FloatVolume r3 = Rot90ZY(m, 3);
  EXPECT_EQ(ShapeOf(r3.size()), (Shape3{3, 2, 2}));
  EXPECT_EQ(Flat(r3), (std::vector<float>{6, 7, 0, 1, 8, 9, 2, 3, 10, 11, 4, 5}));
  EXPECT_EQ(Flat(Rot90ZY(m, 5)), Flat(r1));
  EXPECT_EQ(Flat(Rot90ZY(Rot90ZY(m, 1), 3)), Flat(m));
}

TEST(UNetPatchSampling, FlipMatchesNumpy) {
  const FloatVolume m = Arange(2, 3, 2);
  EXPECT_EQ(Flat(FlipAxis(m, 0)), (std::vector<float>{6, 7, 8, 9, 10, 11, 0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(Flat(FlipAxis(m, 1)), (std::vector<float>{4, 5, 2, 3, 0, 1, 10, 11, 8, 9, 6, 7}));
  EXPECT_EQ(Flat(FlipAxis(m, 2)), (std::vector<float>{1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10}));
}

TEST(UNetPatchSampling, PadAndCropFollowNumpy) {
  const FloatVolume m = Arange(2, 3, 4);
  const FloatVolume padded = PadSymmetric(m, Shape3{1, 2, 0}, -7.0f);
  EXPECT_EQ(ShapeOf(padded.size()), (Shape3{4, 7, 4}));
  EXPECT_EQ(padded.at(0, 0, 0), -7.0f);
  EXPECT_EQ(padded.at(3, 6, 3), -7.0f);
  EXPECT_EQ(padded.at(0, 2, 1), m.at(0, 0, 0));
  EXPECT_EQ(padded.at(3, 4, 2), m.at(3, 2, 1));
  const FloatVolume cropped = Crop(m, Shape3{1, 1, 2}, Shape3{1, 2, 2});
  EXPECT_EQ(Flat(cropped), (std::vector<float>{18, 19, 22, 23}));
}

TEST(UNetPatchSampling, PaddingFormula) {
  const Shape3 patch{128, 128, 128};
  // Every axis larger than the patch: no padding at all.
  EXPECT_EQ(CropPadding({155, 170, 140}, patch), (Shape3{0, 0, 0}));
  // One axis <= patch pads every axis by max((p - s) // 2 + 3, 0), with floor division.
  EXPECT_EQ(CropPadding({120, 200, 129}, patch), (Shape3{7, 0, 2}));
  EXPECT_EQ(CropPadding({128, 131, 133}, patch), (Shape3{3, 1, 0}));
  EXPECT_EQ(CropPadding({127, 100, 300}, patch), (Shape3{3, 17, 0}));
  EXPECT_EQ(CropPadding({16, 16, 16}, Shape3{16, 16, 16}), (Shape3{3, 3, 3}));
}

TrainingCase SmallCase(int64_t nz, int64_t ny, int64_t nx) {
  TrainingCase c;
  FloatVolume a = Arange(nz, ny, nx);
  for (float& v : a.voxels()) v += 5.0f;  // minimum 5
  FloatVolume b = Arange(nz, ny, nx);
  for (float& v : b.voxels()) v = -2.0f + 0.5f * v;  // minimum -2
  c.channels = {a, b};
  c.label = LabelVolume(a.size());
  for (size_t i = 0; i < c.label.voxels().size(); ++i) c.label[i] = (i % 3 == 0) ? 1 : 0;
  return c;
}

// ExtractPatchInto must equal the reference's sequence of whole-volume operations.
void ExpectFastPathMatchesComposition(const TrainingCase& c, const Shape3& patch, CropPad pad,
                                      uint64_t seed) {
  const int64_t voxels = patch[0] * patch[1] * patch[2];
  for (int64_t iteration = 0; iteration < 40; ++iteration) {
    std::mt19937_64 rng = SampleRng(seed, iteration, 0);
    const StatusOr<PatchPlan> plan = DrawPatchPlan(ShapeOf(c.label.size()), patch, rng);
    ASSERT_TRUE(plan.ok()) << plan.status().ToString();
    std::vector<float> image(static_cast<size_t>(voxels * c.channels.size()));
    std::vector<uint8_t> label(static_cast<size_t>(voxels));
    ExtractPatchInto(c, *plan, patch, pad, image.data(), label.data());
    for (size_t ch = 0; ch < c.channels.size(); ++ch) {
      const float value = pad == CropPad::kZero ? 0.0f
                                                : *std::min_element(c.channels[ch].voxels().begin(),
                                                                    c.channels[ch].voxels().end());
      const FloatVolume expected =
          Crop(PadSymmetric(FlipAxis(Rot90ZY(c.channels[ch], plan->rotations), plan->flip_axis),
                            plan->padding, value),
               plan->start, patch);
      ASSERT_EQ(0, std::memcmp(expected.data(), image.data() + ch * voxels, voxels * 4))
          << "channel " << ch << " iteration " << iteration;
    }
    const LabelVolume expected_label =
        Crop(PadSymmetric(FlipAxis(Rot90ZY(c.label, plan->rotations), plan->flip_axis),
                          plan->padding, uint8_t{0}),
             plan->start, patch);
    ASSERT_EQ(expected_label.voxels(), label);
  }
}

TEST(UNetPatchSampling, ExtractionEqualsRotFlipPadCrop) {
  // A case smaller than the patch on some axes (padding) and one larger everywhere (no padding).
  ExpectFastPathMatchesComposition(SmallCase(6, 9, 5), Shape3{8, 8, 8}, CropPad::kBackground, 1);
  ExpectFastPathMatchesComposition(SmallCase(6, 9, 5), Shape3{8, 8, 8}, CropPad::kZero, 2);
  ExpectFastPathMatchesComposition(SmallCase(11, 13, 10), Shape3{8, 8, 8}, CropPad::kBackground, 3);
}

TEST(UNetPatchSampling, PadValuesAreChannelMinimaOrZeroAndLabelZero) {
  TrainingCase c = SmallCase(2, 2, 2);
  const Shape3 patch{8, 8, 8};
  // The crop's first corner is always in the padding here (pad 6 per side > start range).
  PatchPlan plan;
  plan.padding = CropPadding({2, 2, 2}, patch);
  ASSERT_EQ(plan.padding, (Shape3{6, 6, 6}));
  std::vector<float> image(2 * 512);
  std::vector<uint8_t> label(512, 9);
  ExtractPatchInto(c, plan, patch, CropPad::kBackground, image.data(), label.data());
  EXPECT_EQ(image[0], 5.0f);
  EXPECT_EQ(image[512], -2.0f);
  EXPECT_EQ(label[0], 0);
  ComputeChannelMinima(c);
  EXPECT_EQ(c.channel_minima, (std::vector<float>{5.0f, -2.0f}));
  ExtractPatchInto(c, plan, patch, CropPad::kZero, image.data(), label.data());
  EXPECT_EQ(image[0], 0.0f);
  EXPECT_EQ(image[512], 0.0f);
  EXPECT_EQ(ParseCropPad("zero").value(), CropPad::kZero);
  EXPECT_FALSE(ParseCropPad("edge").ok());
}

TEST(UNetPatchSampling, CropStartIsUniformOverTheExclusiveRange) {
  // (10, 12, 9) > 8 everywhere: no padding; starts in [0, 2), [0, 4), [0, 1).
  const Shape3 shape{10, 12, 9}, patch{8, 8, 8};
  std::set<int64_t> seen_z, seen_y, seen_x;
  for (int64_t i = 0; i < 400; ++i) {
    std::mt19937_64 rng = SampleRng(7, i, 0);
    const PatchPlan plan = DrawPatchPlan(shape, patch, rng).value();
    const Shape3 planned = PlannedShape(shape, plan);
    EXPECT_EQ(plan.padding, (Shape3{0, 0, 0}));
    for (int a = 0; a < 3; ++a) {
      EXPECT_GE(plan.start[a], 0);
      EXPECT_LT(plan.start[a], planned[a] - patch[a]);
    }
    seen_z.insert(plan.start[0]);
    seen_y.insert(plan.start[1]);
    seen_x.insert(plan.start[2]);
  }
  // Rotations swap z and y, so both axes see the ranges of 10 and 12.
  EXPECT_EQ(seen_z, (std::set<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(seen_y, (std::set<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(seen_x, (std::set<int64_t>{0}));
  std::mt19937_64 rng;
  EXPECT_FALSE(DrawPatchPlan(shape, Shape3{0, 8, 8}, rng).ok());
}

TEST(UNetPatchSampling, RandomnessIsAPureFunctionOfSeedIterationAndIndex) {
  const TrainingCase c = SmallCase(9, 11, 10);
  const Shape3 patch{8, 8, 8};
  auto sample = [&](uint64_t seed, int64_t iteration, int64_t index) {
    std::mt19937_64 rng = SampleRng(seed, iteration, index);
    return SamplePatch(c, patch, CropPad::kBackground, rng).value();
  };
  const TrainingPatch a = sample(2023, 5, 1), b = sample(2023, 5, 1);
  EXPECT_EQ(a.label.voxels(), b.label.voxels());
  EXPECT_EQ(a.channels[1].voxels(), b.channels[1].voxels());
  // Other streams draw other plans (in a few tries at least one differs).
  int differing = 0;
  for (int64_t i = 0; i < 8; ++i) {
    if (sample(2023, 5, 0).channels[0].voxels() != sample(2023, 6 + i, 0).channels[0].voxels()) {
      ++differing;
    }
  }
  EXPECT_GT(differing, 4);
  std::mt19937_64 x = SampleRng(1, 2, 3), y = SampleRng(1, 3, 2), z = SampleRng(2, 2, 3);
  EXPECT_NE(x(), y());
  EXPECT_NE(SampleRng(1, 2, 3)(), z());
  // Every rotation and both flips occur.
  std::set<int> rotations, flips;
  for (int64_t i = 0; i < 64; ++i) {
    std::mt19937_64 rng = SampleRng(3, i, 0);
    const PatchPlan plan = DrawPatchPlan({20, 20, 20}, patch, rng).value();
    rotations.insert(plan.rotations);
    flips.insert(plan.flip_axis);
  }
  EXPECT_EQ(rotations, (std::set<int>{0, 1, 2, 3}));
  EXPECT_EQ(flips, (std::set<int>{0, 1}));
}

TEST(UNetPatchSampling, EveryEpochVisitsEveryCaseOnce) {
  const int64_t n = 7;
  std::set<std::vector<int64_t>> distinct;
  for (int64_t epoch = 0; epoch < 5; ++epoch) {
    std::vector<int64_t> perm = EpochPermutation(2023, epoch, n);
    EXPECT_EQ(perm, EpochPermutation(2023, epoch, n));
    distinct.insert(perm);
    std::vector<int64_t> sorted = perm;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(sorted, (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6}));
    // The sample stream runs through the permutations end to end, whatever the batch size.
    for (int64_t i = 0; i < n; ++i) EXPECT_EQ(CaseOfSample(2023, epoch * n + i, n), perm[i]);
  }
  EXPECT_GT(distinct.size(), 3u);
  EXPECT_NE(EpochPermutation(1, 0, n), EpochPermutation(2, 0, n));
  EXPECT_TRUE(EpochPermutation(1, 0, 0).empty());
}

}  // namespace
}  // namespace clisc::segmentation
