// Stage 1's slice decisions and the reference's neighbour smoothing (REFERENCE.md section 2) on
// label sequences built so each rule of the smoothing (window, gap, quorum, tie, original labels)
// decides the outcome.
#include "workers/method/slice_labels.h"

#include <gtest/gtest.h>

#include <utility>
#include <vector>

namespace clisc::method {
namespace {

// Kept slices at the given z with the given labels.
std::vector<SliceDecision> Kept(const std::vector<std::pair<int, int>>& z_and_label) {
  std::vector<SliceDecision> out;
  for (const auto& [z, label] : z_and_label) {
    SliceDecision d;
    d.z = z, d.kept = true, d.raw_label = label, d.label = label;
    out.push_back(d);
  }
  return out;
}

// Consecutive z = 0..n-1.
std::vector<SliceDecision> Consecutive(const std::vector<int>& labels) {
  std::vector<std::pair<int, int>> zl;
  for (size_t i = 0; i < labels.size(); ++i) zl.emplace_back(static_cast<int>(i), labels[i]);
  return Kept(zl);
}

std::vector<int> Labels(const std::vector<SliceDecision>& d) {
  std::vector<int> out;
  for (const SliceDecision& s : d) out.push_back(s.label);
  return out;
}

TEST(SliceLabelsTest, DecideSlicesKeepsAtThresholdAndTakesTheFirstArgmax) {
  const std::vector<SliceDecision> d = DecideSlices(
      {{0.3f, 0.7f}, {0.55f, 0.45f}, {0.6f, 0.4f}, {0.5f, 0.5f}, {0.59999996f, 0.40000004f}, {}},
      0.6);
  ASSERT_EQ(d.size(), 6u);
  for (int z = 0; z < 6; ++z) EXPECT_EQ(d[z].z, z);
  EXPECT_TRUE(d[0].kept);
  EXPECT_EQ(d[0].raw_label, 1);
  EXPECT_EQ(d[0].label, 1);
  EXPECT_FALSE(d[1].kept);
  EXPECT_EQ(d[1].raw_label, 0);
  EXPECT_EQ(d[1].label, -1);
  EXPECT_TRUE(d[2].kept);  // 0.6f >= 0.6
  EXPECT_EQ(d[2].label, 0);
  EXPECT_FALSE(d[3].kept);
  EXPECT_EQ(d[3].raw_label, 0);  // tie: the first index
  EXPECT_FALSE(d[4].kept);       // the float just below 0.6
  EXPECT_FALSE(d[5].kept);
  EXPECT_EQ(d[5].raw_label, -1);
  EXPECT_EQ(d[0].probabilities, (std::vector<float>{0.3f, 0.7f}));
}

TEST(SliceLabelsTest, ALoneSliceInAFullWindowTakesTheMajority) {
  std::vector<SliceDecision> d = Consecutive({0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0});
  SmoothSliceLabels(d);
  EXPECT_EQ(Labels(d), std::vector<int>(11, 0));
  EXPECT_EQ(d[5].raw_label, 1);  // the CLIP label is kept beside the smoothed one
}

TEST(SliceLabelsTest, ATieGoesToNormal) {
  // Slice 5 sees 5 tumor and 5 normal neighbours.
  std::vector<SliceDecision> d = Consecutive({1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0});
  SmoothSliceLabels(d);
  EXPECT_EQ(d[5].label, 0);
}

TEST(SliceLabelsTest, EightNeighboursAreNotEnoughNineAre) {
  // 9 slices: the middle one has 8 neighbours, no vote.
  std::vector<SliceDecision> nine = Consecutive({0, 0, 0, 0, 1, 0, 0, 0, 0});
  SmoothSliceLabels(nine);
  EXPECT_EQ(nine[4].label, 1);
  // 10 slices: slice 4 has 9 neighbours (positions 0..9), a vote.
  std::vector<SliceDecision> ten = Consecutive({0, 0, 0, 0, 1, 0, 0, 0, 0, 0});
  SmoothSliceLabels(ten);
  EXPECT_EQ(ten[4].label, 0);
}

TEST(SliceLabelsTest, NeighboursFartherThanMaxGapInZDoNotCount) {
  // The slice at z = 20 (list position 5). On the left z = 13 is 7 away and does not count,
  // z = 16..19 do; on the right 21..24 count, and the last one decides the quorum.
  auto with_last = [](int last_z) {
    return Kept({{13, 0},
                 {16, 0},
                 {17, 0},
                 {18, 0},
                 {19, 0},
                 {20, 1},
                 {21, 0},
                 {22, 0},
                 {23, 0},
                 {24, 0},
                 {last_z, 0}});
  };
  std::vector<SliceDecision> gap6 = with_last(26);  // 6 away: counts, 9 neighbours
  SmoothSliceLabels(gap6);
  EXPECT_EQ(gap6[5].label, 0);
  std::vector<SliceDecision> gap7 = with_last(27);  // 7 away: 8 neighbours, no vote
  SmoothSliceLabels(gap7);
  EXPECT_EQ(gap7[5].label, 1);
}

TEST(SliceLabelsTest, TheWindowIsFiveListPositionsAndDroppedSlicesAreSkipped) {
  // 16 kept slices, all tumor but the first and last two. The first slice has only 5 neighbours
  // (positions 1..5) and keeps its label; a dropped slice between kept ones is not in the list
  // and keeps label -1, while the gap it leaves in z (2) is within max_gap.
  std::vector<SliceDecision> d;
  for (int i = 0; i < 17; ++i) {
    SliceDecision s;
    s.z = i;
    s.kept = i != 8;
    s.raw_label = (i <= 1 || i >= 15) ? 0 : 1;
    s.label = s.kept ? s.raw_label : -1;
    d.push_back(s);
  }
  SmoothSliceLabels(d);
  EXPECT_EQ(d[0].label, 0);   // 5 neighbours
  EXPECT_EQ(d[1].label, 0);   // 6 neighbours
  EXPECT_EQ(d[8].label, -1);  // dropped
  EXPECT_FALSE(d[8].kept);
  EXPECT_EQ(d[16].label, 0);
  // z = 5 is list position 5: neighbours z 0..4 and 6,7,9,10,11: 2 normal, 8 tumor.
  EXPECT_EQ(d[5].label, 1);
  // z = 2 is list position 2: 7 neighbours (positions 0..7), below the quorum.
  EXPECT_EQ(d[2].label, 1);
}

TEST(SliceLabelsTest, VotesUseTheOriginalLabelsNotTheSmoothedOnes) {
  // Position 6 (tumor) sees 4 tumor / 6 normal and becomes normal. Position 7 (normal) sees, in
  // the original labels, positions 2..6 (one tumor) and 8..11 (four tumor): 5 of 9, tumor. Had
  // position 6's new label been used, 4 of 9 would leave it normal.
  std::vector<SliceDecision> d = Consecutive({0, 0, 0, 0, 0, 0, 1, 0, 1, 1, 1, 1});
  SmoothSliceLabels(d);
  EXPECT_EQ(Labels(d), (std::vector<int>{0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1}));
}

TEST(SliceLabelsTest, OptionsChangeTheRule) {
  std::vector<SliceDecision> d = Consecutive({0, 1, 0});
  SmoothSliceLabels(d, SmoothingOptions{/*window=*/1, /*max_gap=*/1, /*quorum=*/1});
  EXPECT_EQ(Labels(d), (std::vector<int>{0, 0, 0}));
}

TEST(SliceLabelsTest, GroundTruthLabelsKeepEverySlice) {
  LabelVolume gt(Dims{3, 3, 4});
  gt.at(2, 1, 1) = 1;
  gt.at(0, 0, 3) = 2;
  const std::vector<SliceDecision> d = GroundTruthSliceLabels(gt);
  ASSERT_EQ(d.size(), 4u);
  EXPECT_EQ(Labels(d), (std::vector<int>{0, 1, 0, 1}));
  for (int z = 0; z < 4; ++z) {
    EXPECT_EQ(d[z].z, z);
    EXPECT_TRUE(d[z].kept);
    EXPECT_EQ(d[z].raw_label, d[z].label);
    EXPECT_TRUE(d[z].probabilities.empty());
  }
}

}  // namespace
}  // namespace clisc::method
