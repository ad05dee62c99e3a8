// The sliding-window geometry against nnU-Net v2 and scipy. Expected values were printed once with
// Debian's /usr/bin/python3 (numpy, scipy 1.10.1) from verbatim copies of nnU-Net v2's
// compute_steps_for_sliding_window(image_size, tile_size, 1 - overlap) and compute_gaussian
// (gaussian_filter of a centred delta, / max, zeros -> min nonzero), and from
// scipy.ndimage.zoom(np.arange(1, in + 1, dtype=float), out / in, order=0) - 1 (so cval 0 reads
// as -1). The zoom rule was also compared with scipy on all 119,700 pairs in 1..399 x 1..299.
#include "workers/segmentation/sliding_window_grid.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace clisc::segmentation {
namespace {

using Indices = std::vector<int64_t>;

TEST(SlidingWindowStartsTest, MatchesNnUNet) {
  EXPECT_EQ(SlidingWindowStarts(240, 128, 0.5), (Indices{0, 56, 112}));
  EXPECT_EQ(SlidingWindowStarts(155, 128, 0.5), (Indices{0, 27}));
  EXPECT_EQ(SlidingWindowStarts(128, 128, 0.5), (Indices{0}));
  EXPECT_EQ(SlidingWindowStarts(129, 128, 0.5), (Indices{0, 1}));
  EXPECT_EQ(SlidingWindowStarts(11, 6, 0.5), (Indices{0, 2, 5}));  // 2.5 rounds half to even
  EXPECT_EQ(SlidingWindowStarts(300, 128, 0.25), (Indices{0, 86, 172}));
  EXPECT_EQ(SlidingWindowStarts(200, 64, 0.5), (Indices{0, 27, 54, 82, 109, 136}));
  EXPECT_EQ(SlidingWindowStarts(50, 16, 0.0), (Indices{0, 11, 23, 34}));
  EXPECT_EQ(SlidingWindowStarts(40, 16, 0.75), (Indices{0, 4, 8, 12, 16, 20, 24}));
}

TEST(SlidingWindowStartsTest, SmallerThanPatchIsOneWindowOverThePaddedAxis) {
  EXPECT_EQ(SlidingWindowStarts(100, 128, 0.5), (Indices{0}));
  EXPECT_EQ(SlidingWindowStarts(1, 16, 0.5), (Indices{0}));
  EXPECT_EQ(PaddingBefore(100, 128), 14);
  EXPECT_EQ(PaddingBefore(101, 128), 13);  // the odd voxel goes after the data
  EXPECT_EQ(PaddingBefore(128, 128), 0);
  EXPECT_EQ(PaddingBefore(200, 128), 0);
}

TEST(SlidingWindowStartsTest, CoversEveryVoxelWithTheRequestedOverlap) {
  for (int64_t patch : {1, 2, 7, 16, 64, 128}) {
    for (double overlap : {0.0, 0.25, 0.5, 0.9}) {
      for (int64_t size = patch; size < patch * 4 + 3; ++size) {
        const Indices starts = SlidingWindowStarts(size, patch, overlap);
        ASSERT_FALSE(starts.empty());
        EXPECT_EQ(starts.front(), 0);
        EXPECT_EQ(starts.back() + patch, size) << size << " " << patch << " " << overlap;
        std::vector<int> hits(static_cast<size_t>(size), 0);
        for (size_t i = 0; i < starts.size(); ++i) {
          if (i > 0) {
            ASSERT_GT(starts[i], starts[i - 1]);
            // Consecutive windows share at least overlap * patch voxels (the step never
            // exceeds the target step, up to its rounding to whole voxels).
            const double step = static_cast<double>(starts[i] - starts[i - 1]);
            EXPECT_LE(step, std::max(std::ceil(patch * (1.0 - overlap)), 1.0))
                << size << " " << patch << " " << overlap;
          }
          for (int64_t v = starts[i]; v < starts[i] + patch; ++v) ++hits[static_cast<size_t>(v)];
        }
        EXPECT_EQ(std::count(hits.begin(), hits.end(), 0), 0);
      }
    }
  }
}

TEST(GaussianImportanceMapTest, MatchesNnUNetComputeGaussian) {
  const std::array<int64_t, 3> patch = {8, 6, 5};
  const std::vector<float> map = GaussianImportanceMap(patch, 0.125);
  ASSERT_EQ(map.size(), 8u * 6u * 5u);
  auto at = [&](int z, int y, int x) { return map[static_cast<size_t>((z * 6 + y) * 5 + x)]; };
  EXPECT_EQ(at(4, 3, 2), 1.0f);  // the centre is patch / 2 on each axis
  EXPECT_NEAR(at(0, 0, 0), 6.7251277e-10, 6.7251277e-10 * 1e-5);
  EXPECT_NEAR(at(7, 5, 4), 1.8963956e-06, 1.8963956e-06 * 1e-5);
  EXPECT_NEAR(at(4, 0, 2), 0.00033546262, 0.00033546262 * 1e-5);
  EXPECT_NEAR(at(1, 2, 3), 0.0012698089, 0.0012698089 * 1e-5);
}

TEST(GaussianImportanceMapTest, DefaultPatchIsPositiveSymmetricAndPeakedAtTheCentre) {
  const std::vector<float> map = GaussianImportanceMap({128, 128, 128}, 0.125);
  ASSERT_EQ(map.size(), 128u * 128u * 128u);
  auto at = [&](int z, int y, int x) { return map[static_cast<size_t>((z * 128 + y) * 128 + x)]; };
  EXPECT_EQ(*std::max_element(map.begin(), map.end()), 1.0f);
  EXPECT_EQ(at(64, 64, 64), 1.0f);
  const float smallest = *std::min_element(map.begin(), map.end());
  EXPECT_NEAR(smallest, 3.7751344e-11, 3.7751344e-11 * 1e-5);
  EXPECT_EQ(at(0, 0, 0), smallest);
  EXPECT_NEAR(at(64, 64, 0), 0.00033546262, 0.00033546262 * 1e-5);
  EXPECT_NEAR(at(64, 64, 127), 0.00042990208, 0.00042990208 * 1e-5);
  // Symmetric about the centre voxel, separable, and falling off with distance.
  for (int d = 1; d < 64; ++d) {
    EXPECT_FLOAT_EQ(at(64 - d, 64, 64), at(64 + d, 64, 64));
    EXPECT_FLOAT_EQ(at(64, 64 - d, 64), at(64, 64, 64 - d));
    EXPECT_LT(at(64, 64, 64 + d), at(64, 64, 64 + d - 1));
  }
}

TEST(GaussianImportanceMapTest, ZerosBeyondTheKernelRadiusBecomeTheSmallestWeight) {
  // sigma 1 voxel: scipy's kernel stops at radius 4, so voxels 5+ away from the centre on any
  // axis are zero in the filter output and take the smallest nonzero value (the corner of the
  // kernel's support, exp(-8)^3).
  const std::vector<float> map = GaussianImportanceMap({20, 20, 20}, 0.05);
  auto at = [&](int z, int y, int x) { return map[static_cast<size_t>((z * 20 + y) * 20 + x)]; };
  EXPECT_EQ(at(10, 10, 10), 1.0f);
  EXPECT_NEAR(at(0, 0, 0), 3.7751344e-11, 3.7751344e-11 * 1e-5);
  EXPECT_EQ(at(10, 10, 0), at(0, 0, 0));
  EXPECT_EQ(at(10, 10, 5), at(0, 0, 0));
  EXPECT_NEAR(at(10, 10, 6), 0.00033546262, 0.00033546262 * 1e-5);
  EXPECT_EQ(std::count(map.begin(), map.end(), at(0, 0, 0)), 7279);
  EXPECT_EQ(std::count(map.begin(), map.end(), 0.0f), 0);
}

TEST(GaussianImportanceMapTest, NonPositiveSigmaScaleAveragesPlainly) {
  const std::vector<float> map = GaussianImportanceMap({4, 3, 2}, 0.0);
  ASSERT_EQ(map.size(), 24u);
  for (float w : map) EXPECT_EQ(w, 1.0f);
}

TEST(NearestZoomIndicesTest, MatchesScipyZoomOrderZero) {
  EXPECT_EQ(NearestZoomIndices(5, 3), (Indices{0, 2, 4}));
  EXPECT_EQ(NearestZoomIndices(3, 7), (Indices{0, 0, 1, 1, 1, 2, 2}));
  EXPECT_EQ(NearestZoomIndices(10, 4), (Indices{0, 3, 6, 9}));
  EXPECT_EQ(NearestZoomIndices(1, 4), (Indices{0, 0, 0, 0}));
  EXPECT_EQ(NearestZoomIndices(4, 1), (Indices{0}));
  EXPECT_EQ(NearestZoomIndices(128, 128), [] {
    Indices identity(128);
    for (int64_t i = 0; i < 128; ++i) identity[static_cast<size_t>(i)] = i;
    return identity;
  }());
  // BraTS's 155 slices to the reference's 128 and back.
  EXPECT_EQ(
      NearestZoomIndices(155, 128),
      (Indices{0,   1,   2,   4,   5,   6,   7,   8,   10,  11,  12,  13,  15,  16,  17,  18,
               19,  21,  22,  23,  24,  25,  27,  28,  29,  30,  32,  33,  34,  35,  36,  38,
               39,  40,  41,  42,  44,  45,  46,  47,  49,  50,  51,  52,  53,  55,  56,  57,
               58,  59,  61,  62,  63,  64,  65,  67,  68,  69,  70,  72,  73,  74,  75,  76,
               78,  79,  80,  81,  82,  84,  85,  86,  87,  89,  90,  91,  92,  93,  95,  96,
               97,  98,  99,  101, 102, 103, 104, 105, 107, 108, 109, 110, 112, 113, 114, 115,
               116, 118, 119, 120, 121, 122, 124, 125, 126, 127, 129, 130, 131, 132, 133, 135,
               136, 137, 138, 139, 141, 142, 143, 144, 146, 147, 148, 149, 150, 152, 153, 154}));
  EXPECT_EQ(NearestZoomIndices(128, 155),
            (Indices{0,   1,   2,   2,   3,   4,   5,   6,   7,   7,   8,   9,   10,  11,  12,  12,
                     13,  14,  15,  16,  16,  17,  18,  19,  20,  21,  21,  22,  23,  24,  25,  26,
                     26,  27,  28,  29,  30,  31,  31,  32,  33,  34,  35,  35,  36,  37,  38,  39,
                     40,  40,  41,  42,  43,  44,  45,  45,  46,  47,  48,  49,  49,  50,  51,  52,
                     53,  54,  54,  55,  56,  57,  58,  59,  59,  60,  61,  62,  63,  64,  64,  65,
                     66,  67,  68,  68,  69,  70,  71,  72,  73,  73,  74,  75,  76,  77,  78,  78,
                     79,  80,  81,  82,  82,  83,  84,  85,  86,  87,  87,  88,  89,  90,  91,  92,
                     92,  93,  94,  95,  96,  96,  97,  98,  99,  100, 101, 101, 102, 103, 104, 105,
                     106, 106, 107, 108, 109, 110, 111, 111, 112, 113, 114, 115, 115, 116, 117, 118,
                     119, 120, 120, 121, 122, 123, 124, 125, 125, 126, 127}));
}

TEST(NearestZoomIndicesTest, OvershootPastTheLastVoxelReadsCvalAsScipyDoes) {
  // 154 * (63 / 154.0) = 63.00000000000001 lands a hair above in - 1: scipy's constant mode
  // writes cval there, so the reference's zoom-back of a 128^3 prediction to 154 slices leaves
  // the last slice background.
  const Indices up = NearestZoomIndices(64, 155);
  ASSERT_EQ(up.size(), 155u);
  EXPECT_EQ((Indices(up.end() - 6, up.end())), (Indices{61, 61, 62, 62, 63, -1}));
  EXPECT_EQ(NearestZoomIndices(128, 154).back(), -1);
  EXPECT_EQ(NearestZoomIndices(128, 240).back(), 127);
  EXPECT_EQ(NearestZoomIndices(240, 128).back(), 239);
}

}  // namespace
}  // namespace clisc::segmentation
