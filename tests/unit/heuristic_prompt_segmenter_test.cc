// HeuristicPromptSegmenter on constructed images (a bright disc on a textured background) and on
// semi-synthetic cases from `clisc synth`'s library, prompted as stage 8 prompts SAM (REFERENCE.md
// section 6, with workers/method's EqualizedSlice and PromptsForSlice): the histogram-equalized
// uint8 slice, the mask's box grown by 10 px, 5 positive points from the mask's brightest pixels
// and 4 negative points at the box corners; here the mask is the ground truth, so the Dice against
// it measures the segmenter alone.
#include "workers/backends/heuristic_prompt_segmenter.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "common/brats_layout.h"
#include "common/preprocess.h"
#include "common/synth_anatomy.h"
#include "common/synth_dataset.h"
#include "tests/support/synth_cases.h"
#include "workers/method/axial_slices.h"
#include "workers/method/sam_prompts.h"

namespace clisc::backends {
namespace {

namespace fs = std::filesystem;

double Dice(const BinaryMask& a, const std::vector<uint8_t>& b) {
  double inter = 0, sum = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    inter += a.pixels[i] && b[i];
    sum += (a.pixels[i] != 0) + (b[i] != 0);
  }
  return sum == 0 ? 1.0 : 2.0 * inter / sum;
}

// A 96x96 texture of values in 40..160 (smooth blobs plus pixel noise) with a bright disc of
// radius 15 (values 190..250) centred at (50, 45).
struct DiscImage {
  GrayImage image;
  std::vector<uint8_t> disc;
  static constexpr int kSize = 96, kCx = 50, kCy = 45, kRadius = 15;
};

DiscImage MakeDiscImage(uint32_t seed) {
  DiscImage d;
  const int n = DiscImage::kSize;
  d.image = GrayImage{n, n, std::vector<uint8_t>(n * n)};
  d.disc.assign(n * n, 0);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const double phase_x = 6.28 * unit(rng), phase_y = 6.28 * unit(rng);
  for (int y = 0; y < n; ++y) {
    for (int x = 0; x < n; ++x) {
      const double texture = 100 + 30 * std::sin(x * 0.3 + phase_x) * std::cos(y * 0.25 + phase_y) +
                             30 * (unit(rng) - 0.5) * 2;
      const double dx = x - DiscImage::kCx, dy = y - DiscImage::kCy;
      const bool inside = dx * dx + dy * dy <= DiscImage::kRadius * DiscImage::kRadius;
      d.disc[y * n + x] = inside;
      const double v = inside ? 190 + 60 * unit(rng) : texture;
      d.image.pixels[y * n + x] = static_cast<uint8_t>(std::clamp(v, 0.0, 255.0));
    }
  }
  return d;
}

Prompts DiscPrompts() {
  Prompts p;
  const float cx = DiscImage::kCx, cy = DiscImage::kCy, r = DiscImage::kRadius;
  p.box = BoxPrompt{cx - r - 8, cy - r - 8, cx + r + 8, cy + r + 8};
  for (auto [dx, dy] : {std::pair{0.f, 0.f}, {0.5f, 0.f}, {-0.5f, 0.f}, {0.f, 0.5f}, {0.f, -0.5f}})
    p.points.push_back(PointPrompt{cx + dx * r, cy + dy * r, true});
  return p;
}

TEST(HeuristicPromptSegmenterTest, DescribesItselfAsAHeuristicWithoutWeights) {
  HeuristicPromptSegmenter segmenter;
  EXPECT_NE(segmenter.Describe().find("heuristic"), std::string::npos);
  EXPECT_NE(segmenter.Describe().find("(no weights)"), std::string::npos);
}

TEST(HeuristicPromptSegmenterTest, RecoversADiscFromABoxAndFiveInteriorPoints) {
  HeuristicPromptSegmenter segmenter;
  for (uint32_t seed : {1u, 2u, 3u}) {
    const DiscImage d = MakeDiscImage(seed);
    ASSERT_TRUE(segmenter.SetImage(d.image).ok());
    auto out = segmenter.Segment({DiscPrompts()}, /*multimask=*/false);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    ASSERT_EQ(out->size(), 1u);
    const Segmentation& s = (*out)[0];
    EXPECT_EQ(s.mask.width, DiscImage::kSize);
    EXPECT_EQ(s.mask.height, DiscImage::kSize);
    const double dice = Dice(s.mask, d.disc);
    std::printf("disc seed %u: dice %.4f score %.3f\n", seed, dice, s.score);
    EXPECT_GT(dice, 0.9) << "seed " << seed;
    EXPECT_GT(s.score, 0.5f);
    EXPECT_LE(s.score, 1.0f);
  }
}

TEST(HeuristicPromptSegmenterTest, NegativePointsOutsideTheTargetDoNotBreakIt) {
  HeuristicPromptSegmenter segmenter;
  const DiscImage d = MakeDiscImage(4);
  ASSERT_TRUE(segmenter.SetImage(d.image).ok());
  Prompts p = DiscPrompts();
  const BoxPrompt b = *p.box;
  // The stage-8 negatives at the box corners, plus two on the texture beside the disc.
  for (auto [x, y] : {std::pair{b.x0, b.y0},
                      {b.x0, b.y1},
                      {b.x1, b.y0},
                      {b.x1, b.y1},
                      {DiscImage::kCx + 19.f, DiscImage::kCy},
                      {DiscImage::kCx, DiscImage::kCy - 20.f}})
    p.points.push_back(PointPrompt{x, y, false});
  auto out = segmenter.Segment({p}, false);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_GT(Dice((*out)[0].mask, d.disc), 0.9);
}

TEST(HeuristicPromptSegmenterTest, NegativePointOnASecondBlobRemovesIt) {
  // Two bright discs that touch; positives on the left one, a negative on the right one.
  const int w = 80, h = 48;
  GrayImage image{w, h, std::vector<uint8_t>(w * h, 60)};
  std::vector<uint8_t> left(w * h, 0), right(w * h, 0);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      left[y * w + x] = (x - 25) * (x - 25) + (y - 24) * (y - 24) <= 144;
      right[y * w + x] = (x - 49) * (x - 49) + (y - 24) * (y - 24) <= 144;
      if (left[y * w + x] || right[y * w + x]) image.pixels[y * w + x] = 220;
    }
  }
  HeuristicPromptSegmenter segmenter;
  ASSERT_TRUE(segmenter.SetImage(image).ok());
  Prompts p;
  p.points = {{25, 24, true}, {22, 20, true}, {49, 24, false}};
  auto out = segmenter.Segment({p}, false);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  const BinaryMask& mask = (*out)[0].mask;
  EXPECT_EQ(mask.pixels[24 * w + 49], 0);
  EXPECT_EQ(mask.pixels[24 * w + 25], 1);
  // The 3x3 smoothing rounds a perfectly sharp edge off by about a pixel, hence 0.85.
  EXPECT_GT(Dice(mask, left), 0.85);
  int on_right = 0;
  for (size_t i = 0; i < right.size(); ++i) on_right += mask.pixels[i] && right[i];
  EXPECT_LT(on_right, 10);  // at most the pixels at the touching point
}

TEST(HeuristicPromptSegmenterTest, BoxAloneTakesTheLargestBrightStructure) {
  HeuristicPromptSegmenter segmenter;
  const DiscImage d = MakeDiscImage(5);
  ASSERT_TRUE(segmenter.SetImage(d.image).ok());
  Prompts p;
  p.box = DiscPrompts().box;
  auto out = segmenter.Segment({p}, true);  // multimask is ignored
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_GT(Dice((*out)[0].mask, d.disc), 0.85);
}

TEST(HeuristicPromptSegmenterTest, OneResultPerPromptSetAndDeterministic) {
  HeuristicPromptSegmenter segmenter;
  const DiscImage d = MakeDiscImage(6);
  ASSERT_TRUE(segmenter.SetImage(d.image).ok());
  Prompts off_target;  // a point on the texture far from the disc
  off_target.points = {{10, 85, true}};
  auto out = segmenter.Segment({DiscPrompts(), off_target, DiscPrompts()}, false);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  ASSERT_EQ(out->size(), 3u);
  EXPECT_EQ((*out)[0].mask.pixels, (*out)[2].mask.pixels);
  EXPECT_EQ((*out)[0].score, (*out)[2].score);
  EXPECT_LT(Dice((*out)[1].mask, d.disc), 0.1);
  EXPECT_LT((*out)[1].score, (*out)[0].score);
  // Setting the same image again keeps the results.
  ASSERT_TRUE(segmenter.SetImage(d.image).ok());
  auto again = segmenter.Segment({DiscPrompts()}, false);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)[0].mask.pixels, (*out)[0].mask.pixels);
}

TEST(HeuristicPromptSegmenterTest, BoxOutsideTheImageGivesAnEmptyMask) {
  HeuristicPromptSegmenter segmenter;
  ASSERT_TRUE(segmenter.SetImage(MakeDiscImage(7).image).ok());
  Prompts p;
  p.box = BoxPrompt{200, 200, 240, 240};
  auto out = segmenter.Segment({p}, false);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(std::count((*out)[0].mask.pixels.begin(), (*out)[0].mask.pixels.end(), 1), 0);
  EXPECT_EQ((*out)[0].score, 0.0f);
}

TEST(HeuristicPromptSegmenterTest, ErrorsFollowTheInterface) {
  HeuristicPromptSegmenter segmenter;
  auto before = segmenter.Segment({DiscPrompts()}, false);
  ASSERT_FALSE(before.ok());
  EXPECT_EQ(before.status().code(), StatusCode::kFailedPrecondition);

  EXPECT_EQ(segmenter.SetImage(GrayImage{0, 0, {}}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(segmenter.SetImage(GrayImage{4, 4, std::vector<uint8_t>(15)}).code(),
            StatusCode::kInvalidArgument);

  ASSERT_TRUE(segmenter.SetImage(MakeDiscImage(8).image).ok());
  auto empty = segmenter.Segment({DiscPrompts(), Prompts{}}, false);
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(empty.status().message().find("prompt set 1"), std::string::npos);

  Prompts inverted;
  inverted.box = BoxPrompt{50, 50, 10, 60};
  EXPECT_EQ(segmenter.Segment({inverted}, false).status().code(), StatusCode::kInvalidArgument);
  Prompts nan_point;
  nan_point.points = {{std::numeric_limits<float>::quiet_NaN(), 3, true}};
  EXPECT_EQ(segmenter.Segment({nan_point}, false).status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(segmenter.Segment({}, false)->empty());
}

// ---- Semi-synthetic cases, prompted as stage 8 prompts SAM, with the ground truth as the mask.

std::vector<PreprocessedCase> SynthCases(int cases, uint64_t seed) {
  return testing::PreprocessedSynthCases(cases, seed, "segmenter");
}

TEST(HeuristicPromptSegmenterTest, SegmentsSynthTumorsPromptedFromTheGroundTruth) {
  if (!fs::exists(kDefaultBrainTemplatePath)) {
    const char* require = std::getenv("CLISC_REQUIRE_FIXTURES");
    if (require && std::string(require) == "1") FAIL() << kDefaultBrainTemplatePath << " missing";
    GTEST_SKIP() << kDefaultBrainTemplatePath << " missing (Debian package mricron-data)";
  }
  const std::vector<PreprocessedCase> cases = SynthCases(3, 9);
  ASSERT_EQ(cases.size(), 3u);
  HeuristicPromptSegmenter segmenter;
  std::vector<double> dices;
  double large_sum = 0;
  int large = 0;
  for (const PreprocessedCase& c : cases) {
    ASSERT_TRUE(c.whole_tumor.has_value());
    for (int64_t z = 0; z < c.images[0].size().z; ++z) {
      const FloatSlice slice = method::AxialSlice(c.images[0], z);
      const BinaryMask gt = method::AxialMask(*c.whole_tumor, z);
      const std::vector<uint8_t>& truth = gt.pixels;
      const int64_t area = std::count(truth.begin(), truth.end(), 1);
      if (area == 0) continue;
      auto prompts = method::PromptsForSlice(slice, gt);
      ASSERT_TRUE(prompts.ok()) << prompts.status().ToString();
      if (!prompts->prompts) continue;
      ASSERT_TRUE(segmenter.SetImage(method::EqualizedSlice(slice)).ok());
      auto out = segmenter.Segment({*prompts->prompts}, false);
      ASSERT_TRUE(out.ok()) << out.status().ToString();
      const double dice = Dice((*out)[0].mask, truth);
      dices.push_back(dice);
      if (area >= 50) large_sum += dice, ++large;
    }
  }
  ASSERT_FALSE(dices.empty());
  double sum = 0;
  for (double v : dices) sum += v;
  const double mean = sum / dices.size();
  std::vector<double> sorted = dices;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted[sorted.size() / 2];
  std::printf(
      "synth tumor slices: %zu, mean dice %.4f, median %.4f, p10 %.4f; "
      "%d slices with >= 50 tumor pixels: mean dice %.4f\n",
      dices.size(), mean, median, sorted[sorted.size() / 10], large, large_sum / large);
  // Measured here: 90 slices, mean 0.875 (median 0.924), 0.908 on the 81 slices with >= 50
  // tumor pixels; the misses are slices with a handful of tumor pixels.
  EXPECT_GE(mean, 0.80);
  EXPECT_GE(large_sum / large, 0.85);
}

}  // namespace
}  // namespace clisc::backends
