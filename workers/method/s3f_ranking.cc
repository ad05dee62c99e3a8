#include "workers/method/s3f_ranking.h"

#include <algorithm>
#include <cmath>

namespace clisc::method {

S3fRanking RankS3fScores(std::vector<S3fScore> scores, double keep_ratio) {
  for (S3fScore& s : scores) {
    if (!std::isfinite(s.score) || s.empty_prediction) s.score = 0;
  }
  std::sort(scores.begin(), scores.end(), [](const S3fScore& a, const S3fScore& b) {
    if (a.score != b.score) return a.score > b.score;
    return a.case_id < b.case_id;
  });
  S3fRanking out;
  const double ratio = std::clamp(keep_ratio, 0.0, 1.0);
  // The same double product and truncation as Python's int(N * r).
  const size_t by_ratio =
      static_cast<size_t>(std::floor(static_cast<double>(scores.size()) * ratio));
  out.kept = scores.empty() ? 0 : std::clamp<size_t>(by_ratio, 1, scores.size());
  out.ranked = std::move(scores);
  return out;
}

}  // namespace clisc::method
