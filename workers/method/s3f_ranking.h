// S3F's selection rule (METHOD.md stage 12, REFERENCE.md 7.3): rank the cases of a round by their
// SAM-Seg similarity and keep the best share for the next round's training.
#pragma once

#include <string>
#include <vector>

namespace clisc::method {

struct S3fScore {
  std::string case_id;
  double score = 0;  // Dice(SAM mask prompted by the prediction, prediction); NaN counts as 0
  bool empty_prediction = false;  // scored 0 by rule
};

struct S3fRanking {
  std::vector<S3fScore> ranked;  // best first
  size_t kept = 0;               // the first `kept` of `ranked` are kept
};

// Descending score; equal scores by case id, ascending, so the ranking does not depend on the
// order the scores arrive in. Keeps floor(n * keep_ratio) cases (the reference's int(N * r)),
// but at least one when there is any, so a small set still trains a next round.
S3fRanking RankS3fScores(std::vector<S3fScore> scores, double keep_ratio);

}  // namespace clisc::method
