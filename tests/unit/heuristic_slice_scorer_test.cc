// HeuristicSliceScorer on constructed slices (its rules one by one) and on semi-synthetic cases
// from `clisc synth`'s library, preprocessed as stage 0 does, against the ground truth: a slice is
// a tumor slice when any of its voxels is tumor, and the 0.6 keep threshold of stage 1 applies.
#include "workers/backends/heuristic_slice_scorer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "common/brats_layout.h"
#include "common/preprocess.h"
#include "common/synth_anatomy.h"
#include "common/synth_dataset.h"
#include "tests/support/synth_cases.h"

namespace clisc::backends {
namespace {

namespace fs = std::filesystem;

constexpr float kBackground = -0.8f;  // where a z-scored box puts the raw zeros

// A w x h slice: background everywhere, an elliptic "brain" of noisy tissue around z = 1 covering
// about `brain_fraction` of the slice, and a bright square of `tumor_pixels` at its centre.
FloatSlice BrainSlice(int w, int h, double brain_fraction, int tumor_pixels, uint32_t seed) {
  FloatSlice s{w, h, std::vector<float>(static_cast<size_t>(w) * h, kBackground)};
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> noise(-0.25f, 0.25f);
  const double scale = std::sqrt(brain_fraction * 4.0 / M_PI);  // ellipse area / box area
  const double rx = 0.5 * w * scale, ry = 0.5 * h * scale;
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      const double dx = (x + 0.5 - 0.5 * w) / rx, dy = (y + 0.5 - 0.5 * h) / ry;
      if (dx * dx + dy * dy <= 1.0) s.values[y * w + x] = 1.0f + noise(rng);
    }
  }
  const int side = static_cast<int>(std::lround(std::sqrt(tumor_pixels)));
  for (int y = h / 2 - side / 2; y < h / 2 - side / 2 + side; ++y) {
    for (int x = w / 2 - side / 2; x < w / 2 - side / 2 + side; ++x) {
      s.values[y * w + x] = 3.0f + noise(rng);
    }
  }
  return s;
}

float TumorProbability(HeuristicSliceScorer& scorer, const FloatSlice& slice) {
  auto rows = scorer.Score({slice});
  EXPECT_TRUE(rows.ok()) << rows.status().ToString();
  return rows.ok() ? (*rows)[0][1] : -1.0f;
}

TEST(HeuristicSliceScorerTest, DescribesItselfAsAHeuristicWithoutWeights) {
  HeuristicSliceScorer scorer;
  EXPECT_NE(scorer.Describe().find("heuristic"), std::string::npos);
  EXPECT_NE(scorer.Describe().find("(no weights)"), std::string::npos);
  EXPECT_EQ(scorer.num_prompts(), 2);
}

TEST(HeuristicSliceScorerTest, BrightPatchIsTumorAndCleanBrainIsNormal) {
  HeuristicSliceScorer scorer;
  const float clean = TumorProbability(scorer, BrainSlice(80, 96, 0.6, 0, 1));
  const float tumor = TumorProbability(scorer, BrainSlice(80, 96, 0.6, 150, 1));  // 3 % of brain
  EXPECT_LT(clean, 0.2f);                                                         // kept as normal
  EXPECT_GT(tumor, 0.9f);                                                         // kept as tumor
}

TEST(HeuristicSliceScorerTest, ProbabilityGrowsWithTheBrightArea) {
  HeuristicSliceScorer scorer;
  float previous = 0;
  for (int pixels : {0, 4, 9, 16, 36, 100, 400}) {
    const float p = TumorProbability(scorer, BrainSlice(80, 96, 0.6, pixels, 2));
    EXPECT_GE(p, previous) << pixels << " bright pixels";
    previous = p;
  }
}

TEST(HeuristicSliceScorerTest, ALittleBrainIsNormalWithTooLowConfidenceToKeep) {
  HeuristicSliceScorer scorer;
  // 2 % of the slice is brain, with a bright patch: not judged.
  const float p = TumorProbability(scorer, BrainSlice(80, 96, 0.02, 16, 3));
  EXPECT_LT(p, 0.5f);
  EXPECT_LT(std::max(p, 1.0f - p), 0.6f);
  FloatSlice empty_brain{8, 8, std::vector<float>(64, kBackground)};
  const float q = TumorProbability(scorer, empty_brain);
  EXPECT_LT(std::max(q, 1.0f - q), 0.6f);
}

TEST(HeuristicSliceScorerTest, RowsSumToOneAndSlicesAreScoredIndependently) {
  HeuristicSliceScorer scorer;
  const std::vector<FloatSlice> batch = {BrainSlice(64, 64, 0.6, 0, 4),
                                         BrainSlice(64, 64, 0.6, 100, 5),
                                         BrainSlice(32, 48, 0.5, 25, 6)};
  auto rows = scorer.Score(batch);
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->size(), 3u);
  for (size_t i = 0; i < rows->size(); ++i) {
    ASSERT_EQ((*rows)[i].size(), 2u);
    EXPECT_NEAR((*rows)[i][0] + (*rows)[i][1], 1.0f, 1e-6f);
    // The same slice alone gives the same row, bit for bit.
    auto alone = scorer.Score({batch[i]});
    ASSERT_TRUE(alone.ok());
    EXPECT_EQ((*alone)[0], (*rows)[i]);
  }
  EXPECT_TRUE(scorer.Score({})->empty());
}

TEST(HeuristicSliceScorerTest, MalformedSlicesAreInvalidAndFailTheWholeBatch) {
  HeuristicSliceScorer scorer;
  const FloatSlice good = BrainSlice(16, 16, 0.6, 0, 7);
  FloatSlice empty{0, 0, {}};
  FloatSlice mismatched{16, 16, std::vector<float>(100, 0.0f)};
  FloatSlice not_finite = good;
  not_finite.values[5] = std::nanf("");
  for (const FloatSlice& bad : {empty, mismatched, not_finite}) {
    auto rows = scorer.Score({good, bad});
    ASSERT_FALSE(rows.ok());
    EXPECT_EQ(rows.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(rows.status().message().find("slice 1"), std::string::npos)
        << rows.status().message();
  }
}

// ---- Semi-synthetic cases (clisc synth), preprocessed as stage 0 does.

std::vector<PreprocessedCase> SynthCases(int cases, uint64_t seed) {
  return testing::PreprocessedSynthCases(cases, seed, "scorer");
}

FloatSlice AxialSlice(const FloatVolume& v, int64_t z) {
  const Dims& d = v.size();
  const auto begin = v.voxels().begin() + static_cast<std::ptrdiff_t>(z * d.x * d.y);
  return FloatSlice{static_cast<int>(d.x), static_cast<int>(d.y),
                    std::vector<float>(begin, begin + static_cast<std::ptrdiff_t>(d.x * d.y))};
}

bool SliceHasTumor(const LabelVolume& wt, int64_t z) {
  const Dims& d = wt.size();
  const auto begin = wt.voxels().begin() + static_cast<std::ptrdiff_t>(z * d.x * d.y);
  return std::any_of(begin, begin + static_cast<std::ptrdiff_t>(d.x * d.y),
                     [](uint8_t v) { return v != 0; });
}

TEST(HeuristicSliceScorerTest, LabelsSynthSlicesLikeTheGroundTruth) {
  if (!fs::exists(kDefaultBrainTemplatePath)) {
    const char* require = std::getenv("CLISC_REQUIRE_FIXTURES");
    if (require && std::string(require) == "1") FAIL() << kDefaultBrainTemplatePath << " missing";
    GTEST_SKIP() << kDefaultBrainTemplatePath << " missing (Debian package mricron-data)";
  }
  // Cases 1..4 of seed 1; case 3 is the tumor-free one of the first block of ten.
  const std::vector<PreprocessedCase> cases = SynthCases(4, 1);
  ASSERT_EQ(cases.size(), 4u);
  HeuristicSliceScorer scorer;
  int slices = 0, kept = 0, correct = 0, tumor_slices = 0, tumor_kept_correct = 0;
  int tumor_free_cases = 0, tumor_free_kept = 0, tumor_free_false_positives = 0;
  for (const PreprocessedCase& c : cases) {
    ASSERT_TRUE(c.whole_tumor.has_value());
    const FloatVolume& flair = c.images[0];
    std::vector<FloatSlice> batch;
    for (int64_t z = 0; z < flair.size().z; ++z) batch.push_back(AxialSlice(flair, z));
    auto rows = scorer.Score(batch);
    ASSERT_TRUE(rows.ok()) << rows.status().ToString();
    const bool tumor_free =
        !std::any_of(c.whole_tumor->voxels().begin(), c.whole_tumor->voxels().end(),
                     [](uint8_t v) { return v != 0; });
    tumor_free_cases += tumor_free;
    for (int64_t z = 0; z < flair.size().z; ++z) {
      const std::vector<float>& row = (*rows)[static_cast<size_t>(z)];
      const bool truth = SliceHasTumor(*c.whole_tumor, z);
      const bool keep = std::max(row[0], row[1]) >= 0.6f;
      const bool says_tumor = row[1] > row[0];
      ++slices;
      tumor_slices += truth;
      if (!keep) continue;
      ++kept;
      correct += says_tumor == truth;
      tumor_kept_correct += truth && says_tumor;
      tumor_free_kept += tumor_free;
      tumor_free_false_positives += tumor_free && says_tumor;
    }
  }
  const double keep_rate = static_cast<double>(kept) / slices;
  const double accuracy = static_cast<double>(correct) / kept;
  const double tumor_recall = static_cast<double>(tumor_kept_correct) / tumor_slices;
  std::printf(
      "synth slice labels: %d slices (%d tumor), kept %.3f, accuracy of kept %.4f, "
      "tumor slices kept as tumor %.3f; tumor-free case: %d of %d kept slices called tumor\n",
      slices, tumor_slices, keep_rate, accuracy, tumor_recall, tumor_free_false_positives,
      tumor_free_kept);
  // Measured here: kept 0.893, accuracy 0.992, tumor recall 0.976, 1 of 66 (seed 5, no tumor-free
  // case: 0.893, 0.985, 0.930). The misses are edge slices with a few tumor voxels.
  EXPECT_GE(accuracy, 0.95);
  EXPECT_GE(keep_rate, 0.80);
  EXPECT_GE(tumor_recall, 0.85);
  ASSERT_EQ(tumor_free_cases, 1);
  EXPECT_LE(tumor_free_false_positives, 0.05 * tumor_free_kept);
}

}  // namespace
}  // namespace clisc::backends
