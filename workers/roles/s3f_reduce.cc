// Stage 12 (s3f_rank_r<r>, role `reduce`): SAM-Seg Similarity-based Filtering. The train cases of
// a round are ranked by their S3F score (descending; equal scores by case id, ascending, so the
// ranking never depends on the order scores arrived in) and the first floor(N * keep_ratio)
// (at least one) are kept: their round-r predictions are the next round's labels. Cases whose
// prediction was empty scored 0 and rank last; cases that failed upstream have no score and are
// not ranked.
#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "common/logging.h"
#include "workers/roles/method_roles_internal.h"

namespace clisc::roles {
namespace {

struct Scored {
  std::string case_id;
  double score = 0;
  bool empty_prediction = false;
};

}  // namespace

StatusOr<worker::TaskOutput> RunS3fRank(MethodTask& task) {
  const Config& config = task.config();
  const std::string round = task.Extra("variant");
  std::vector<Scored> scored;
  for (const CaseInput& input : task.CaseInputs("s3f_score_" + round, "score")) {
    ASSIGN_OR_RETURN(nlohmann::json doc,
                     task.ReadInputJson("s3f_score_" + round + "/" + input.case_id + "/score"));
    const nlohmann::json score = doc.value("score", nlohmann::json());
    // A NaN score (written as null) cannot be ranked above anything: it counts as 0.
    scored.push_back({input.case_id, score.is_number() ? score.get<double>() : 0.0,
                      doc.value("empty_prediction", false)});
  }
  if (scored.empty()) {
    return FailedPreconditionError(task.Label() + ": no case has an S3F score to rank");
  }
  std::sort(scored.begin(), scored.end(), [](const Scored& a, const Scored& b) {
    if (a.score != b.score) return a.score > b.score;
    return a.case_id < b.case_id;
  });
  const double ratio = config.GetDouble("s3f.keep_ratio");
  const size_t keep = std::clamp<size_t>(
      static_cast<size_t>(std::floor(static_cast<double>(scored.size()) * ratio)), 1,
      scored.size());
  nlohmann::json kept = nlohmann::json::array(), dropped = nlohmann::json::array(),
                 ranking = nlohmann::json::array();
  int64_t empty = 0;
  for (size_t i = 0; i < scored.size(); ++i) {
    const Scored& s = scored[i];
    (i < keep ? kept : dropped).push_back(s.case_id);
    empty += s.empty_prediction;
    ranking.push_back({{"rank", i + 1},
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
                                            {"ranking", ranking}}));
  LogInfo("s3f_rank", {{"round", round},
                       {"cases", int64_t(scored.size())},
                       {"kept", int64_t(keep)},
                       {"lowest_kept_score", cutoff}});
  return task.Finish(
      {{"cases", double(scored.size())}, {"kept", double(keep)}, {"lowest_kept_score", cutoff}});
}

}  // namespace clisc::roles
