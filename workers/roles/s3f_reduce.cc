// Stage 12 (s3f_rank_r<r>, role `reduce`): SAM-Seg Similarity-based Filtering. The train cases of
// a round are ranked by their S3F score and the best share is kept (method::RankS3fScores): their
// round-r predictions are the next round's labels. Cases whose
// prediction was empty scored 0 and rank last; cases that failed upstream have no score and are
// not ranked.
#include <nlohmann/json.hpp>

#include "common/logging.h"
#include "common/metrics.h"
#include "workers/method/s3f_ranking.h"
#include "workers/roles/method_roles_internal.h"

namespace clisc::roles {

StatusOr<worker::TaskOutput> RunS3fRank(MethodTask& task) {
  const Config& config = task.config();
  const std::string round = task.Extra("variant");
  std::vector<method::S3fScore> scores;
  for (const CaseInput& input : task.CaseInputs("s3f_score_" + round, "score")) {
    ASSIGN_OR_RETURN(nlohmann::json doc,
                     task.ReadInputJson("s3f_score_" + round + "/" + input.case_id + "/score"));
    const nlohmann::json score = doc.value("score", nlohmann::json());
    // A NaN score is written as null; it ranks as 0.
    scores.push_back({input.case_id, score.is_number() ? score.get<double>() : kNaN,
                      doc.value("empty_prediction", false)});
  }
  if (scores.empty()) {
    return FailedPreconditionError(task.Label() + ": no case has an S3F score to rank");
  }
  const double ratio = config.GetDouble("s3f.keep_ratio");
  const method::S3fRanking ranking = method::RankS3fScores(std::move(scores), ratio);
  const std::vector<method::S3fScore>& scored = ranking.ranked;
  const size_t keep = ranking.kept;
  nlohmann::json kept = nlohmann::json::array(), dropped = nlohmann::json::array(),
                 rows = nlohmann::json::array();
  int64_t empty = 0;
  for (size_t i = 0; i < scored.size(); ++i) {
    const method::S3fScore& s = scored[i];
    (i < keep ? kept : dropped).push_back(s.case_id);
    empty += s.empty_prediction;
    rows.push_back({{"rank", i + 1},
                    {"case", s.case_id},
                    {"score", s.score},
                    {"kept", i < keep},
                    {"empty_prediction", s.empty_prediction}});
  }
  const double cutoff = scored[keep - 1].score;
  RETURN_IF_ERROR(task.PublishJson("kept", {{"stage", task.context().stage()},
                                            {"round", task.context().round()},
                                            {"mode", config.GetString("mode")},
                                            {"keep_ratio", ratio},
                                            {"cases", scored.size()},
                                            {"kept_count", keep},
                                            {"lowest_kept_score", cutoff},
                                            {"empty_predictions", empty},
                                            {"kept", kept},
                                            {"dropped", dropped},
                                            {"ranking", rows}}));
  LogInfo("s3f_rank", {{"round", round},
                       {"cases", int64_t(scored.size())},
                       {"kept", int64_t(keep)},
                       {"lowest_kept_score", cutoff}});
  return task.Finish(
      {{"cases", double(scored.size())}, {"kept", double(keep)}, {"lowest_kept_score", cutoff}});
}

}  // namespace clisc::roles
