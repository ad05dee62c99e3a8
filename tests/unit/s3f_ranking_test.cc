// S3F's ranking rule: descending score, ties by case id, floor(n * keep_ratio) kept (at least
// one), empty predictions and NaN scores at the bottom, independent of the input order.
#include "workers/method/s3f_ranking.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

namespace clisc::method {
namespace {

std::vector<std::string> Ids(const S3fRanking& ranking) {
  std::vector<std::string> ids;
  for (const S3fScore& s : ranking.ranked) ids.push_back(s.case_id);
  return ids;
}

TEST(S3fRankingTest, DescendingScoreWithTiesByCaseId) {
  const S3fRanking ranking = RankS3fScores({{"c3", 0.7, false},
                                            {"c1", 0.9, false},
                                            {"c4", 0.7, false},
                                            {"c2", 0.7, false},
                                            {"c0", 0.2, false}},
                                           0.8);
  EXPECT_EQ(Ids(ranking), (std::vector<std::string>{"c1", "c2", "c3", "c4", "c0"}));
  EXPECT_EQ(ranking.kept, 4u);  // floor(5 * 0.8)
}

TEST(S3fRankingTest, TheInputOrderDoesNotMatter) {
  std::vector<S3fScore> scores;
  for (int i = 0; i < 40; ++i) {
    scores.push_back({"case" + std::to_string(100 + i), (i % 7) / 7.0, false});
  }
  const std::vector<std::string> expected = Ids(RankS3fScores(scores, 0.8));
  std::mt19937 rng(5);
  for (int trial = 0; trial < 10; ++trial) {
    std::shuffle(scores.begin(), scores.end(), rng);
    EXPECT_EQ(Ids(RankS3fScores(scores, 0.8)), expected);
  }
}

TEST(S3fRankingTest, EmptyPredictionsAndNanScoresRankLast) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const S3fRanking ranking = RankS3fScores(
      {{"a", 0.9, true}, {"b", nan, false}, {"c", 0.1, false}, {"d", 0.05, false}}, 0.5);
  EXPECT_EQ(Ids(ranking), (std::vector<std::string>{"c", "d", "a", "b"}));
  EXPECT_EQ(ranking.ranked[2].score, 0.0);  // the empty prediction's score is 0 by rule
  EXPECT_EQ(ranking.ranked[3].score, 0.0);
  EXPECT_EQ(ranking.kept, 2u);
}

TEST(S3fRankingTest, KeepCountFollowsTheReferenceAndKeepsAtLeastOne) {
  auto kept = [](size_t n, double ratio) {
    std::vector<S3fScore> scores;
    for (size_t i = 0; i < n; ++i) scores.push_back({std::to_string(i), 0.5, false});
    return RankS3fScores(scores, ratio).kept;
  };
  EXPECT_EQ(kept(257, 0.8), 205u);  // the reference's int(257 * 0.8)
  EXPECT_EQ(kept(10, 0.7), 7u);
  EXPECT_EQ(kept(3, 0.7), 2u);  // 2.0999999999999996, as Python computes it
  EXPECT_EQ(kept(10, 0.6), 6u);
  EXPECT_EQ(kept(10, 1.0), 10u);
  EXPECT_EQ(kept(3, 0.2), 1u);  // floor gives 0: one case still trains the next round
  EXPECT_EQ(kept(0, 0.8), 0u);
}

}  // namespace
}  // namespace clisc::method
